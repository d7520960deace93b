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

from tritondoctor import hooks
from tritondoctor.fixes import _pathorder, apply_changes
from tritondoctor.fixes._hookplan import Changes, HookLayout, plan_hooks
from tritondoctor.fixspec import FixSpec
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


def _caveat(snap: "Snapshot", prefix: str, prediction: Prediction) -> Prediction:
    later = _later_scripts_touching_the_path(snap)
    if not later or not prediction.proven:
        return prediction
    return Prediction(False, prediction.method, prediction.statuses, prediction.environ,
                      reason=f"{', '.join(later)} run(s) after this hook and change LD_LIBRARY_PATH too",
                      details=prediction.details)


def _hook_changes(prefix: str, dirs: list[str]) -> Changes:
    try:
        files, csh_problem = _changes(prefix, dirs)
    except hooks.HookError as exc:
        return Changes([], refused=str(exc))
    return Changes(files, [f"no csh/tcsh hook: {csh_problem}"] if csh_problem else [])


LAYOUT = HookLayout(
    fix_id=ID,
    env_kind="conda",
    main_hook=lambda prefix: hooks.conda_script_path(prefix, "activate", "sh"),
    changes=_hook_changes,
    title=lambda dirs: f"conda activation hooks put {', '.join(dirs)} first on LD_LIBRARY_PATH",
    in_place_note=lambda prefix: ("the hooks are already in place: activate the environment again "
                                  f"(conda deactivate && conda activate {prefix}) to pick them up"),
    caveat=_caveat,
)


def plan(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> FixPlan | None:
    return plan_hooks(LAYOUT, snap, findings, ctx)


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


FIX = FixSpec(ID, plan, apply,
              summary="activation scripts of the conda env (sh, fish, csh) put the needed directories first")
