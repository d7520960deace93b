"""Human output for a smoke result: what ran, how fast, what broke and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from tritondoctor.findings import Finding, Status
from tritondoctor.render.marks import MARKS as _MARK

if TYPE_CHECKING:
    from tritondoctor.smoke.runner import SmokeResult



def _s(value: float | None) -> str:
    return "?" if value is None else (f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s")


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f} ms"


def render(result: "SmokeResult", console: Console) -> None:
    interp = result.interpreter
    who = f"Python {interp.get('version', '?')} at {result.python}" if interp else result.python
    if result.passed:
        console.print(f"[bold green]Smoke test passed[/] — {escape(who)}")
    else:
        console.print(f"[bold red]Smoke test failed[/] — {escape(who)}")
    if result.device:
        console.print(f"  device: [bold]{result.device}[/] — {escape(result.device_reason)}")
    t = result.timings
    if t.server_ready_s is not None:
        parts = [f"server ready {_s(t.server_ready_s)}"]
        if t.model_ready_s is not None:
            parts.append(f"model loaded {_s(t.model_ready_s)}")
        if t.first_infer_s is not None:
            parts.append(f"first HTTP infer {_s(t.first_infer_s)}")
        if t.grpc_first_infer_s is not None:
            parts.append(f"first gRPC infer {_s(t.grpc_first_infer_s)}")
        console.print("  " + " · ".join(parts))
    if t.p50_ms is not None:
        batching = ""
        if t.model_calls is not None and t.burst_requests:
            batching = f" ({t.burst_requests} requests served in {t.model_calls} model calls, largest batch {t.max_batch})"
        console.print(f"  burst of {t.burst_requests} requests, {t.burst_concurrency} at a time: "
                      f"p50 {_ms(t.p50_ms)} · p99 {_ms(t.p99_ms)} · {t.throughput_rps} req/s{batching}")
    if result.passed and result.max_error is not None:
        console.print(f"  outputs match a local NumPy computation over HTTP and gRPC (max error {result.max_error:.1e})")
    if t.total_s is not None:
        where = f", ports {', '.join(f'{k} {v}' for k, v in result.ports.items())} on 127.0.0.1" if t.server_ready_s is not None else ""
        console.print(f"  took {_s(t.total_s)} in all{where}")
    problems = [f for f in result.findings if f.status in (Status.ERROR, Status.WARN)]
    notes = [f for f in result.findings if f.status not in (Status.ERROR, Status.WARN)]
    for finding in problems + notes:
        _finding(finding, console, brief=finding.status is Status.OK)
    if result.log_path:
        console.print(f"  [dim]full log: {escape(result.log_path)}[/]")


def _finding(finding: Finding, console: Console, brief: bool) -> None:
    console.print(f"  {_MARK[finding.status]} {escape(finding.title)}")
    if finding.detail:
        for line in finding.detail.splitlines():
            console.print(f"      [dim]{escape(line)}[/]" if brief else f"      {escape(line)}")
    if finding.fix is not None and not brief:
        console.print(f"      [bold]fix:[/] {escape(finding.fix.summary)}")
        for command in finding.fix.commands:
            console.print(f"        [cyan]{escape(command)}[/]", soft_wrap=True)
