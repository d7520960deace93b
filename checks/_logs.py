"""What every check's log builder shares: the evidence of matched lines, the interpreter's own
command, and the loader-path remedy as smoke can state it (from what the model script saw)."""

from __future__ import annotations

import os
import shlex
from typing import Any, Sequence

from tritondoctor import remedies
from tritondoctor.checkspec import Match
from tritondoctor.findings import FixHint
from tritondoctor.observation import SMOKE_AREA, Interpreter

AREA = SMOKE_AREA


def log_evidence(matches: Sequence[Match], **more: Any) -> dict[str, Any]:
    return {"log": [m.line for m in matches[:3]], **more}


def python_command(interp: Interpreter) -> str:
    return shlex.quote(interp.python) if interp.python else "python"


def loader_path_fix(interp: Interpreter, directory: str, summary: str) -> FixHint:
    """Same remedy as the static check's: the environment's activation hooks, or an export."""
    return remedies.hooks_fix(interp.env_kind, summary, now=[remedies.prepend_export([directory])])


def same_file(a: str, b: str) -> bool:
    """Paths as the run reported them (real paths: /proc/PID/maps and the model script's
    realpath), compared as text: a log builder reads its observation, not the disk."""
    return os.path.normpath(a) == os.path.normpath(b)


def short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
