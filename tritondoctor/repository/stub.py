"""Which triton_python_backend_stub serves a model, and what it is: the Python minor it was built
for (read from its libpython DT_NEEDED), its execute bit and its mount."""

from __future__ import annotations

import functools
import os
import re
import stat
from typing import Mapping

from tritondoctor.elf import ElfError, read_elf
from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.facts.target import TargetPython
from tritondoctor.repository.mounts import Mount, mount_facts
from tritondoctor.repository.types import BackendFacts, StubFacts

STUB_NAME = "triton_python_backend_stub"
DEFAULT_BACKEND_DIRECTORY = "/opt/tritonserver/backends"

# libpython3.11.so.1.0, and auditwheel's grafted libpython3-419a3a08.13.so.1.0 (3.13).
_LIBPYTHON = re.compile(r"^libpython(\d+)(?:-[0-9a-f]+)?\.(\d+)\.so")


def libpython_minor(name: str) -> str | None:
    match = _LIBPYTHON.match(name)
    return f"{match[1]}.{match[2]}" if match else None


def locate_backend(
    backend_directory: str | None, target: TargetPython | None, environ: Mapping[str, str]
) -> tuple[BackendFacts, PyTritonInstall | None]:
    install = pytriton_facts.locate(target, environ) if target else None
    pytriton_dir = os.path.join(install.server_dir, "backends") if install else None
    if backend_directory:
        directory, source = os.path.abspath(backend_directory), "given"
    elif os.path.isdir(DEFAULT_BACKEND_DIRECTORY) or pytriton_dir is None:
        directory, source = DEFAULT_BACKEND_DIRECTORY, "default"
    else:
        directory, source = pytriton_dir, "pytriton"
    stub = os.path.join(directory, "python", STUB_NAME)
    is_pytriton = pytriton_dir is not None and os.path.realpath(directory) == os.path.realpath(pytriton_dir)
    if is_pytriton and not os.path.exists(stub) and install and target and install.stub_for(target.minor):
        # PyTriton copies the stub for the running interpreter there when it starts the server.
        stub = install.stub_for(target.minor) or stub
        source = "pytriton"
    facts = BackendFacts(
        directory=directory,
        source=source,
        exists=os.path.isdir(directory),
        python_dir_exists=os.path.isdir(os.path.join(directory, "python")),
        stub=stub,
        pytriton_stubs=dict(install.stubs) if install else {},
    )
    return facts, install if is_pytriton else None


def stub_facts(model_dir: str, backend: BackendFacts, install: PyTritonInstall | None,
               mounts: tuple[Mount, ...]) -> StubFacts:
    custom = os.path.join(model_dir, STUB_NAME)
    if os.path.exists(custom):
        path, source, run_as = custom, "model", None
    else:
        path = backend.stub
        source = "pytriton" if install and path.startswith(install.server_dir + os.sep + "python_backend_stubs") else "backend"
        run_as = install.run_location(path) if source == "pytriton" and install else None
    if not os.path.exists(path):
        return StubFacts(path=path, source=source, exists=False)
    return _read_stub(path, source, run_as, mounts, _stamp(path))


def _stamp(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_mode)


@functools.lru_cache(maxsize=64)  # a repository's models mostly share one stub
def _read_stub(path: str, source: str, run_as: str | None, mounts: tuple[Mount, ...],
               _stamp: tuple[int, int, int, int]) -> StubFacts:
    info = read_elf(path)
    needed = None if isinstance(info, ElfError) else next(
        (n for n in info.needed if libpython_minor(n)), None)
    return StubFacts(
        path=path,
        source=source,
        exists=True,
        executable=_executable(path),
        mount=mount_facts(path, mounts),
        needed_libpython=needed,
        python_minor=libpython_minor(needed) if needed else None,
        run_as=run_as,
        elf_error=str(info) if isinstance(info, ElfError) else None,
    )


def _executable(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)) and os.access(path, os.X_OK)
