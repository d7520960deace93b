"""A resolution tree as libtree shows it, but with every library (libc and libstdc++ included),
the reason for each edge, and failing edges in red."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from tritondoctor.loader import Library, ResolvedTree


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


def render_stub_tree(console: "Console", data: dict) -> None:  # type: ignore[type-arg]
    """`tree --stub`: every library the stub process would map, in load order, with how it was
    found; extension modules of the named imports marked as such."""
    from rich.markup import escape

    if data.get("file"):
        console.print(f"[bold]{escape(str(data['file']))}[/] as run from {escape(str(data.get('run_as') or '?'))}")
    missing_versions = {(v.get("file"), v.get("version")) for v in data.get("version_errors", [])}
    bad_files = {f for f, _ in missing_versions}
    for lib in data.get("libraries", []):
        path = lib.get("path")
        colour = "red" if path is None or path in bad_files else "green"
        console.print(f"  [{colour}]{escape(str(lib.get('name')))}[/] => {escape(str(path or 'not found'))} "
                      f"[dim]({escape(str(lib.get('how', '')))})[/]")
    for ext in data.get("extensions", []):
        console.print(f"  [cyan]extension[/] {escape(str(ext.get('module')))}: {escape(str(ext.get('path')))}")
    for file, version in sorted(missing_versions, key=str):
        console.print(f"[red]version {escape(str(version))} not found in {escape(str(file))}[/]")
    for module in data.get("missing_modules", []):
        where = f"its execution environment {data['env']}" if data.get("env") else "the target environment"
        console.print(f"[red]module {escape(str(module))} is not installed in {escape(where)}[/]")
    for error in data.get("errors", []):
        console.print(f"[red]{escape(str(error))}[/]")


def render_model_trees(console: "Console", data: dict) -> None:  # type: ignore[type-arg]
    """`tree --stub --model-repository`: one stub tree per python-backend model."""
    from rich.markup import escape

    for error in data.get("errors", []):
        console.print(f"[red]{escape(str(error))}[/]")
    if not data.get("models"):
        console.print("no python-backend model in the repository")
    for model in data.get("models", []):
        env = f", execution environment {model['env']}" if model.get("env") else ""
        console.print(f"\n[bold]model '{escape(str(model.get('model')))}'[/] in {escape(str(model.get('repository')))}"
                      f"{escape(env)}")
        render_stub_tree(console, model)
        if model.get("extensions_from") == "packages":
            console.print("[dim]extension modules: every one in each imported package (the execution environment "
                          "is not run, so its imports are not followed)[/]")
