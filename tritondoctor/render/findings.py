"""Findings: rich for people, JSON for machines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tritondoctor import __version__
from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS
from tritondoctor.findings import Finding, Status, worst
from tritondoctor.render.marks import MARKS
from tritondoctor.share.host import host_json

if TYPE_CHECKING:
    from rich.console import Console

    from tritondoctor.snapshot import Snapshot



def findings_json(snap: "Snapshot", findings: list[Finding]) -> dict[str, Any]:
    return {
        "tool_version": __version__,
        "target": snap.target_json(),
        "host": host_json(snap.environ),
        "findings": [f.to_json() for f in findings],
        "summary": {
            "errors": sum(f.status is Status.ERROR for f in findings),
            "warnings": sum(f.status is Status.WARN for f in findings),
        },
    }


def exit_code(findings: list[Finding]) -> int:
    return EXIT_PROBLEMS if any(f.status is Status.ERROR for f in findings) else EXIT_OK


def render_findings(console: "Console", snap: "Snapshot", findings: list[Finding], verbose: bool = False) -> None:
    from rich.markup import escape

    from tritondoctor.registry import AREAS

    target = snap.target
    if target is not None:
        console.print(
            f"[bold]tritondoctor {__version__}[/] · Python {target.version_string} at {escape(target.executable)} "
            f"({target.env_kind}, chosen by {target.selected_by})"
        )
    areas = [a for a in AREAS if any(f.area == a for f in findings)]
    areas += sorted({f.area for f in findings if f.area not in AREAS})
    for area in areas:
        group = [f for f in findings if f.area == area]
        mark = MARKS[worst(group)] if any(f.status is not Status.SKIP for f in group) else MARKS[Status.SKIP]
        console.print(f"\n{mark} [bold]{escape(area)}[/]")
        for finding in group:
            console.print(f"    {MARKS[finding.status]} {escape(finding.title)} [dim]\\[{finding.id}][/]")
            problem = finding.status in (Status.WARN, Status.ERROR)
            if finding.detail and (problem or verbose):
                console.print(f"        [dim]{escape(finding.detail)}[/]")
            if problem and finding.fix is not None:
                console.print(f"        [cyan]fix:[/] {escape(finding.fix.summary)}")
                for command in finding.fix.commands:
                    console.print(f"          [bold]{escape(command)}[/]")
            if verbose:
                for line in _evidence_lines(finding.evidence):
                    console.print(f"        [dim]{escape(line)}[/]")
    errors = sum(f.status is Status.ERROR for f in findings)
    warnings = sum(f.status is Status.WARN for f in findings)
    bad_areas = len({f.area for f in findings if f.status in (Status.ERROR, Status.WARN)})
    console.print()
    if errors or warnings:
        console.print(
            f"[bold]{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)} "
            f"in {bad_areas} area{'s' * (bad_areas != 1)}.[/]"
            + (" Run [bold]tritondoctor fix[/] to repair what can be repaired." if errors else "")
        )
    else:
        console.print("[green bold]No problems found.[/]")


def _evidence_lines(evidence: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in evidence.items():
        if isinstance(value, list):
            if not value:
                continue
            lines.append(f"{key}:")
            lines += [f"  {item}" for item in value]
        else:
            lines.append(f"{key}: {value}")
    return lines
