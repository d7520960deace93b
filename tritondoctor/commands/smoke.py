"""`tritondoctor smoke`: a real model through PyTriton, bind → serve → infer."""

from __future__ import annotations

import os
from typing import List, Optional

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
    model_repository: List[str] = typer.Option(
        [], "--model-repository", help="Serve this Triton model repository instead (repeatable): load, ready, infer each model."),
    tritonserver: Optional[str] = typer.Option(
        None, "--tritonserver", help="With --model-repository: the tritonserver to run (default: the one in nvidia-pytriton)."),
    backend_directory: Optional[str] = typer.Option(
        None, "--backend-directory", help="With --model-repository and --tritonserver: its backend directory."),
) -> int:
    """Serve a real model through PyTriton (bind, serve, infer over HTTP and gRPC) and report."""
    from tritondoctor.commands.common import console, positive_seconds, print_json
    from tritondoctor.errors import UsageError
    from tritondoctor.facts.target import TargetError, choose_interpreter
    from tritondoctor.smoke import SmokeUsageError, render, run_smoke

    positive_seconds("--timeout", timeout)
    if model_repository:
        return _repository_smoke(python, model_repository, tritonserver, backend_directory, timeout, json_out, log)
    if tritonserver or backend_directory:
        raise UsageError("--tritonserver and --backend-directory go with --model-repository")
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


def _repository_smoke(python: Optional[str], repos: List[str], tritonserver: Optional[str],
                      backend_directory: Optional[str], timeout: float, json_out: bool, log: Optional[str]) -> int:
    from tritondoctor.commands.common import console, print_json
    from tritondoctor.errors import UsageError
    from tritondoctor.facts.target import TargetError, choose_interpreter
    from tritondoctor.smoke.repository import render_repo_smoke, run_repository_smoke
    from tritondoctor.smoke.runner import SmokeUsageError

    for directory in repos:
        if not os.path.isdir(directory):
            raise UsageError(f"--model-repository {directory}: no such directory")
    try:
        executable, _ = choose_interpreter(os.environ, python)
        result = run_repository_smoke([os.path.abspath(r) for r in repos], executable, dict(os.environ), tritonserver,
                                      backend_directory, timeout, log_path=log)
    except (TargetError, SmokeUsageError) as exc:
        raise UsageError(str(exc)) from None
    if json_out:
        print_json(result.to_json())
    else:
        render_repo_smoke(result, console())
    return int(result.exit_code)
