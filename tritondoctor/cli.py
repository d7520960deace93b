"""Command line: `tritondoctor check | tree | fix | env | smoke`.

Heavy modules are imported inside each command so that start-up stays inside check's budget.
Usage errors are one line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

import typer

from tritondoctor import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Diagnose and fix why PyTriton / Triton Inference Server will not start from a Python environment.",
)

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UsageFailure(Exception):
    """A one-line message for the user; exit status 2."""


def _console(stderr: bool = False):  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _parse_ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageFailure(f"--ports {text!r}: expected comma-separated port numbers") from None
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise UsageFailure(f"--ports {text!r}: ports must be between 1 and 65535")
    return ports


def _environ_with(overrides: List[str]) -> dict[str, str]:
    environ = dict(os.environ)
    for item in overrides:
        if "=" in item:
            key, value = item.split("=", 1)
            if not key:
                raise UsageFailure(f"--env {item!r}: expected KEY=VALUE (or KEY to unset it)")
            environ[key] = value
        else:
            environ.pop(item, None)
    return environ


@app.command()
def check(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment to inspect."),
    json_out: bool = typer.Option(False, "--json", help="Print findings as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the evidence behind each finding."),
    cpu_ok: bool = typer.Option(False, "--cpu-ok", help="A machine without a GPU is fine (CPU-only models)."),
    ports: str = typer.Option("8000,8001,8002", "--ports", help="Ports PyTriton will bind."),
    only: List[str] = typer.Option([], "--only", help="Run only these check ids (repeatable)."),
) -> None:
    """Static diagnosis of the environment: nothing is started or executed."""
    from tritondoctor.facts.target import TargetError
    from tritondoctor.registry import check_ids, run_checks
    from tritondoctor.report import exit_code, findings_json, render_findings
    from tritondoctor.snapshot import CheckOptions, take_snapshot

    options = CheckOptions(ports=_parse_ports(ports), cpu_ok=cpu_ok, verbose=verbose)
    if only:
        known = check_ids()
        unknown = sorted(set(only) - set(known))
        if unknown:
            raise UsageFailure(f"--only: unknown check id {', '.join(unknown)} (known: {', '.join(known)})")
    try:
        snap = take_snapshot(python=python, options=options)
    except TargetError as exc:
        raise UsageFailure(str(exc)) from None
    findings = run_checks(snap, only=set(only) or None)
    if json_out:
        print(json.dumps(findings_json(snap, findings), indent=2))
    else:
        render_findings(_console(), snap, findings, verbose=verbose)
    raise typer.Exit(exit_code(findings))


@app.command()
def tree(
    file: str = typer.Argument(..., help="An ELF executable or shared library."),
    json_out: bool = typer.Option(False, "--json", help="Print the resolution as JSON."),
    env: List[str] = typer.Option([], "--env", help="KEY=VALUE to set (KEY alone to unset) for a what-if resolution."),
) -> None:
    """How the dynamic loader would resolve FILE, edge by edge, with missing symbol versions."""
    from tritondoctor.loader import LoaderEnv, resolve
    from tritondoctor.report import render_tree

    if not os.path.exists(file):
        raise UsageFailure(f"{file}: no such file")
    if os.path.isdir(file):
        raise UsageFailure(f"{file}: is a directory")
    result = resolve(file, LoaderEnv.from_system(environ=_environ_with(env)))
    if json_out:
        data = result.to_json()
        print(json.dumps(data, indent=2))
    else:
        render_tree(_console(), result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_PROBLEMS)


@app.command()
def fix(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment to fix."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show the plan."),
    json_out: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    undo: bool = typer.Option(False, "--undo", help="Undo the last fix exactly."),
    force: bool = typer.Option(False, "--force", help="Apply plans that could not be proven; allow the conda base env."),
    package: List[str] = typer.Option([], "--package", help="A libstdcxx-ng / libstdcxx package archive to install offline."),
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip the smoke test after fixing."),
) -> None:
    """Plan, prove, apply (and undo) the fixes for what `check` found."""
    from tritondoctor.cmd_fix import fix_command

    raise typer.Exit(fix_command(python, yes, dry_run, json_out, undo, force, list(package), no_smoke))


@app.command("env")
def env_cmd(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment."),
    shell: str = typer.Option("sh", "--shell", help="sh (bash, zsh) or fish."),
) -> None:
    """Print the exports that make PyTriton load correctly: eval "$(tritondoctor env)"."""
    from tritondoctor.cmd_fix import env_command

    raise typer.Exit(env_command(python, shell))


@app.command()
def smoke(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment to test."),
    timeout: float = typer.Option(120.0, "--timeout", help="Overall limit in seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the server's raw log."),
    log: Optional[str] = typer.Option(None, "--log", help="Where to save the server log."),
    cpu: bool = typer.Option(False, "--cpu", help="Use the CPU even when a GPU is present."),
) -> None:
    """Serve a real model through PyTriton (bind, serve, infer over HTTP and gRPC) and report."""
    from tritondoctor.facts.target import TargetError, choose_interpreter
    from tritondoctor.smoke import SmokeUsageError, render, run_smoke

    if timeout <= 0:
        raise UsageFailure("--timeout must be positive")
    try:
        executable, _ = choose_interpreter(os.environ, python)
        result = run_smoke(executable, dict(os.environ), timeout=timeout, verbose=verbose, log_path=log, prefer_gpu=not cpu)
    except (TargetError, SmokeUsageError) as exc:
        raise UsageFailure(str(exc)) from None
    if json_out:
        print(json.dumps(result.to_json(), indent=2))
    else:
        render(result, _console())
    raise typer.Exit(result.exit_code)


@app.command()
def version() -> None:
    """Print tritondoctor's version."""
    print(__version__)


def main(argv: Optional[List[str]] = None) -> None:
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="tritondoctor", standalone_mode=False)
    except UsageFailure as exc:
        print(f"tritondoctor: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("tritondoctor: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # bad flags, missing arguments: click's usage errors
        message = exc.format_message()
        if message:  # (no arguments at all: the help was shown, nothing more to say)
            print(f"tritondoctor: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except Exception as exc:  # noqa: BLE001 - the tool's own failure: one line, exit 2
        if os.environ.get("TRITONDOCTOR_DEBUG"):
            raise
        print(f"tritondoctor: internal error: {exc.__class__.__name__}: {exc} (set TRITONDOCTOR_DEBUG=1 for a traceback)",
              file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
