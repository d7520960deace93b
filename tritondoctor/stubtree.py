"""`tree --stub`: every library the Python backend stub process would map, statically.

The stub's own closure is resolved as PyTriton runs it (from the workspace copy, under the
environment PyTriton gives tritonserver). Then come the extension modules the stub's Python
imports (its startup and .pth lines, triton_python_backend_utils, numpy) and those of each named
module, located by a script in the target interpreter that reads import statements and never
imports (smoke/repo_imports.py). Each is dlopen()ed in import order into the same link map: the
loader's reuse by soname and by file spans the whole process, so a later extension gets the
library an earlier one brought in. The caller of dlopen is libpython, so the extension's own
loader chain (for DT_RPATH) is extension -> libpython -> stub.

Known limits: imports made by C code at module init (a Cython module importing another) and
imports inside functions are not seen; branches are not evaluated (an import under
`if sys.version_info < ...` counts), except `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Mapping, Sequence

from tritondoctor import loader
from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.facts.target import TargetPython
from tritondoctor.ldenv import LoaderEnv
from tritondoctor.loader import Library, ResolvedTree

LOCATE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smoke", "repo_imports.py")
# What the stub's embedded interpreter imports by itself (from C++, before any model code):
# the names are read from the strings of 0.7.0's stub.
STUB_MODULES = ("site", "threading", "traceback", "inspect", "json", "asyncio", "numpy")
UTILS_FILE = "triton_python_backend_utils.py"


class StubTreeError(Exception):
    """The stub's process cannot be modelled (no stub for this Python, the target did not run)."""


def locate_extensions(python: str, environ: Mapping[str, str], modules: Sequence[str],
                      files: Sequence[str] = ()) -> dict[str, Any]:
    """Run the locating script in the target interpreter: {"extensions", "missing", "order"}."""
    env = {k: v for k, v in environ.items() if k != "PYTHONINSPECT"}
    args = json.dumps({"modules": list(modules), "files": list(files)})
    try:
        proc = subprocess.run([python, LOCATE_SCRIPT, args], env=env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        return dict(json.loads(proc.stdout))
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise StubTreeError(f"{python}: cannot locate the modules ({exc.__class__.__name__}: {exc})") from None


def _namespace(resolver: Any) -> Any:
    """The link map: loader.py keeps it in `namespace` (older layouts kept it on the resolver)."""
    return getattr(resolver, "namespace", resolver)


def _caller(resolver: Any) -> Any:
    """The object that calls dlopen for an import: libpython, else the stub itself."""
    for obj in _namespace(resolver).objects:
        if obj.info is not None and obj.library.path and os.path.basename(obj.path).startswith("libpython"):
            return obj
    return resolver.main


def _dlopen(resolver: Any, tree: ResolvedTree, path: str, module: str) -> None:
    """dlopen(path): the file itself by path, then its dependencies breadth-first through the
    resolver's own walk, every new object appended to the one link map. A failure fails this
    import only (an ImportError), not the process."""
    caller = _caller(resolver)
    errors_before = len(tree.errors)
    try:
        obj, new = _namespace(resolver).map_object(path, caller, "dlopen")
    except loader._LoadFailure as failure:
        tree.errors.append(f"import {module}: {failure} (dlopen fails with ImportError)")
        return
    if not new:
        return
    if obj.library.path is None:
        tree.errors.append(f"import {module}: {path}: cannot open shared object file")
        return
    obj.library.via, obj.library.how = "dlopen", f"extension module {module}, imported by the stub's Python"
    obj.library.needed_by.append(caller.path)
    tree.libraries.append(obj.library)
    resolver.queue.append(obj)
    resolver._walk()
    resolver.queue.clear()
    for at in range(errors_before, len(tree.errors)):
        tree.errors[at] = f"import {module}: " + tree.errors[at].replace(
            "the loader stops here and the program does not start", "dlopen fails with ImportError")


def _versions(resolver: Any, tree: ResolvedTree) -> None:
    checked = ResolvedTree(file=tree.file)
    loader._check_versions(_namespace(resolver).objects, resolver.detached, checked)
    tree.version_errors = checked.version_errors


def stub_environment(target: TargetPython, install: PyTritonInstall, environ: Mapping[str, str]) -> dict[str, str]:
    return pytriton_facts.server_environ(environ, install, target)


def resolve_stub_process(stub: str, run_as: str | None, loader_env: LoaderEnv,
                         extensions: Sequence[Mapping[str, str]]) -> ResolvedTree:
    """The stub's closure, then each extension dlopen()ed in order into the same process."""
    resolver = loader._Resolver(loader_env)
    tree = resolver.run(stub, run_as)
    if not tree.errors:  # a stub that cannot start imports nothing
        for ext in extensions:
            _dlopen(resolver, tree, ext["path"], ext["module"])
    _versions(resolver, tree)
    return tree


def stub_process_tree(target: TargetPython, install: PyTritonInstall, environ: Mapping[str, str],
                      imports: Sequence[str], cwd: str | None = None) -> dict[str, Any]:
    """`tree --json`'s shape for the stub process, plus `extensions` (module, path, via) in
    import order and `missing_modules` (named or imported modules that are not installed)."""
    stub = install.stub_for(target.minor)
    if not stub:
        raise StubTreeError(f"nvidia-pytriton {install.version} has no Python backend stub for Python {target.minor}")
    env = stub_environment(target, install, environ)
    utils = os.path.join(install.server_dir, "backends", "python", UTILS_FILE)
    found = locate_extensions(target.executable, environ, list(STUB_MODULES) + list(imports),
                              [utils] if os.path.exists(utils) else [])
    loader_env = LoaderEnv.from_system(environ=env, cwd=cwd or os.getcwd())
    tree = resolve_stub_process(stub, install.run_location(stub), loader_env, found.get("extensions", []))
    out = tree.to_json()
    out["run_as"] = install.run_location(stub)
    out["extensions"] = list(found.get("extensions", []))
    named = set(imports)
    out["missing_modules"] = [m for m in found.get("missing", []) if m in named]
    return out


def dlopened(libraries: Sequence[Library]) -> list[Library]:
    return [lib for lib in libraries if lib.via == "dlopen"]
