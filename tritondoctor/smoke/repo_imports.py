"""Which extension modules importing some modules would load, found without importing anything.

Run as a script in the *target* interpreter (its sys.path, its extension suffixes), not imported
by tritondoctor: standard library only, Python 3.8 syntax. Modules are located with
importlib.machinery.PathFinder one package level at a time (importlib.util.find_spec would run
the parent packages), and followed through the import statements their source runs at import
time, in the order Python runs them (parents first, each import completed before the next).

    python repo_imports.py '{"modules": ["numpy"], "files": ["/x/utils.py"]}'

Prints {"extensions": [{"module", "path", "via"}], "missing": [...], "order": [...]}.
"""

import ast
import json
import os
import site
import sys
from importlib.machinery import EXTENSION_SUFFIXES, PathFinder

SKIPPED_BLOCKS = ("TYPE_CHECKING",)
# Calls that import the module named by their first argument (numpy's add_newdoc imports the
# module it documents), followed when the argument is a string literal at module level.
IMPORTING_CALLS = ("import_module", "__import__", "add_newdoc")


class Walker:
    def __init__(self):
        self.done = set()
        self.specs = {}
        self.extensions = []
        self.missing = []
        self.order = []

    def spec(self, name):
        if name in self.specs:
            return self.specs[name]
        spec = None
        if name not in sys.builtin_module_names:
            parent, _, _ = name.rpartition(".")
            path = None
            if parent:
                parent_spec = self.spec(parent)
                path = parent_spec.submodule_search_locations if parent_spec else None
            if not parent or path is not None:
                try:
                    spec = PathFinder.find_spec(name, path)
                except (ImportError, ValueError, OSError):
                    spec = None
        self.specs[name] = spec
        return spec

    def load(self, name, via):
        """Import `name` as Python would: its parents first, then itself."""
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            self.visit(".".join(parts[:i]), via)

    def visit(self, name, via):
        if name in self.done:
            return
        self.done.add(name)
        if name in sys.builtin_module_names:
            return
        spec = self.spec(name)
        if spec is None or not spec.origin:
            if spec is None:
                self.missing.append(name)
            return
        self.order.append(name)
        if spec.origin.endswith(tuple(EXTENSION_SUFFIXES)):
            self.extensions.append({"module": name, "path": spec.origin, "via": via})
        elif spec.origin.endswith(".py"):
            package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
            self.run_source(spec.origin, package, name)

    def run_source(self, path, package, name):
        try:
            with open(path, "rb") as fh:
                tree = ast.parse(fh.read(), path)
        except (OSError, SyntaxError, ValueError):
            return
        for node in import_nodes(tree.body):
            for target, maybe in imported_names(node, package):
                if not maybe or self.spec(target) is not None:
                    self.load(target, name)


KNOWN = {"sys.platform": sys.platform, "os.name": os.name, "sys.version_info": tuple(sys.version_info),
         "sys.byteorder": sys.byteorder, "sys.implementation.name": sys.implementation.name}
UNKNOWN = object()
COMPARE = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
           ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
           ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}


def dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return base + "." + node.attr if base else None
    return None


def evaluate(node):
    """The value of a condition on the platform or the version (sys.platform == "win32",
    sys.version_info >= (3, 9), os.name.startswith(...)); UNKNOWN for anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        items = [evaluate(e) for e in node.elts]
        return UNKNOWN if UNKNOWN in items else tuple(items)
    name = dotted(node)
    if name is not None:
        return KNOWN.get(name, UNKNOWN)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        value = evaluate(node.operand)
        return UNKNOWN if value is UNKNOWN else not value
    if isinstance(node, ast.BoolOp):
        values = [evaluate(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return False if False in values else (UNKNOWN if UNKNOWN in values else all(values))
        return True if True in values else (UNKNOWN if UNKNOWN in values else any(values))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARE:
        left, right = evaluate(node.left), evaluate(node.comparators[0])
        if UNKNOWN in (left, right):
            return UNKNOWN
        try:
            return COMPARE[type(node.ops[0])](left, right)
        except TypeError:
            return UNKNOWN
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "startswith":
        subject, args = evaluate(node.func.value), [evaluate(a) for a in node.args]
        if isinstance(subject, str) and len(args) == 1 and isinstance(args[0], (str, tuple)):
            return subject.startswith(args[0])
    return UNKNOWN


def branches(node):
    """The bodies of an `if` that may run: `if TYPE_CHECKING:` never does, and a condition on
    the platform or version is decided here; any other condition keeps both."""
    label = dotted(node.test)
    if label and label.split(".")[-1] in SKIPPED_BLOCKS:
        return [node.orelse]
    value = evaluate(node.test)
    if value is UNKNOWN:
        return [node.body, node.orelse]
    return [node.body] if value else [node.orelse]


def literal_import(call):
    """The module a call like importlib.import_module("x") imports, when it is a literal."""
    if not isinstance(call, ast.Call) or not call.args:
        return None
    func = call.func
    label = getattr(func, "id", None) or getattr(func, "attr", None)
    first = call.args[0]
    if label in IMPORTING_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value if not first.value.startswith(".") else None
    return None


def import_nodes(body):
    """Import statements that run at import time, in order: not inside functions."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.Expr) and literal_import(node.value):
            yield ast.Import(names=[ast.alias(name=literal_import(node.value), asname=None)])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If):
            for body in branches(node):
                for item in import_nodes(body):
                    yield item
        else:
            for field in ("body", "handlers", "orelse", "finalbody"):
                for item in import_nodes(getattr(node, field, None) or []):
                    yield item


def imported_names(node, package):
    """[(module, maybe)]: `maybe` for the names of a from-import, which may be attributes."""
    if isinstance(node, ast.Import):
        return [(alias.name, False) for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".") if package else []
        anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
        base = ".".join(anchor + ([base] if base else []))
    out = [(base, False)] if base else []
    # `from pkg import name` imports the submodule pkg.name when there is one.
    out += [(base + "." + alias.name, True) for alias in node.names if alias.name != "*"]
    return out


def pth_imports():
    """Lines of .pth files that site runs at startup ("import ...")."""
    out = []
    dirs = list(getattr(site, "getsitepackages", lambda: [])()) + [site.getusersitepackages()]
    for directory in dirs:
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".pth"))
        except OSError:
            continue
        for pth in names:
            try:
                with open(os.path.join(directory, pth), encoding="utf-8", errors="replace") as fh:
                    lines = [line.strip() for line in fh if line.startswith(("import ", "import\t"))]
            except OSError:
                continue
            for line in lines:
                try:
                    out.extend(imported_names(n, "") for n in import_nodes(ast.parse(line).body))
                except SyntaxError:
                    continue
    return [name for group in out for name, _ in group]


def main():
    args = json.loads(sys.argv[1])
    walker = Walker()
    for name in pth_imports():
        walker.load(name, "site (.pth)")
    for path in args.get("files") or []:
        walker.run_source(path, "", os.path.basename(path))
    for name in args.get("modules") or []:
        walker.load(name, name)
    sys.stdout.write(json.dumps({"extensions": walker.extensions, "missing": walker.missing, "order": walker.order}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
