"""The shape the architecture issue asked for, kept by tests: no import circle among the modules'
top-level imports, no function over 80 lines and no class over 250 in tritondoctor/, checks/ and
fixes/, and checks that read the snapshot only (no file system, no process)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"tritondoctor": "tritondoctor", "checks": "tritondoctor.checks", "fixes": "tritondoctor.fixes"}


def _modules() -> dict[str, ast.Module]:
    out: dict[str, ast.Module] = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if folder == "tritondoctor" and parts and parts[0] in ("checks", "fixes"):
                continue
            out[".".join([package, *parts]) if parts else package] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def _top_level_imports(tree: ast.Module, known: set[str]) -> set[str]:
    """Imports executed when the module is imported (not those under TYPE_CHECKING or in functions)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
            names: list[str] = []
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                names = [sub.module] + [f"{sub.module}.{a.name}" for a in sub.names]
            elif isinstance(sub, ast.Import):
                names = [a.name for a in sub.names]
            found.update(n for n in names if n in known)
    return found


def test_no_import_circle() -> None:
    modules = _modules()
    known = set(modules)
    graph = {name: _top_level_imports(tree, known) - {name} for name, tree in modules.items()}
    # A package's __init__ importing its own submodules is not a circle through the package.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if node.startswith(nxt + "."):
                continue  # a submodule importing its own package
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    cycles = [c for c in cycles if not all(c[0].split(".")[:2] == m.split(".")[:2] and m.endswith("__init__") for m in c)]
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_big_units() -> None:
    big: list[str] = []
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue
                size = (node.end_lineno or 0) - node.lineno + 1
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > 80:
                    big.append(f"{path.relative_to(ROOT)}:{node.name} ({size} lines)")
                elif isinstance(node, ast.ClassDef) and size > 250:
                    big.append(f"{path.relative_to(ROOT)}:{node.name} ({size} lines)")
    assert not big, "over the limits (80-line functions, 250-line classes): " + ", ".join(big)


def test_checks_read_the_snapshot_only() -> None:
    """A check module calls nothing that looks at the world: no os.path / os.stat / open /
    subprocess / psutil at all (log builders included: they read the observation)."""
    forbidden = {"open", "os.stat", "os.statvfs", "os.access", "os.listdir", "os.path.exists", "os.path.isfile",
                 "os.path.isdir", "os.path.samefile", "os.path.realpath", "subprocess.run", "subprocess.Popen",
                 "psutil.process_iter"}
    offenders: list[str] = []
    for path in (ROOT / "checks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in forbidden:
                    offenders.append(f"{path.name}:{node.lineno} {name}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                offenders += [f"{path.name}:{node.lineno} import {m}" for m in mods if m in ("subprocess", "psutil")]
    assert not offenders, offenders
