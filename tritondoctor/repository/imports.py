"""What a model.py imports at top level (read with `ast`, never run), and where, on the stub's
import path, each module would be found."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from typing import Sequence

from tritondoctor.repository.envview import View

# Provided by the python backend itself (its directory is on the stub's sys.path).
BACKEND_MODULES = frozenset({"triton_python_backend_utils"})
# Compiled into every CPython (never files); the running interpreter's list adds its own.
ALWAYS_BUILTIN = frozenset({"sys", "builtins", "_imp", "_thread", "_io", "_warnings", "_weakref", "marshal",
                            "posix", "time", "errno", "gc", "itertools", "_signal", "_abc", "_codecs",
                            "_collections", "_functools", "_locale", "_operator", "_sre", "_stat",
                            "_string", "_symtable", "_tracemalloc", "atexit", "faulthandler", "pwd", "xxsubtype"})


@dataclass(frozen=True)
class ImportedName:
    module: str  # top-level package or module
    line: int
    optional: bool


def read_imports(path: str) -> tuple[list[ImportedName], str | None]:
    """Top-level imports of `path`; the error is a syntax error with its line, or an I/O error."""
    try:
        with open(path, "rb") as fh:
            source = fh.read()
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return [], f"{path}:{exc.lineno}: syntax error: {exc.msg}"
    except (OSError, ValueError) as exc:
        return [], f"cannot read {path}: {exc}"
    found: dict[str, ImportedName] = {}
    for node, optional in _module_level(tree.body, False):
        for name in _names(node):
            if name not in found or (found[name].optional and not optional):
                found[name] = ImportedName(name, node.lineno, optional)
    return sorted(found.values(), key=lambda i: i.line), None


def _module_level(body: Sequence[ast.stmt], optional: bool):  # type: ignore[no-untyped-def]
    """Import statements run when the module is imported: the body, and the branches of its
    top-level if / try statements (a try that catches ImportError makes them optional)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, optional
        elif isinstance(node, ast.If):
            yield from _module_level(node.body, optional)
            yield from _module_level(node.orelse, optional)
        elif isinstance(node, ast.Try):
            guarded = optional or any(_catches_import_error(h) for h in node.handlers)
            yield from _module_level(node.body, guarded)
            yield from _module_level(node.orelse, optional)
            yield from _module_level(node.finalbody, optional)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError", "Exception") for n in names)


def _names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


def is_builtin(module: str) -> bool:
    return module in ALWAYS_BUILTIN or module in sys.builtin_module_names or module in BACKEND_MODULES


def find_module(module: str, view: View, dirs: Sequence[str]) -> str | None:
    """The first directory entry of `dirs` (relative to the view) that provides `module`."""
    for directory in dirs:
        names = view.children(directory)
        if not names:
            continue
        if module in names and view.is_dir(f"{directory}/{module}"):
            return f"{directory}/{module}"
        for name in names:
            if name == f"{module}.py" or name == f"{module}.pyc" or (
                name.startswith(module + ".") and name.endswith(".so")
            ):
                return f"{directory}/{name}"
    return None


def extension_files(found: str, view: View) -> list[str]:
    """Native extension modules of a package (or the module itself when it is one)."""
    if found.endswith(".so"):
        return [found]
    if not view.is_dir(found):
        return []
    # Vendored libraries (lib*.so*) are reached through the extensions that need them.
    return [f for f in view.files_under(found) if f.endswith(".so") and not f.rsplit("/", 1)[-1].startswith("lib")]
