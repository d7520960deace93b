"""The fleet summary for people: the largest group in full, the others by what sets them apart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

from tritondoctor.findings import Status
from tritondoctor.fleet.merge import RESOLUTION_KEYS, RESOLUTION_LABELS
from tritondoctor.render.marks import MARKS

if TYPE_CHECKING:
    from rich.console import Console

HOSTS_SHOWN = 12  # per group; --json lists them all
_RANKS = {s.value: s.rank for s in Status}
_WORST = {rank: value for value, rank in _RANKS.items()}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _rank(statuses: str) -> int:
    return max((_RANKS.get(s, 0) for s in statuses.split("+")), default=0)


def _mark(statuses: str) -> str:
    return MARKS[Status(_WORST[_rank(statuses)])]


def _hosts(hosts: List[str]) -> str:
    shown = ", ".join(hosts[:HOSTS_SHOWN])
    more = len(hosts) - HOSTS_SHOWN
    return f"{shown}, … and {more} more (--json lists all)" if more > 0 else shown


def render_fleet(console: "Console", summary: Dict[str, Any]) -> None:
    from rich.markup import escape

    groups = summary["groups"]
    unreadable = summary["unreadable"]
    head = f"[bold]{_plural(summary['nodes'], 'node')}[/] in {_plural(len(groups), 'group')}"
    head += f"; {summary['nodes_with_errors']} with errors"
    if unreadable:
        head += f"; [red]{len(unreadable)} could not be read[/]"
    console.print(head)
    for number, group in enumerate(groups, 1):
        counts = f"{_plural(group['summary']['errors'], 'error')}, {_plural(group['summary']['warnings'], 'warning')}"
        console.print(f"\n[bold]group {number}[/] · {_plural(group['size'], 'node')} · {counts}")
        console.print(f"  hosts: {escape(_hosts(group['hosts']))}")
        if number == 1:
            _render_largest(console, group)
        else:
            _render_differences(console, group)
    if unreadable:
        console.print(f"\n[bold red]could not be read[/] · {_plural(len(unreadable), 'node')}")
        for node in unreadable:
            console.print(f"  {MARKS[Status.ERROR]} {escape(node['host'])} [dim]({escape(node['source'])})[/]: "
                          f"{escape(node['error'] or 'unknown error')}")


def _render_largest(console: "Console", group: Dict[str, Any]) -> None:
    from rich.markup import escape

    for finding in group["findings"]:
        if finding["status"] in ("warn", "error"):
            console.print(f"  {_mark(finding['status'])} {escape(finding['title'])} [dim]\\[{finding['id']}][/]")
    for key in RESOLUTION_KEYS:
        value = group["resolutions"].get(key)
        if value is not None:
            console.print(f"  [dim]{RESOLUTION_LABELS[key]}:[/] {escape(value)}")


def _render_differences(console: "Console", group: Dict[str, Any]) -> None:
    from rich.markup import escape

    differs = group.get("differs_from_largest") or {}
    titles: Dict[str, str] = {}
    for finding in sorted(group["findings"], key=lambda f: _rank(f["status"])):
        titles[finding["id"]] = finding["title"]  # the worst of the id's findings wins
    console.print("  differs from group 1:")
    for check_id, change in differs.get("findings", {}).items():
        title = titles.get(check_id, "")
        console.print(f"    {_mark(change['this'])} {escape(check_id)}: {change['this']} (group 1: {change['largest']})"
                      + (f" [dim]— {escape(title)}[/]" if title else ""))
    for key, change in differs.get("resolutions", {}).items():
        console.print(f"    {RESOLUTION_LABELS[key]}: {escape(change['this'] or 'none')} "
                      f"[dim](group 1: {escape(change['largest'] or 'none')})[/]")
