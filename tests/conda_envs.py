"""Real conda-format prefixes for tests, built offline.

A conda environment, to conda and to tritondoctor, is a directory with `conda-meta/` (holding a
`history` file); a base installation also has `condabin/`. The environments here get a
`bin/python` symlink to the interpreter of the test run; the target environments are venvs (so
that Python reports them as sys.prefix) that also carry `conda-meta/`, and see the shared
PyTriton install through the `layered_venv` fixture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Iterable

LOADER = "/lib64/ld-linux-x86-64.so.2"
HISTORY = "==> 2024-05-01 10:00:00 <==\n# cmd: conda create -p {prefix} python=3.11\n+conda-forge/linux-64::python-3.11.7-hab00c5b_0\n"


def own_libpython() -> Path:
    """The libpython of the test run's interpreter (every test venv's base)."""
    return Path(sysconfig.get_config_var("LIBDIR")) / sysconfig.get_config_var("INSTSONAME")


def base_interpreter() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def make_conda_meta(prefix: Path, *, base: bool = False) -> Path:
    (prefix / "conda-meta").mkdir(parents=True, exist_ok=True)
    (prefix / "conda-meta" / "history").write_text(HISTORY.format(prefix=prefix))
    if base:
        (prefix / "condabin").mkdir(exist_ok=True)
        conda = prefix / "condabin" / "conda"
        conda.write_text("#!/bin/sh\nexit 0\n")
        conda.chmod(0o755)
        (prefix / "bin").mkdir(exist_ok=True)
        if not (prefix / "bin" / "conda").exists():
            (prefix / "bin" / "conda").symlink_to(conda)
    return prefix


def make_conda_prefix(prefix: Path, *, base: bool = False) -> Path:
    """A conda-format prefix that is not used as an interpreter (a base install, another env)."""
    prefix.mkdir(parents=True, exist_ok=True)
    make_conda_meta(prefix, base=base)
    (prefix / "bin").mkdir(exist_ok=True)
    (prefix / "lib").mkdir(exist_ok=True)
    if not (prefix / "bin" / "python").exists():
        (prefix / "bin" / "python").symlink_to(base_interpreter())
    return prefix


def other_build_of(library: Path, into: Path, name: str | None = None) -> Path:
    """A copy of `library` that is a different file with different bytes (another build of the same
    soname, as far as the loader cares: trailing bytes after the ELF image change nothing else)."""
    into.mkdir(parents=True, exist_ok=True)
    copy = into / (name or library.name)
    shutil.copyfile(os.path.realpath(library), copy)
    with open(copy, "ab") as fh:
        fh.write(b"\0another build (tritondoctor test)\0")
    copy.chmod(0o755)
    return copy


def write_hook(prefix: Path, phase: str, name: str, lines: Iterable[str]) -> Path:
    directory = prefix / "etc" / "conda" / f"{phase}.d"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


def traced(binary: str, environ: dict[str, str], cwd: str) -> dict[str, str | None]:
    """What glibc's loader really loads for `binary` (trace mode): soname -> realpath."""
    env = dict(environ, LD_TRACE_LOADED_OBJECTS="1")
    out = subprocess.run([LOADER, binary], capture_output=True, text=True, env=env, cwd=cwd).stdout
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            found[parts[0]] = None if parts[2] == "not" else os.path.realpath(os.path.join(cwd, parts[2]))
        elif len(parts) == 2 and "/" not in parts[0] and os.path.isfile(os.path.join(cwd, parts[0])):
            # Found through an empty LD_LIBRARY_PATH entry: glibc prints the bare (relative) name.
            found[parts[0]] = os.path.realpath(os.path.join(cwd, parts[0]))
    return found
