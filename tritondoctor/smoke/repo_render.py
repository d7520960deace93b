"""Human output for a repository smoke test: one line per model, then what broke and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from tritondoctor.findings import Finding, Status
from tritondoctor.render.marks import MARKS

if TYPE_CHECKING:
    from tritondoctor.smoke.repo_result import (
        ModelResult,
        ProtocolResult,
        RepoSmokeResult,
    )


def _protocol(label: str, result: "ProtocolResult | None") -> str:
    if result is None:
        return ""
    return f"{label} ok" if result.ok else f"[red]{label} failed[/]"


def _model_line(model: "ModelResult") -> str:
    mark = MARKS[Status.OK if model.passed else Status.ERROR]
    if not model.ready:
        return f"  {mark} {escape(model.name)}: [red]not ready[/] ({escape(model.state or 'not listed by the server')})"
    parts = ["ready"] + [p for p in (_protocol("HTTP", model.http), _protocol("gRPC", model.grpc)) if p]
    if model.infer_skipped:
        parts.append(f"[dim]no request sent: {escape(model.infer_skipped)}[/]")
    return f"  {mark} {escape(model.name)}: " + " · ".join(parts)


def _finding(finding: Finding, console: Console) -> None:
    console.print(f"  {MARKS[finding.status]} {escape(finding.title)}")
    for line in finding.detail.splitlines():
        console.print(f"      {escape(line)}")
    if finding.fix is not None:
        console.print(f"      [bold]fix:[/] {escape(finding.fix.summary)}")
        for command in finding.fix.commands:
            console.print(f"        [cyan]{escape(command)}[/]", soft_wrap=True)


def render_repo_smoke(result: "RepoSmokeResult", console: Console) -> None:
    verdict = "[bold green]Repository smoke test passed[/]" if result.passed else "[bold red]Repository smoke test failed[/]"
    console.print(f"{verdict} — {escape(', '.join(result.repositories))}")
    server = "nvidia-pytriton's bundled tritonserver" if result.bundled else result.tritonserver
    console.print(f"  server: {escape(server)} · Python {escape(result.python)}")
    for model in result.models:
        console.print(_model_line(model))
    for finding in result.findings:
        _finding(finding, console)
    ports = ", ".join(f"{k} {v}" for k, v in result.ports.items())
    console.print(f"  took {result.duration_s:.2f} s, ports {ports} on 127.0.0.1")
    if result.log_path:
        console.print(f"  [dim]server log: {escape(result.log_path)}[/]")
