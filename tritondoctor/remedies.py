"""The remedy every loader-path finding shares, whether `check` or `smoke` found it: the
environment's own activation hooks (`tritondoctor fix`), plus what repairs the current shell.
Never ~/.bashrc."""

from __future__ import annotations

import shlex
from typing import Iterable, Sequence

from tritondoctor.findings import FixHint

# The fix module that writes hooks for each kind of environment; "env-export" has no fix module:
# a bare interpreter has nothing to hook into, so the user gets the export itself.
HOOK_FIX_IDS = {"conda": "conda-hooks", "venv": "venv-hooks"}
NO_HOOKS_FIX_ID = "env-export"


def prepend_export(directories: Sequence[str]) -> str:
    joined = shlex.quote(":".join(directories))
    return f"export LD_LIBRARY_PATH={joined}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"


def fix_command(python: str | None = None) -> str:
    """`tritondoctor fix`, naming the interpreter when the user had to name it to check it."""
    return f"tritondoctor fix --python {shlex.quote(python)}" if python else "tritondoctor fix"


def hooks_fix(env_kind: str, summary: str, *, python: str | None = None,
              now: Iterable[str] = (), edits: Iterable[str] = ()) -> FixHint:
    """`now`: commands that repair the current shell; `edits`: lines to delete, as comments."""
    fix_id = HOOK_FIX_IDS.get(env_kind, NO_HOOKS_FIX_ID)
    commands = [f"# {e}" for e in edits]
    if fix_id == NO_HOOKS_FIX_ID:
        commands += list(now)
    else:
        commands.append(fix_command(python))
        commands += [f"# and, for this shell: {c}" for c in now]
    return FixHint(id=fix_id, summary=summary, commands=tuple(commands))
