"""`tritondoctor tree FILE`: how glibc's loader would resolve FILE, edge by edge."""

from __future__ import annotations

import os
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command()(tree)


def tree(
    file: Optional[str] = typer.Argument(None, help="An ELF executable or shared library."),
    json_out: bool = typer.Option(False, "--json", help="Print the resolution as JSON."),
    env: List[str] = typer.Option([], "--env", help="KEY=VALUE to set (KEY alone to unset) for a what-if resolution."),
    stub: bool = typer.Option(False, "--stub", help="The libraries the python-backend stub process of the target env would map."),
    imports: str = typer.Option("", "--imports", help="With --stub: modules the model imports (MOD,MOD,...), their extensions included."),
    python: Optional[str] = typer.Option(None, "--python", help="With --stub: the target environment's interpreter."),
    model_repository: List[str] = typer.Option(
        [], "--model-repository",
        help="With --stub: one tree per python-backend model of this repository (repeatable)."),
    backend_directory: Optional[str] = typer.Option(
        None, "--backend-directory", help="With --model-repository: the backend directory tritonserver will use."),
) -> int:
    """How the dynamic loader would resolve FILE, edge by edge, with missing symbol versions."""
    from tritondoctor.commands.common import console, environ_with, print_json
    from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS, UsageError
    from tritondoctor.loader import LoaderEnv, resolve
    from tritondoctor.render.tree import render_tree

    modules = [m.strip() for m in imports.split(",") if m.strip()]
    if stub:
        if file:
            raise UsageError("tree --stub takes no FILE: it resolves the stub of the target environment")
        if model_repository:
            return _model_trees(python, model_repository, backend_directory, modules, env, json_out)
        if backend_directory is not None:
            raise UsageError("--backend-directory goes with --model-repository")
        return _stub_tree(python, modules, env, json_out)
    if file is None:
        raise UsageError("tree: give an ELF FILE, or --stub")
    if imports or python or model_repository or backend_directory is not None:
        raise UsageError("--imports, --python, --model-repository and --backend-directory go with --stub")
    if not os.path.exists(file):
        raise UsageError(f"{file}: no such file")
    if os.path.isdir(file):
        raise UsageError(f"{file}: is a directory")
    result = resolve(file, LoaderEnv.from_system(environ=environ_with(env)))
    if json_out:
        print_json(result.to_json())
    else:
        render_tree(console(), result)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def _stub_tree(python: Optional[str], imports: List[str], env: List[str], json_out: bool) -> int:
    from tritondoctor.commands.common import console, environ_with, print_json, snapshot
    from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS, UsageError
    from tritondoctor.render.tree import render_stub_tree
    from tritondoctor.stubtree import StubTreeError, stub_process_tree

    environ = environ_with(env)
    snap = snapshot(python, environ=environ)
    if snap.target is None or snap.pytriton is None:
        raise UsageError(snap.target_error or f"no nvidia-pytriton in {snap.target.prefix if snap.target else 'the target'}")
    try:
        data = stub_process_tree(snap.target, snap.pytriton, snap.server_environ or environ, imports)
    except StubTreeError as exc:
        raise UsageError(str(exc)) from None
    if json_out:
        print_json(data)
    else:
        render_stub_tree(console(), data)
    return EXIT_OK if _stub_ok(data) else EXIT_PROBLEMS


def _stub_ok(data: dict) -> bool:  # type: ignore[type-arg]
    return not data.get("version_errors") and not data.get("missing_modules") and not data.get("errors")


def _model_trees(python: Optional[str], repositories: List[str], backend_directory: Optional[str], imports: List[str],
                 env: List[str], json_out: bool) -> int:
    from tritondoctor.commands.common import console, environ_with, print_json, snapshot
    from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS, UsageError
    from tritondoctor.render.tree import render_model_trees
    from tritondoctor.repository.config import ParserUnavailable
    from tritondoctor.repository.trees import model_stub_trees
    from tritondoctor.stubtree import StubTreeError

    for directory in repositories:
        if not os.path.isdir(directory):
            raise UsageError(f"--model-repository {directory}: no such directory")
    if backend_directory is not None and not os.path.isdir(backend_directory):
        raise UsageError(f"--backend-directory {backend_directory}: no such directory")
    environ = environ_with(env)
    snap = snapshot(python, environ=environ)
    try:
        data = model_stub_trees(repositories, snap.target, environ,
                                os.path.abspath(backend_directory) if backend_directory else None, imports,
                                cwd=os.getcwd())
    except (StubTreeError, ParserUnavailable) as exc:
        raise UsageError(str(exc)) from None
    if json_out:
        print_json(data)
    else:
        render_model_trees(console(), data)
    ok = not data["errors"] and data["models"] and all(_stub_ok(m) for m in data["models"])
    return EXIT_OK if ok else EXIT_PROBLEMS
