"""The subcommands, one module each. A module defines `register(app)`, which declares its typer
command; heavy imports happen inside the command function, so start-up pays only for typer.

Adding a command = one module here + one name in COMMANDS (the order of `--help`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

COMMANDS = ("check", "tree", "fix", "env", "smoke", "explain", "report", "diff", "fleet", "version")


def register_all(app: "typer.Typer") -> None:
    for name in COMMANDS:
        register_one(app, name)


def register_one(app: "typer.Typer", name: str) -> None:
    importlib.import_module(f"{__name__}.{name}").register(app)
