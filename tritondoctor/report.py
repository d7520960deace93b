"""Rendering findings and resolution trees: rich for people, JSON for machines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tritondoctor import __version__
from tritondoctor.findings import Finding, Status, worst

if TYPE_CHECKING:
    from rich.console import Console

    from tritondoctor.loader import Library, ResolvedTree
    from tritondoctor.snapshot import Snapshot

MARKS = {
    Status.OK: "[green]✓[/]",
    Status.WARN: "[yellow]![/]",
    Status.ERROR: "[red]✗[/]",
    Status.SKIP: "[dim]–[/]",
}


def findings_json(snap: "Snapshot", findings: list[Finding]) -> dict[str, Any]:
    return {
        "tool_version": __version__,
        "target": snap.target_json(),
        "findings": [f.to_json() for f in findings],
        "summary": {
            "errors": sum(f.status is Status.ERROR for f in findings),
            "warnings": sum(f.status is Status.WARN for f in findings),
        },
    }


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.status is Status.ERROR for f in findings) else 0


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


def render_tree(console: "Console", tree: "ResolvedTree") -> None:
    """The resolution as libtree shows it, but with every library (libc and libstdc++ included),
    the reason for each edge, and failing edges in red."""
    from rich.markup import escape
    from rich.tree import Tree

    missing_versions: dict[str, list[str]] = {}
    for miss in tree.version_errors:
        missing_versions.setdefault(miss.file, []).append(f"{miss.version} (required by {miss.required_by})")
    root = Tree(f"[bold]{escape(tree.file)}[/]")
    for error in tree.errors:
        if "cannot open shared object file" not in error:
            root.add(f"[red]{escape(error)}[/]")
    shown: set[str] = set()

    def label(kind: str, name: str, lib: "Library", repeat: bool) -> str:
        if lib.path is None:
            colour = "yellow" if lib.optional else "red"
            extra = " (auxiliary filter: optional)" if lib.optional else ""
            text = f"[{colour}]{escape(name)} => not found{extra}[/]"
            for rejected in lib.rejected:
                text += f"\n[dim]  rejected {escape(rejected.path)}: {escape(rejected.reason)}[/]"
            return text
        bad = lib.path in missing_versions
        if repeat and not bad:
            return f"[dim]{escape(name)} (already loaded)[/]"
        colour = "red" if bad else "green"
        text = f"[{colour}]{escape(name)}[/] => {escape(lib.path)} [dim]({escape(lib.how)}{', ' + kind if kind != 'needed' else ''})[/]"
        if bad and not repeat:
            for miss in missing_versions[lib.path]:
                text += f"\n[red]  version {escape(miss)} not found[/]"
        return text

    def add(branch: Tree, requester: str) -> None:
        for kind, name, lib in tree.edges.get(requester, []):
            repeat = lib.path is not None and lib.path in shown
            node = branch.add(label(kind, name, lib, repeat))
            if lib.path and not repeat:
                shown.add(lib.path)
                add(node, lib.path)

    main_path = next(iter(tree.edges), tree.file)
    shown.add(main_path)
    add(root, main_path)
    console.print(root)
    for warning in tree.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if tree.ok:
        console.print("[green]every library resolves and every symbol version is provided[/]")
    else:
        console.print(
            f"[red]{len(tree.missing)} not found, {len(tree.version_errors)} missing symbol version"
            f"{'s' * (len(tree.version_errors) != 1)}[/]"
        )
