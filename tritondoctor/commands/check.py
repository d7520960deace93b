"""`tritondoctor check`: snapshot → declared checks → findings → report. Nothing is executed."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command()(check)


def check(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment to inspect."),
    json_out: bool = typer.Option(False, "--json", help="Print findings as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the evidence behind each finding."),
    cpu_ok: bool = typer.Option(False, "--cpu-ok", help="A machine without a GPU is fine (CPU-only models)."),
    ports: str = typer.Option("8000,8001,8002", "--ports", help="Ports PyTriton will bind."),
    only: List[str] = typer.Option([], "--only", help="Run only these check ids (repeatable)."),
    model_repository: List[str] = typer.Option(
        [], "--model-repository", help="A Triton model repository to inspect (repeatable, as tritonserver takes it)."),
    backend_directory: Optional[str] = typer.Option(
        None, "--backend-directory", help="The backend directory tritonserver will use (default: /opt/tritonserver/backends, else PyTriton's)."),
) -> int:
    """Static diagnosis of the environment: nothing is started or executed."""
    import os

    from tritondoctor.commands.common import console, parse_ports, print_json, snapshot
    from tritondoctor.errors import UsageError
    from tritondoctor.options import CheckOptions
    from tritondoctor.registry import check_ids, run_checks
    from tritondoctor.render.findings import exit_code, findings_json, render_findings

    for directory in model_repository:
        if not os.path.isdir(directory):
            raise UsageError(f"--model-repository {directory}: no such directory")
    if backend_directory is not None and not os.path.isdir(backend_directory):
        raise UsageError(f"--backend-directory {backend_directory}: no such directory")
    options = CheckOptions(ports=parse_ports(ports), cpu_ok=cpu_ok, verbose=verbose,
                           model_repositories=tuple(os.path.abspath(d) for d in model_repository),
                           backend_directory=os.path.abspath(backend_directory) if backend_directory else None)
    if only:
        known = check_ids()
        unknown = sorted(set(only) - set(known))
        if unknown:
            raise UsageError(f"--only: unknown check id {', '.join(unknown)} (known: {', '.join(known)})")
    snap = snapshot(python, options=options)
    findings = run_checks(snap, only=set(only) or None)
    if json_out:
        print_json(findings_json(snap, findings))
    else:
        render_findings(console(), snap, findings, verbose=verbose)
    return exit_code(findings)
