"""Fix `venv-hooks` (venv, virtualenv, uv, pyenv-virtualenv): marked, removable blocks in the
environment's `bin/activate`, `bin/activate.fish` and `bin/activate.csh`.

Two blocks per script: one at the top of the `deactivate` function (takes the directories off
LD_LIBRARY_PATH again; restores it exactly, unset stays unset, when nothing else changed it), one
at the end (puts the directories first). csh's `deactivate` is a one-line alias, so its block
re-defines the alias to source `bin/tritondoctor-deactivate.csh` (a file of ours) first. Activating again is
safe because `activate` itself first calls `deactivate nondestructive`. For services and
containers that never activate anything: `eval "$(tritondoctor env)"`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from tritondoctor import hooks
from tritondoctor.fixes import _pathorder, apply_changes
from tritondoctor.fixes._hookplan import Changes, HookLayout, plan_hooks
from tritondoctor.fixspec import FixSpec
from tritondoctor.plan import APPEND_BLOCK, FileChange, FixPlan, PlanContext, Prediction

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

ID = "venv-hooks"
SCRIPTS = (("activate", "sh"), ("activate.fish", "fish"), ("activate.csh", "csh"))


def _main(prefix: str) -> str:
    return os.path.join(prefix, "bin", "activate")


def _caveat(snap: "Snapshot", prefix: str, prediction: Prediction) -> Prediction:
    main = _main(prefix)
    if os.path.isfile(main):
        return prediction
    return Prediction(False, prediction.method, prediction.statuses, prediction.environ,
                      reason=f"{main} does not exist: nothing to hook into; use eval \"$(tritondoctor env)\"",
                      details=prediction.details)


def _hook_changes(prefix: str, dirs: list[str]) -> Changes:
    texts: dict[str, tuple[str, str]] = {}
    for name, shell in SCRIPTS:
        path = os.path.join(prefix, "bin", name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", newline="") as fh:
                texts[path] = (fh.read(), shell)
    changes, skipped = _script_changes(texts, dirs, prefix)
    if changes is None:
        return Changes([], refused=skipped[0])
    return Changes(changes, skipped)


def _notes(snap: "Snapshot", prefix: str) -> list[str]:
    notes = ['services and containers that never activate the venv: eval "$(tritondoctor env)"']
    if _pyenv_virtualenv(snap, prefix):
        # pyenv-virtualenv's `pyenv activate` (bin/pyenv-sh-activate) only exports VIRTUAL_ENV and
        # PYENV_VIRTUAL_ENV for a venv; it never sources bin/activate (it does run a conda env's
        # etc/conda/activate.d scripts).
        notes.append("pyenv-virtualenv: `pyenv activate` does not run bin/activate, so this hook works for "
                     f"`source {_main(prefix)}` only; after `pyenv activate` run eval \"$(tritondoctor env)\"")
    return notes


LAYOUT = HookLayout(
    fix_id=ID,
    env_kind="venv",
    main_hook=_main,
    changes=_hook_changes,
    title=lambda dirs: f"the venv's activate scripts put {', '.join(dirs)} first on LD_LIBRARY_PATH",
    in_place_note=lambda prefix: f"the hook is already in place: run `source {_main(prefix)}` again to pick it up",
    caveat=_caveat,
    extra_notes=_notes,
)


def plan(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> FixPlan | None:
    return plan_hooks(LAYOUT, snap, findings, ctx)


def _script_changes(texts: dict[str, tuple[str, str]], dirs: list[str],
                    prefix: str) -> tuple[list[FileChange] | None, list[str]]:
    """The activate scripts' changes (plus csh's restore file), and a note for each script that
    cannot be hooked; None (with the reason first) when bin/activate itself cannot be."""
    main = os.path.join(prefix, "bin", "activate")
    changes: list[FileChange] = []
    skipped: list[str] = []
    for path, (text, shell) in texts.items():
        try:
            new = hooks.venv_activate_text(text, dirs, prefix, shell)
        except hooks.HookError as exc:
            if path == main:
                return None, [f"{path}: {exc}"]
            skipped.append(f"{os.path.basename(path)} is left alone ({hooks.SHELL_NAMES[shell]} users get no hook): {exc}")
            continue
        change = _pathorder.hook_change(path, new, f"marked blocks in {os.path.basename(path)} "
                                        f"({hooks.SHELL_NAMES[shell]}): apply on activate, restore in deactivate")
        if change is not None:
            changes.append(replace(change, kind=APPEND_BLOCK, block=hooks.blocks_of(new)))
        if shell == "csh":
            restore = _pathorder.hook_change(hooks.venv_csh_restore_path(prefix),
                                             hooks.venv_csh_restore_script(dirs, prefix),
                                             "sourced by the csh/tcsh `deactivate`: takes the directories off again")
            changes += [restore] if restore is not None else []
    return changes, skipped


def _pyenv_virtualenv(snap: "Snapshot", prefix: str) -> bool:
    if snap.environ.get("PYENV_VIRTUAL_ENV"):
        return True
    real = os.path.realpath(prefix)
    root = os.path.realpath(snap.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv"))
    return real.startswith(os.path.join(root, "versions") + os.sep) and f"{os.sep}envs{os.sep}" in real


def apply(plan: FixPlan, journal: "Journal") -> None:
    apply_changes(plan, journal)


FIX = FixSpec(ID, plan, apply,
              summary="marked blocks in the venv's activate scripts put the needed directories first")
