"""`tritondoctor smoke`: a real model through PyTriton, bind → serve → infer."""

from __future__ import annotations

import os
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command()(smoke)


def smoke(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment to test."),
    timeout: float = typer.Option(120.0, "--timeout", help="Overall limit in seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the server's raw log."),
    log: Optional[str] = typer.Option(None, "--log", help="Where to save the server log."),
    cpu: bool = typer.Option(False, "--cpu", help="Use the CPU even when a GPU is present."),
) -> int:
    """Serve a real model through PyTriton (bind, serve, infer over HTTP and gRPC) and report."""
    from tritondoctor.commands.common import console, positive_seconds, print_json
    from tritondoctor.errors import UsageError
    from tritondoctor.facts.target import TargetError, choose_interpreter
    from tritondoctor.smoke import SmokeUsageError, render, run_smoke

    positive_seconds("--timeout", timeout)
    try:
        executable, _ = choose_interpreter(os.environ, python)
        result = run_smoke(executable, dict(os.environ), timeout=timeout, verbose=verbose, log_path=log,
                           prefer_gpu=not cpu)
    except (TargetError, SmokeUsageError) as exc:
        raise UsageError(str(exc)) from None
    if json_out:
        print_json(result.to_json())
    else:
        render(result, console())
    return int(result.exit_code)
