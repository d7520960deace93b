"""`tritondoctor env`: the exports for services and containers that activate nothing."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("env")(env)


def env(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment."),
    shell: str = typer.Option("sh", "--shell", help="sh (bash, zsh) or fish."),
) -> int:
    """Print the exports that make PyTriton load correctly: eval "$(tritondoctor env)"."""
    from tritondoctor.envcmd import env_command

    return env_command(python, shell)
