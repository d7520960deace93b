"""`tritondoctor fix`: plan, prove, apply, re-check, smoke — or undo the last fix exactly."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command()(fix)


def fix(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment to fix."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show the plan."),
    json_out: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    undo: bool = typer.Option(False, "--undo", help="Undo the last fix exactly."),
    force: bool = typer.Option(False, "--force", help="Apply plans that could not be proven; allow the conda base env."),
    package: List[str] = typer.Option([], "--package", help="A libstdcxx-ng / libstdcxx package archive to install offline."),
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip the smoke test after fixing."),
    model_repository: List[str] = typer.Option(
        [], "--model-repository", help="A Triton model repository whose models may get their own stub (repeatable); "
                                       "with --undo: undo the fixes of its models."),
) -> int:
    """Plan, prove, apply (and undo) the fixes for what `check` found."""
    from tritondoctor.fixpipeline import FixRequest, run_fix

    request = FixRequest.from_options(python=python, yes=yes, dry_run=dry_run, json_out=json_out, undo=undo,
                                      force=force, packages=tuple(package), no_smoke=no_smoke,
                                      model_repositories=tuple(model_repository))
    return run_fix(request)
