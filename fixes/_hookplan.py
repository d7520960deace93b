"""The plan skeleton the conda and venv hook fixes share: find what the loader path needs (with
the environment's own earlier hook taken out), turn it into the hook files of that kind of
environment, keep files that are not ours, and say what is already in place.

What differs between the two is a `HookLayout`: where the main hook lives, how the changes are
made, what else can defeat the hook, and what to tell the user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from tritondoctor import hooks
from tritondoctor.fixes import _pathorder
from tritondoctor.plan import FileChange, FixPlan, PlanContext, Prediction

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.snapshot import Snapshot


@dataclass(frozen=True)
class Changes:
    files: list[FileChange]
    notes: list[str] = field(default_factory=list)
    refused: str | None = None  # the main hook cannot be written: no plan, this is why


@dataclass(frozen=True)
class HookLayout:
    fix_id: str
    env_kind: str  # "conda" or "venv"
    main_hook: Callable[[str], str]  # prefix -> the sh hook whose directories an earlier fix wrote
    changes: Callable[[str, list[str]], Changes]  # prefix, directories -> the files to write
    title: Callable[[list[str]], str]
    in_place_note: Callable[[str], str]  # what to do when the hooks are already there
    # What else can keep the hook from working (a later activate.d script, no bin/activate): the
    # prediction with its reason, or the prediction as it is.
    caveat: Callable[["Snapshot", str, Prediction], Prediction] = lambda snap, prefix, p: p
    extra_notes: Callable[["Snapshot", str], list[str]] = lambda snap, prefix: []


def plan_hooks(layout: HookLayout, snap: "Snapshot", findings: list["Finding"],
               ctx: PlanContext | None) -> FixPlan | None:
    ctx = ctx or PlanContext()
    target = snap.target
    if target is None or target.env_kind != layout.env_kind:
        return None
    prefix = target.prefix
    base, base_findings, base_env = _pathorder.planning_base(snap, findings, prefix, _earlier_dirs(layout, prefix))
    need = _pathorder.plan_dirs(base, base_findings, base_env, ctx.overlays())
    ctx.notes.extend(need.problems)
    if not need.dirs or need.prediction is None:
        return None
    made = layout.changes(prefix, need.dirs)
    if made.refused is not None:
        ctx.notes.append(f"{layout.fix_id}: {made.refused}")
        return None
    prediction = layout.caveat(snap, prefix, need.prediction)
    guarded = _pathorder.guard_foreign(made.files, ctx.force)
    if guarded.foreign and not ctx.force:
        prediction = _pathorder.not_applicable(prediction, guarded.foreign)
    notes = [f"{d}: {need.why.get(d, '')}" for d in need.dirs] + guarded.notes + made.notes
    notes += layout.extra_notes(snap, prefix)
    if not guarded.changes and not guarded.foreign:
        notes.append(layout.in_place_note(prefix))
    return FixPlan(id=layout.fix_id, title=layout.title(need.dirs), prefix=prefix, clears=tuple(need.clears),
                   prediction=prediction, changes=tuple(guarded.changes), notes=tuple(notes), dirs=tuple(need.dirs))


def _earlier_dirs(layout: HookLayout, prefix: str) -> list[str] | None:
    path = layout.main_hook(prefix)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        return hooks.parse_dirs(fh.read())
