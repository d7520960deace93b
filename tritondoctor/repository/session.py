"""Everything that needs an execution environment opened: its facts, the members to unpack
(once per environment, however many models share it), the stub's closure and the imports."""

from __future__ import annotations

import os
import re
from typing import Callable, Mapping, Sequence

from tritondoctor.elf import ElfInfo, read_elf
from tritondoctor.facts.target import TargetPython
from tritondoctor.loader import LoaderEnv, ResolvedTree
from tritondoctor.repository import closure
from tritondoctor.repository.envview import ArchiveView, DirectoryView, View
from tritondoctor.repository.execenv import open_env, search_dirs
from tritondoctor.repository.imports import extension_files, find_module, is_builtin
from tritondoctor.repository.plan import ModelPlan
from tritondoctor.repository.types import (
    ClosureFacts,
    EnvFacts,
    ImportFacts,
    ModelFacts,
)

MAX_EXTENSIONS = 64  # per imported package
MAX_UNPACK_ROUNDS = 4
_ALWAYS_WANTED = frozenset({"libpython", "libstdc++", "libgcc_s"})


def _stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.split(".so", 1)[0]


def _unpack_closure(view: ArchiveView, stems: set[str], wanted: Callable[[str], bool]) -> None:
    """Libraries of lib/ that the unpacked objects need and the first pass did not know of
    (rare: one more pass each round)."""
    seen: set[str] = set()
    for _round in range(MAX_UNPACK_ROUNDS):
        grown = False
        for name in view.extracted - seen:
            seen.add(name)
            info = read_elf(view.local(name))
            if isinstance(info, ElfInfo):
                new = {_stem(n) for n in info.needed} - stems
                stems |= new
                grown = grown or bool(new & {_stem(m) for m in view.children("lib")})
        if not grown:
            return
        view.ensure(wanted)


class Session:
    def __init__(self, target: TargetPython | None, base_environ: Mapping[str, str], loader_env: LoaderEnv,
                 python_lib: str) -> None:
        self.target = target
        self.base_environ = base_environ
        self.loader_env = loader_env
        self.python_lib = python_lib  # the backend's python directory: on the stub's sys.path
        self.envs: dict[str, tuple[EnvFacts, View | None]] = {}
        self.stubs: dict[tuple[str, str | None, str | None], tuple[ResolvedTree, ClosureFacts]] = {}
        self.extensions: dict[tuple[str, str], ClosureFacts] = {}
        self.filesystem = DirectoryView("/")

    def close(self) -> None:
        for _facts, view in self.envs.values():
            if view is not None:
                view.close()

    # -- environments ----------------------------------------------------------------------------

    def prepare(self, plans: list[ModelPlan], extra_modules: Sequence[str] = ()) -> None:
        """Open every environment once; from a tarball unpack, in the pass that lists it, what
        the stubs and the imported packages of all its models (and `extra_modules`) can load."""
        by_env: dict[str, list[ModelPlan]] = {}
        for plan in plans:
            if plan.env_path:
                by_env.setdefault(plan.env_path, []).append(plan)
        for path, users in by_env.items():
            stems = set(_ALWAYS_WANTED)
            for stub in {p.stub.path for p in users if p.stub and p.stub.exists}:
                info = read_elf(stub)
                if isinstance(info, ElfInfo):
                    stems |= {_stem(n) for n in info.needed}
            names = {i.module for p in users for i in p.imports} | set(extra_modules)
            modules = "|".join(sorted(re.escape(m) for m in names)) or "(?!)"
            packages = re.compile(
                r"^lib/python\d+\.\d+/(?:site-packages|lib-dynload)/(?:" + modules + r")(?:/|\.libs/|\.[^/]*\.so$)")

            def wanted(name: str, stems: set[str] = stems, packages: re.Pattern[str] = packages) -> bool:
                if ".so" not in name.rsplit("/", 1)[-1]:
                    return False
                top_lib = name.startswith("lib/") and name.count("/") == 1
                return (top_lib and _stem(name) in stems) or bool(packages.match(name))

            facts, view = open_env(users[0].env_configured or path, path, wanted)
            self.envs[path] = (facts, view)
            if isinstance(view, ArchiveView):
                _unpack_closure(view, stems, wanted)

    # -- one model -------------------------------------------------------------------------------

    def env_of(self, plan: ModelPlan) -> tuple[EnvFacts | None, View | None]:
        return self.envs.get(plan.env_path, (None, None)) if plan.env_path else (None, None)

    def stub_loader_env(self, view: View | None) -> LoaderEnv:
        """The loader's view of the stub's process: the env's lib/ first when it has one."""
        env_lib = view.local("lib") if view is not None else None
        return self.loader_env.with_environ(closure.stub_environ(self.base_environ, env_lib))

    def model_facts(self, plan: ModelPlan) -> ModelFacts:
        env, view = self.env_of(plan)
        minor, source = self._python_minor(env)
        stub_tree, stub_closure = self._stub(plan, env, view)
        imports = self._imports(plan, env, view, minor, stub_tree)
        return ModelFacts(
            repository=plan.repository, name=plan.name, directory=plan.directory, config_file=plan.config_file,
            config_error=plan.config_error, config_name=plan.config.name if plan.config else "",
            backend=plan.backend, platform=plan.platform, versions=plan.versions, version_note=plan.version_note,
            env=env, python_minor=minor, python_from=source, stub=plan.stub, stub_closure=stub_closure,
            imports=imports, model_file_error=plan.model_file_error,
        )

    def _python_minor(self, env: EnvFacts | None) -> tuple[str | None, str]:
        if env is not None:
            if env.python_minor:
                return env.python_minor, "env"
            if env.libpython:
                return env.libpython.split("libpython", 1)[1].split(".so", 1)[0], "env"
            return None, "env"
        return (self.target.minor, "target") if self.target else (None, "")

    def display(self, env: EnvFacts | None, view: View | None):  # type: ignore[no-untyped-def]
        root = view.root.rstrip("/") + "/" if isinstance(view, ArchiveView) else None

        def display(path: str) -> str:
            if root and env is not None and path.startswith(root):
                return env.show(path[len(root):])
            return path

        def in_env(path: str) -> bool:
            if view is None or env is None:
                return False
            base = view.root if isinstance(view, ArchiveView) else env.path
            return path.startswith(base.rstrip("/") + "/")

        return display, in_env

    def _stub(self, plan: ModelPlan, env: EnvFacts | None,
              view: View | None) -> tuple[ResolvedTree | None, ClosureFacts | None]:
        stub = plan.stub
        if stub is None or not stub.exists or stub.elf_error or (env is not None and view is None):
            return None, None
        key = (stub.path, stub.run_as, env.path if env else None)
        if key not in self.stubs:
            display, in_env = self.display(env, view)
            self.stubs[key] = closure.resolve_stub(stub.path, stub.run_as, self.stub_loader_env(view), display, in_env)
        return self.stubs[key]

    def _import_path(self, plan: ModelPlan, env: EnvFacts | None, view: View | None,
                     minor: str | None) -> tuple[View | None, tuple[str, ...], list[str]] | None:
        """Where the stub's Python looks for a module: (the env's view, its directories, file
        system directories), or None when that cannot be known (an env that did not open)."""
        if env is not None:
            if view is None or minor is None:
                return None
            env_dirs: tuple[str, ...] = search_dirs(minor)
            fs_dirs: list[str] = []
        elif self.target is not None:
            view, env_dirs, fs_dirs = None, (), [p for p in self.target.sys_path if os.path.isabs(p)]
        else:
            return None
        return view, env_dirs, [v.directory for v in plan.versions] + [self.python_lib] + fs_dirs

    def _imports(self, plan: ModelPlan, env: EnvFacts | None, view: View | None, minor: str | None,
                 stub_tree: ResolvedTree | None) -> tuple[ImportFacts, ...]:
        where = self._import_path(plan, env, view, minor)
        if where is None:
            return ()
        view, env_dirs, fs_dirs = where
        return tuple(self._one_import(i, env, view, env_dirs, fs_dirs, stub_tree) for i in plan.imports)

    def _find(self, module: str, view: View | None, env_dirs: tuple[str, ...],
              fs_dirs: list[str]) -> tuple[View, str] | None:
        found = find_module(module, view, env_dirs) if view is not None else None
        if found is not None and view is not None:
            return view, found
        found = find_module(module, self.filesystem, fs_dirs)
        return (self.filesystem, found) if found is not None else None

    def package_extensions(self, plan: ModelPlan, module: str) -> list[str] | None:
        """Local paths of the extension modules in the package the stub finds for `module`
        (all of them, up to MAX_EXTENSIONS); None when it finds none."""
        env, view = self.env_of(plan)
        where = self._import_path(plan, env, view, self._python_minor(env)[0])
        located = self._find(module, *where) if where is not None else None
        if located is None:
            return None
        holder, found = located
        return [holder.local(f) for f in extension_files(found, holder)[:MAX_EXTENSIONS]]

    def _one_import(self, imported, env, view, env_dirs, fs_dirs, stub_tree) -> ImportFacts:  # type: ignore[no-untyped-def]
        if is_builtin(imported.module):
            return ImportFacts(imported.module, imported.line, imported.optional, "(built in)", builtin=True)
        located = self._find(imported.module, view, env_dirs, fs_dirs)
        if located is None:
            return ImportFacts(imported.module, imported.line, imported.optional, None)
        where, found = located
        display, _in_env = self.display(env, view)
        shown = display(where.local(found)) if where is view else found
        extensions: tuple[ClosureFacts, ...] = ()
        if stub_tree is not None:
            files = extension_files(found, where)[:MAX_EXTENSIONS]
            extensions = tuple(self._extension(where.local(f), stub_tree, env, view) for f in files)
        return ImportFacts(imported.module, imported.line, imported.optional, shown, extensions=extensions)

    def _extension(self, path: str, stub_tree: ResolvedTree, env: EnvFacts | None, view: View | None) -> ClosureFacts:
        key = (path, stub_tree.file + "|" + (env.path if env else ""))
        if key not in self.extensions:
            display, in_env = self.display(env, view)
            self.extensions[key] = closure.resolve_extension(path, stub_tree, self.stub_loader_env(view), display,
                                                             in_env)
        return self.extensions[key]
