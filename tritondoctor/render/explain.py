"""Human output for `tritondoctor explain`: each catalog row the text shows, then what is harmless."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from tritondoctor.explain import Explained, Explanation


def _rows(rows: tuple[int, ...]) -> str:
    if not rows:
        return "not a catalog row"
    return ("rows " if len(rows) > 1 else "row ") + ", ".join(str(r) for r in rows)


def _match(console: Console, match: "Explained") -> None:
    console.print(f"[bold red]✗[/] [bold]{_rows(match.rows)}[/] · {escape(match.id)}")
    console.print(f"    line:    {escape(match.line)}")
    if match.cause:
        console.print(f"    cause:   {escape(match.cause)}")
    console.print(f"    confirm: {escape(match.confirm[0])}" if match.confirm else "    confirm: tritondoctor check")
    for command in match.confirm[1:]:
        console.print(f"             {escape(command)}")
    console.print(f"    remedy:  {escape(match.remedy)}")
    for command in match.remedy_commands:
        console.print(f"             [cyan]{escape(command)}[/]")


def render(explanation: "Explanation", console: Console) -> None:
    from tritondoctor.explain import GPU_ROW, UNKNOWN

    if not explanation.known:
        console.print(UNKNOWN)
        return
    for match in explanation.matches:
        _match(console, match)
    if explanation.harmless:
        where = "on a host with a GPU" if explanation.gpu_present else "on a host without a GPU"
        console.print(f"[green]✓[/] {len(explanation.harmless)} message(s) are expected {where} and harmless:")
        for item in explanation.harmless:
            console.print(f"    {escape(item.line)} — {escape(item.why)}")
        if explanation.gpu_note:
            console.print(f"    (on a host with an NVIDIA GPU the CUDA ones are a problem, catalog row {GPU_ROW}: "
                          "rerun with --gpu)")
    if not explanation.matches:
        console.print("nothing in this text is a problem")
