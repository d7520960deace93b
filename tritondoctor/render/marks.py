"""The one table of status marks every renderer uses."""

from __future__ import annotations

from tritondoctor.findings import Status

MARKS = {
    Status.OK: "[green]✓[/]",
    Status.WARN: "[yellow]![/]",
    Status.ERROR: "[red]✗[/]",
    Status.SKIP: "[dim]–[/]",
}


def mark(status: Status) -> str:
    return MARKS[status]
