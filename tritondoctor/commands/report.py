"""`tritondoctor report`: the diagnosis as Markdown to paste under an issue (or JSON), redacted."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command()(report)


def report(
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter of the environment to inspect."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report to FILE instead of stdout."),
    smoke_log: Optional[str] = typer.Option(None, "--smoke-log", help="Include the tail of this smoke / server log."),
    keep_host: bool = typer.Option(False, "--keep-host", help="Keep host and node names (hidden by default)."),
    redact: List[str] = typer.Option([], "--redact", help="Also hide text matching this regular expression (repeatable)."),
    cpu_ok: bool = typer.Option(False, "--cpu-ok", help="A machine without a GPU is fine (CPU-only models)."),
    ports: str = typer.Option("8000,8001,8002", "--ports", help="Ports PyTriton will bind."),
) -> int:
    """A redacted report of the environment for an issue: versions, resolutions, every finding."""
    import json

    from tritondoctor.commands.common import parse_ports, snapshot
    from tritondoctor.errors import EXIT_OK
    from tritondoctor.options import CheckOptions
    from tritondoctor.registry import run_checks
    from tritondoctor.share import markdown
    from tritondoctor.share.redact import Redactor
    from tritondoctor.share.report import build_report, redact_report

    patterns = _compile_patterns(redact)
    log = (smoke_log, _read_text(smoke_log, "--smoke-log")) if smoke_log else None
    options = CheckOptions(ports=parse_ports(ports), cpu_ok=cpu_ok)
    snap = snapshot(python, options=options)
    data = build_report(snap, run_checks(snap), smoke_log=log)
    redactor = Redactor.for_environment(snap.environ, patterns, keep_host=keep_host)
    redacted = redact_report(data, redactor)
    if json_out:
        text = json.dumps(redacted, indent=2) + "\n"
    else:
        final = Redactor.for_environment(snap.environ, patterns, keep_host=keep_host)
        body = final.text(markdown.render(redacted, "{redaction}"))
        redactor.counts.update(final.counts)
        text = body.replace("{redaction}", redactor.summary(), 1)
    _write(text, output)
    return EXIT_OK


def _compile_patterns(patterns: List[str]) -> List[str]:
    import re

    from tritondoctor.errors import UsageError

    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"--redact {pattern!r}: not a regular expression ({exc})") from None
        if re.compile(pattern).match(""):
            raise UsageError(f"--redact {pattern!r}: matches the empty string")
    return list(patterns)


def _read_text(path: str, option: str) -> str:
    from tritondoctor.errors import UsageError

    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None


def _write(text: str, output: Optional[str]) -> None:
    import sys

    from tritondoctor.errors import UsageError

    if output is None:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(f"--output {output}: {exc.strerror or exc}") from None
    print(f"tritondoctor: report written to {output}", file=sys.stderr)
