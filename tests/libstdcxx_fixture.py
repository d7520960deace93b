"""An "old" libstdc++.so.6 for tests outside the loader's own suite (check, fix): the builder in
elf_fixtures cut at a GLIBCXX / CXXABI version, i.e. what conda's libstdcxx-ng 11 looks like to
the loader, and the system's real libstdc++.so.6."""

from __future__ import annotations

from pathlib import Path

from elf_fixtures import Fixtures

from tritondoctor.loader import LoaderEnv, search_library


def real_libstdcxx() -> Path:
    """The system's libstdc++.so.6 where the loader finds it (e.g. /lib/..., not /usr/lib/...)."""
    lib = search_library("libstdc++.so.6", LoaderEnv.from_system(environ={}))
    assert lib.path, "this machine has no libstdc++.so.6"
    return Path(lib.path)


def build_old_libstdcxx(dest: Path, max_glibcxx: str = "GLIBCXX_3.4.29", max_cxxabi: str = "CXXABI_1.3.13") -> Path:
    out, _nodes = Fixtures(dest).old_libstdcxx("libstdc++.so.6", max_glibcxx, max_cxxabi)
    return out
