"""Small helpers every command shares: the console, option parsing, JSON output."""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any, Iterable

from tritondoctor.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from tritondoctor.options import CheckOptions
    from tritondoctor.snapshot import Snapshot


def console(stderr: bool = False) -> "Console":
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def parse_ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageError(f"--ports {text!r}: expected comma-separated port numbers") from None
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise UsageError(f"--ports {text!r}: ports must be between 1 and 65535")
    return ports


def positive_seconds(option: str, value: float) -> float:
    """A timeout: finite and above zero (nan and inf are refused)."""
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{option} {value}: expected a finite number of seconds above 0")
    return value


def environ_with(overrides: Iterable[str]) -> dict[str, str]:
    environ = dict(os.environ)
    for item in overrides:
        if "=" in item:
            key, value = item.split("=", 1)
            if not key:
                raise UsageError(f"--env {item!r}: expected KEY=VALUE (or KEY to unset it)")
            environ[key] = value
        else:
            environ.pop(item, None)
    return environ


def snapshot(python: str | None, environ: dict[str, str] | None = None, options: "CheckOptions | None" = None,
             need_target: bool = False) -> "Snapshot":
    """The command's one snapshot; a --python that is not a Python (or, with `need_target`, no
    interpreter at all) is a one-line usage error."""
    from tritondoctor.facts.target import TargetError
    from tritondoctor.snapshot import take_snapshot

    try:
        snap = take_snapshot(python=python, environ=environ, options=options)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    if need_target and snap.target is None:
        raise UsageError(snap.target_error or "no Python found: activate your environment or pass --python PATH")
    return snap
