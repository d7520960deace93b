"""Fix `conda-hooks`: activation scripts of the conda environment put the needed directories first
on LD_LIBRARY_PATH while it is active, and restore it exactly when it is deactivated.

conda sources `$PREFIX/etc/conda/activate.d/*.sh` (sh, bash, zsh), `*.fish` (fish) or `*.csh`
(csh, tcsh) in sorted order after it has set CONDA_PREFIX, and `deactivate.d/*` in reverse order before it unsets it
(conda's activate.py, `_get_activate_scripts` / `_get_deactivate_scripts`); a re-activation of
the same environment runs both. Shell start-up files are never touched.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tritondoctor.fixes import _pathorder, apply_changes

from tritondoctor import hooks
from tritondoctor.plan import FileChange, FixPlan, PlanContext, Prediction

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

ID = "conda-hooks"
SHELLS = ("sh", "fish", "csh")


def _later_scripts_touching_the_path(snap: "Snapshot") -> list[str]:
    """activate.d scripts that run after ours (sorted later) and change LD_LIBRARY_PATH: they
    could put something in front of our directories again."""
    facts = snap.conda
    env_hooks = facts.target_hooks if facts is not None else None
    if env_hooks is None:
        return []
    ours = {hooks.CONDA_HOOK_NAME + ext for ext in hooks.EXTENSIONS.values()}
    later = []
    for script in env_hooks.activate:
        if script.name in ours or not script.modifies:
            continue
        mine = f"{hooks.CONDA_HOOK_NAME}{os.path.splitext(script.name)[1]}"
        if sorted([script.name, mine])[0] == mine:
            later.append(script.path)
    return later


def plan(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> FixPlan | None:
    ctx = ctx or PlanContext()
    target = snap.target
    if target is None or target.env_kind != "conda":
        return None
    prefix = target.prefix
    existing_path = hooks.conda_script_path(prefix, "activate", "sh")
    existing = None
    if os.path.isfile(existing_path):
        with open(existing_path, encoding="utf-8", errors="replace") as fh:
            existing = hooks.parse_dirs(fh.read())
    base, base_findings, base_env = _pathorder.planning_base(snap, findings, prefix, existing)
    need = _pathorder.plan_dirs(base, base_findings, base_env, ctx.overlays())
    ctx.notes.extend(need.problems)
    if not need.dirs or need.prediction is None:
        return None
    prediction = need.prediction
    later = _later_scripts_touching_the_path(snap)
    if later and prediction.proven:
        prediction = Prediction(False, prediction.method, prediction.statuses, prediction.environ,
                                reason=f"{', '.join(later)} run(s) after this hook and change LD_LIBRARY_PATH too",
                                details=prediction.details)
    try:
        changes, csh_problem = _changes(prefix, need.dirs)
    except hooks.HookError as exc:
        ctx.notes.append(f"{ID}: {exc}")
        return None
    guarded = _pathorder.guard_foreign(changes, ctx.force)
    if guarded.foreign and not ctx.force:
        prediction = _pathorder.not_applicable(prediction, guarded.foreign)
    notes = [f"{d}: {need.why.get(d, '')}" for d in need.dirs] + guarded.notes
    if csh_problem:
        notes.append(f"no csh/tcsh hook: {csh_problem}")
    changes = guarded.changes
    if not changes and not guarded.foreign:
        notes.append("the hooks are already in place: activate the environment again "
                     f"(conda deactivate && conda activate {prefix}) to pick them up")
    return FixPlan(
        id=ID,
        title=f"conda activation hooks put {', '.join(need.dirs)} first on LD_LIBRARY_PATH",
        prefix=prefix,
        clears=tuple(need.clears),
        prediction=prediction,
        changes=tuple(changes),
        notes=tuple(notes),
        dirs=tuple(need.dirs),
    )


def _changes(prefix: str, dirs: list[str]) -> tuple[list[FileChange], str]:
    """The hook files to write (those not already in place), and why csh gets none (or "")."""
    changes: list[FileChange] = []
    csh_problem = ""
    for phase in ("activate", "deactivate"):
        for shell in SHELLS:
            path = hooks.conda_script_path(prefix, phase, shell)
            try:
                text = hooks.conda_script(dirs, prefix, phase, shell)
            except hooks.HookError as exc:
                if shell != "csh":
                    raise
                csh_problem = str(exc)  # sh and fish users are still served
                continue
            what = "puts the directories first" if phase == "activate" else "takes them off again"
            change = _pathorder.hook_change(path, text, f"{phase} hook for {hooks.SHELL_NAMES[shell]}: {what}")
            if change is not None:
                changes.append(change)
    return changes, csh_problem


def apply(plan: FixPlan, journal: "Journal") -> None:
    apply_changes(plan, journal)
