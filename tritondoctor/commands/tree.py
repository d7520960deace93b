"""`tritondoctor tree FILE`: how glibc's loader would resolve FILE, edge by edge."""

from __future__ import annotations

import os
from typing import List

import typer


def register(app: typer.Typer) -> None:
    app.command()(tree)


def tree(
    file: str = typer.Argument(..., help="An ELF executable or shared library."),
    json_out: bool = typer.Option(False, "--json", help="Print the resolution as JSON."),
    env: List[str] = typer.Option([], "--env", help="KEY=VALUE to set (KEY alone to unset) for a what-if resolution."),
) -> int:
    """How the dynamic loader would resolve FILE, edge by edge, with missing symbol versions."""
    from tritondoctor.commands.common import console, environ_with, print_json
    from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS, UsageError
    from tritondoctor.loader import LoaderEnv, resolve
    from tritondoctor.render.tree import render_tree

    if not os.path.exists(file):
        raise UsageError(f"{file}: no such file")
    if os.path.isdir(file):
        raise UsageError(f"{file}: is a directory")
    result = resolve(file, LoaderEnv.from_system(environ=environ_with(env)))
    if json_out:
        print_json(result.to_json())
    else:
        render_tree(console(), result)
    return EXIT_OK if result.ok else EXIT_PROBLEMS
