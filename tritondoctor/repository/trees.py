"""`tree --stub --model-repository DIR`: per python-backend model, every library its stub process
would map, statically.

Each model's stub (its own, else the backend's) is resolved as the backend runs it, with the
execution environment's lib/ first, and the extension modules its Python imports are dlopen()ed
in import order into the same link map (tritondoctor.stubtree). Where the stub runs the target
environment's Python, modules are followed through their import statements by the locating
script in that interpreter, from model.py and triton_python_backend_utils.py on ("extensions":
"imports"). Inside an execution environment nothing is run and only shared objects are unpacked,
so each module model.py imports (and numpy, which the stub imports itself) brings every
extension module of its package ("extensions": "packages"): an upper bound of what the process
maps, in the package's file order.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

from tritondoctor.facts.target import TargetPython
from tritondoctor.repository.envview import ArchiveView, View
from tritondoctor.repository.gather import opened_repositories
from tritondoctor.repository.imports import is_builtin
from tritondoctor.repository.plan import ModelPlan
from tritondoctor.repository.session import Session
from tritondoctor.repository.types import EnvFacts
from tritondoctor.stubtree import STUB_MODULES, UTILS_FILE, StubTreeError, locate_extensions, resolve_stub_process

Display = Callable[[str], str]
# What the stub's Python imports by itself that an execution environment provides as a package.
STUB_PACKAGES = ("numpy",)


def model_stub_trees(dirs: Sequence[str], target: TargetPython | None, environ: Mapping[str, str],
                     backend_directory: str | None, imports: Sequence[str], *, cwd: str) -> dict[str, Any]:
    """{"models": [one `tree --stub` object per python-backend model (and per model whose
    config.pbtxt cannot be read, with the error), with "repository", "model", "env" and
    "extensions_from"], "errors": [repositories that could not be listed]}."""
    packages = [*STUB_PACKAGES, *(m.split(".")[0] for m in imports)]
    with opened_repositories(dirs, target, environ, backend_directory, cwd=cwd, extra_modules=packages) as opened:
        models = [_model_tree(opened.session, plan, target, imports)
                  for _repository, plans, _error in opened.listed for plan in plans
                  if plan.config_error is not None or plan.backend == "python"]
        errors = [error for _repository, _plans, error in opened.listed if error]
    return {"models": models, "errors": errors}


def _model_tree(session: Session, plan: ModelPlan, target: TargetPython | None,
                named: Sequence[str]) -> dict[str, Any]:
    env, view = session.env_of(plan)
    head: dict[str, Any] = {"repository": plan.repository, "model": plan.name,
                            "env": env.path if env is not None else None}
    stub = plan.stub
    why = _not_modelled(plan, env, view, target)
    if why or stub is None:
        return {**head, "file": stub.path if stub else None, "run_as": (stub.run_as or stub.path) if stub else None,
                "libraries": [], "version_errors": [], "errors": [why], "warnings": [], "extensions": [],
                "missing_modules": []}
    wanted = {*named, *(i.module for i in plan.imports if not i.optional)}  # a missing one is a problem
    if env is None:
        assert target is not None  # _not_modelled
        extensions, missing, source = _followed_imports(session, plan, target, named)
    else:
        extensions, missing, source = _package_extensions(session, plan, named)
    tree = resolve_stub_process(stub.path, stub.run_as, session.stub_loader_env(view), extensions)
    display, _in_env = session.display(env, view)
    out = _displayed(tree.to_json(), display, _archive_root(env, view))
    out.update(head)
    out["run_as"] = stub.run_as or stub.path
    out["extensions_from"] = source
    out["extensions"] = [{**e, "path": display(e["path"])} for e in extensions]
    out["missing_modules"] = [m for m in missing if m in wanted]
    return out


def _not_modelled(plan: ModelPlan, env: EnvFacts | None, view: View | None, target: TargetPython | None) -> str:
    if plan.config_error is not None:  # its backend is unknown: it may be a python model
        error = plan.config_error
        where = ":".join(str(p) for p in (error.file, error.line, error.column) if p is not None)
        return f"{where}: {error.message}"
    stub = plan.stub
    if stub is None or not stub.exists:
        return f"no python backend stub at {stub.path if stub else 'the backend directory'}"
    if stub.elf_error:
        return f"{stub.path}: {stub.elf_error}"
    if env is not None and (view is None or env.error):
        return f"execution environment {env.path}: {env.error or 'cannot be read'}"
    if env is None and target is None:
        return "no target Python to follow the model's imports in (pass --python)"
    return ""


def _followed_imports(session: Session, plan: ModelPlan, target: TargetPython,
                      named: Sequence[str]) -> tuple[list[dict[str, str]], list[str], str]:
    """Extension modules in import order, from the stub's own imports, its utils module and
    model.py, then the named modules, located by the script in the target interpreter."""
    utils = os.path.join(session.python_lib, UTILS_FILE)
    model_file = next((v.model_file for v in reversed(plan.versions) if v.model_file_exists), None)
    files = [f for f in (utils, model_file) if f and os.path.isfile(f)]
    try:
        found = locate_extensions(target.executable, session.base_environ, [*STUB_MODULES, *named], files)
    except StubTreeError as exc:
        raise StubTreeError(f"model '{plan.name}': {exc}") from None
    return list(found.get("extensions", [])), list(found.get("missing", [])), "imports"


def _package_extensions(session: Session, plan: ModelPlan,
                        named: Sequence[str]) -> tuple[list[dict[str, str]], list[str], str]:
    """Every extension module of each package (top-level name) the stub's Python would import."""
    modules = [*STUB_PACKAGES, *(i.module for i in plan.imports), *named]
    extensions: list[dict[str, str]] = []
    missing: list[str] = []
    for module in dict.fromkeys(m for m in modules if not is_builtin(m.split(".")[0])):
        files = session.package_extensions(plan, module.split(".")[0])
        if files is None:
            missing.append(module)
            continue
        extensions += [{"module": module, "path": path, "via": "package"} for path in files]
    return extensions, missing, "packages"


def _archive_root(env: EnvFacts | None, view: View | None) -> str | None:
    return view.root.rstrip("/") + "/" if env is not None and isinstance(view, ArchiveView) else None


def _displayed(data: dict[str, Any], display: Display, root: str | None) -> dict[str, Any]:
    """Paths inside a packed environment's unpack directory shown as `<tarball>!<member>`."""
    if root is None:
        return data

    def text(value: str) -> str:
        return value.replace(root, display(root))

    data["file"] = display(data["file"])
    for lib in data["libraries"]:
        lib["path"] = display(lib["path"]) if lib["path"] else lib["path"]
        lib["needed_by"] = [display(p) for p in lib["needed_by"]]
        lib["search_dir"] = display(lib["search_dir"]) if lib.get("search_dir") else lib.get("search_dir")
        lib["rejected"] = [{**r, "path": display(r["path"])} for r in lib["rejected"]]
    for error in data["version_errors"]:
        error["file"], error["required_by"] = display(error["file"]), display(error["required_by"])
    data["errors"] = [text(e) for e in data["errors"]]
    data["warnings"] = [text(w) for w in data["warnings"]]
    return data
