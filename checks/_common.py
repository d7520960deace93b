"""Helpers shared by check modules (not a check: the leading underscore hides it from the registry)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from tritondoctor.findings import FixHint

if TYPE_CHECKING:
    from tritondoctor.snapshot import Snapshot


def loader_path_fix(snap: "Snapshot", directories: list[str], summary: str) -> FixHint:
    """Put `directories` first on LD_LIBRARY_PATH, the way that survives: the environment's own
    activation hooks (`tritondoctor fix`), or an export for a shell that activates nothing."""
    joined = ":".join(directories)
    export = f"export LD_LIBRARY_PATH={shlex.quote(joined)}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"
    kind = snap.target.env_kind if snap.target else "system"
    fix_id = {"conda": "conda-hooks", "venv": "venv-hooks"}.get(kind, "env-export")
    commands = ["tritondoctor fix"] if fix_id != "env-export" else []
    commands += [export if fix_id == "env-export" else f"# or, for this shell only: {export}"]
    return FixHint(id=fix_id, summary=summary, commands=tuple(commands))


def display(path: str | None) -> str:
    return path if path else "(not found)"
