"""EXECUTION_ENV_PATH: where it points, what it holds (Python version, libpython, libstdc++,
bin/activate), read without executing or unpacking it all."""

from __future__ import annotations

import os
import re
from typing import Callable

from tritondoctor.repository.envview import (
    ArchiveError,
    ArchiveView,
    DirectoryView,
    View,
)
from tritondoctor.repository.types import EnvFacts
from tritondoctor.versions import numeric

ENV_PARAMETER = "EXECUTION_ENV_PATH"
MODEL_DIR_VARIABLE = "$$TRITON_MODEL_DIRECTORY"

_PYTHON_DIR = re.compile(r"^python(\d+\.\d+)$")
_LIBPYTHON = re.compile(r"^libpython(\d+\.\d+)\.so\.1\.0$")


def expand(configured: str, model_dir: str, cwd: str) -> str:
    """What the backend opens: the model directory substituted, relative to the server's cwd."""
    path = configured.replace(MODEL_DIR_VARIABLE, model_dir)
    return os.path.normpath(os.path.join(cwd, path))


def open_env(configured: str, path: str,
             wanted: Callable[[str], bool] | None = None) -> tuple[EnvFacts, View | None]:
    if os.path.isdir(path):
        view: View = DirectoryView(path)
        return describe(configured, path, "directory", view), view
    if not os.path.exists(path):
        return EnvFacts(configured, path, "missing", error=f"{path} does not exist"), None
    try:
        archive = ArchiveView(path, wanted)
    except ArchiveError as exc:
        return EnvFacts(configured, path, "tarball", error=str(exc)), None
    except OSError as exc:
        return EnvFacts(configured, path, "tarball", error=f"cannot read it: {exc}"), None
    return describe(configured, path, "tarball", archive), archive


def _minor_key(minor: str) -> tuple[int, ...]:
    return numeric(minor) or ()


def describe(configured: str, path: str, kind: str, view: View) -> EnvFacts:
    lib = view.children("lib")
    minors = sorted((m[1] for m in map(_PYTHON_DIR.match, lib) if m and view.is_dir(f"lib/{m[0]}")), key=_minor_key)
    libpythons = sorted((n for n in lib if _LIBPYTHON.match(n)), key=lambda n: _minor_key(_LIBPYTHON.match(n)[1]))  # type: ignore[index]
    is_archive = isinstance(view, ArchiveView)
    return EnvFacts(
        configured=configured,
        path=path,
        kind=kind,
        python_minors=tuple(minors),
        libpython=f"lib/{libpythons[-1]}" if libpythons else None,
        libstdcxx="lib/libstdc++.so.6" if "libstdc++.so.6" in lib else None,
        has_activate=view.exists("bin/activate"),
        unpacked_bytes=view.unpacked_bytes() if is_archive else 0,  # type: ignore[attr-defined]
        members=len(view.members) if is_archive else 0,  # type: ignore[attr-defined]
    )


def search_dirs(minor: str) -> tuple[str, ...]:
    """The env's import path for Python `minor`, relative to the env (what its site.py sets up)."""
    base = f"lib/python{minor}"
    return (base, f"{base}/lib-dynload", f"{base}/site-packages")
