"""`tritondoctor version`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command()(version)


def version() -> int:
    """Print tritondoctor's version."""
    from tritondoctor import __version__

    print(__version__)
    return 0
