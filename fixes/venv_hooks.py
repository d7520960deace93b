"""Fix `venv-hooks` (venv, virtualenv, uv, pyenv-virtualenv): marked, removable blocks in the
environment's `bin/activate` and `bin/activate.fish`.

Two blocks per script: one at the top of the `deactivate` function (restores LD_LIBRARY_PATH
exactly, unset stays unset), one at the end (puts the directories first). Activating again is
safe because `activate` itself first calls `deactivate nondestructive`. For services and
containers that never activate anything: `eval "$(tritondoctor env)"`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tritondoctor.fixes import _pathorder, apply_changes

from tritondoctor import hooks
from tritondoctor.plan import APPEND_BLOCK, FixPlan, PlanContext, Prediction

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

ID = "venv-hooks"
SCRIPTS = (("activate", "sh"), ("activate.fish", "fish"))


def plan(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> FixPlan | None:
    ctx = ctx or PlanContext()
    target = snap.target
    if target is None or target.env_kind != "venv":
        return None
    prefix = target.prefix
    texts: dict[str, tuple[str, str]] = {}
    for name, shell in SCRIPTS:
        path = os.path.join(prefix, "bin", name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", newline="") as fh:
                texts[path] = (fh.read(), shell)
    main = os.path.join(prefix, "bin", "activate")
    existing = hooks.parse_dirs(texts[main][0]) if main in texts else None
    base, base_findings, base_env = _pathorder.planning_base(snap, findings, prefix, existing)
    need = _pathorder.plan_dirs(base, base_findings, base_env, ctx.overlays())
    ctx.notes.extend(need.problems)
    if not need.dirs or need.prediction is None:
        return None
    prediction = need.prediction
    if main not in texts:
        prediction = Prediction(False, prediction.method, prediction.statuses, prediction.environ,
                                reason=f"{main} does not exist: nothing to hook into; use eval \"$(tritondoctor env)\"",
                                details=prediction.details)
    changes = []
    for path, (text, shell) in texts.items():
        try:
            new = hooks.venv_activate_text(text, need.dirs, prefix, shell)
        except hooks.HookError as exc:
            if path == main:
                ctx.notes.append(f"{ID}: {path}: {exc}")
                return None
            continue  # a fish script we cannot hook is skipped; bash/zsh users are served
        block = hooks.blocks_of(new)
        change = _pathorder.hook_change(path, new, f"marked blocks in {os.path.basename(path)} "
                                        f"({'sh/bash/zsh' if shell == 'sh' else 'fish'}): apply on activate, "
                                        "restore in deactivate")
        if change is not None:
            from dataclasses import replace

            changes.append(replace(change, kind=APPEND_BLOCK, block=block))
    notes = [f"{d}: {need.why.get(d, '')}" for d in need.dirs]
    notes.append('services and containers that never activate the venv: eval "$(tritondoctor env)"')
    if _pyenv_virtualenv(snap, prefix):
        # pyenv-virtualenv's `pyenv activate` (bin/pyenv-sh-activate) only exports VIRTUAL_ENV and
        # PYENV_VIRTUAL_ENV for a venv; it never sources bin/activate (it does run a conda env's
        # etc/conda/activate.d scripts).
        notes.append("pyenv-virtualenv: `pyenv activate` does not run bin/activate, so this hook works for "
                     f"`source {main}` only; after `pyenv activate` run eval \"$(tritondoctor env)\"")
    if not changes:
        notes.append(f"the hook is already in place: run `source {main}` again to pick it up")
    return FixPlan(
        id=ID,
        title=f"the venv's activate scripts put {', '.join(need.dirs)} first on LD_LIBRARY_PATH",
        prefix=prefix,
        clears=tuple(need.clears),
        prediction=prediction,
        changes=tuple(changes),
        notes=tuple(notes),
        dirs=tuple(need.dirs),
    )


def _pyenv_virtualenv(snap: "Snapshot", prefix: str) -> bool:
    if snap.environ.get("PYENV_VIRTUAL_ENV"):
        return True
    real = os.path.realpath(prefix)
    root = os.path.realpath(snap.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv"))
    return real.startswith(os.path.join(root, "versions") + os.sep) and f"{os.sep}envs{os.sep}" in real


def apply(plan: FixPlan, journal: "Journal") -> None:
    apply_changes(plan, journal)
