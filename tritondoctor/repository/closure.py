"""The stub's closure as the python backend runs it, and extension modules dlopen()ed into that
process afterwards.

With EXECUTION_ENV_PATH the backend runs `source <env>/bin/activate && exec env
LD_LIBRARY_PATH=<env>/lib:$LD_LIBRARY_PATH <stub> ...` (an unset variable leaves a trailing empty
entry: the current directory). An extension is resolved as a main object with the stub's whole
closure preloaded in load order: glibc then reuses each already loaded library by soname, which
is exactly what happens to a dlopen() inside the running stub.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping

from tritondoctor.loader import LoaderEnv, ResolvedTree, resolve
from tritondoctor.repository.types import ClosureFacts, VersionProblem

Display = Callable[[str], str]
_NOT_LOADED = ("main", "vdso", "interp")


def stub_environ(base: Mapping[str, str], env_lib: str | None) -> dict[str, str]:
    environ = dict(base)
    if env_lib is not None:
        environ["LD_LIBRARY_PATH"] = f"{env_lib}:{base.get('LD_LIBRARY_PATH', '')}"
    return environ


def resolve_stub(stub: str, run_as: str | None, loader_env: LoaderEnv, display: Display,
                 in_env: Callable[[str], bool]) -> tuple[ResolvedTree, ClosureFacts]:
    tree = resolve(stub, loader_env, run_as=run_as)
    return tree, _facts(tree, display, in_env, set(), {}, loader_env)


def resolve_extension(extension: str, stub_tree: ResolvedTree, loader_env: LoaderEnv, display: Display,
                      in_env: Callable[[str], bool]) -> ClosureFacts:
    loaded = [lib.path for lib in stub_tree.libraries if lib.path and lib.via not in _NOT_LOADED]
    preload_env = replace(loader_env, ld_preload=" ".join(loaded))
    tree = resolve(extension, preload_env)
    first = {lib.path: (lib.needed_by[0] if lib.needed_by else stub_tree.file)
             for lib in stub_tree.libraries if lib.path}
    return _facts(tree, display, in_env, set(loaded), first, loader_env)


def _facts(tree: ResolvedTree, display: Display, in_env: Callable[[str], bool], preloaded: set[str],
           first: dict[str, str], loader_env: LoaderEnv) -> ClosureFacts:
    missing = [lib for lib in tree.missing if not set(lib.needed_by) <= preloaded]
    problems = tuple(
        VersionProblem(e.version, display(e.file), display(e.required_by),
                       display(first[e.file]) if e.file in first else "")
        for e in tree.version_errors if e.required_by not in preloaded
    )
    libpython = next((lib for lib in tree.libraries if lib.path and lib.name.startswith("libpython")), None)
    libstdcxx = next((lib for lib in tree.libraries if lib.path and lib.name == "libstdc++.so.6"), None)
    return ClosureFacts(
        file=display(tree.file),
        missing=tuple(lib.name for lib in missing),
        missing_needed_by={lib.name: display(lib.needed_by[0]) for lib in missing if lib.needed_by},
        version_errors=problems,
        errors=tuple(e for e in tree.errors if not any(p in e for p in preloaded)),
        libpython=display(libpython.path) if libpython and libpython.path else None,
        libpython_in_env=bool(libpython and libpython.path and in_env(libpython.path)),
        libstdcxx=display(libstdcxx.path) if libstdcxx and libstdcxx.path else None,
        libstdcxx_in_env=bool(libstdcxx and libstdcxx.path and in_env(libstdcxx.path)),
        ld_library_path=loader_env.ld_library_path,
    )
