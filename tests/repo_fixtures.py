"""Real Triton model repositories for the model-repository tests: config.pbtxt and model.py files,
execution environments laid out like conda prefixes from pyenv's shared-library CPythons (the
interpreter, its libpython, a few standard-library files, bin/activate), packed as tar.gz like
conda-pack does, and extension modules built with gcc."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tarfile
from pathlib import Path
from typing import Mapping

from elf_fixtures import SYSTEM_LIBSTDCXX, Fixtures, _version_nodes

PYENV = Path("/root/.pyenv/versions")
PYENV_BUILDS = {"3.9": "3.9.18", "3.10": "3.10.13", "3.11": "3.11.7", "3.12": "3.12.1"}
STDLIB_FILES = {"os.py": "import sys\n", "json/__init__.py": "", "re.py": "", "site.py": ""}
ACTIVATE = "# conda-pack activate (fixture)\nexport CONDA_PREFIX=\"$(cd \"$(dirname \"$BASH_SOURCE\")/..\" && pwd)\"\n"


def pyenv_build(minor: str) -> Path:
    return PYENV / PYENV_BUILDS[minor]


def have_pyenv(minor: str) -> bool:
    return (pyenv_build(minor) / "lib" / f"libpython{minor}.so.1.0").exists()


def env_prefix(dest: Path, minor: str, *, libpython: bool = True, activate: bool = True) -> Path:
    """A conda-layout prefix for Python `minor`: bin/pythonX.Y, lib/libpythonX.Y.so.1.0 (hard
    links to pyenv's files), a minimal lib/pythonX.Y and an empty site-packages."""
    build = pyenv_build(minor)
    (dest / "bin").mkdir(parents=True)
    _link(build / "bin" / f"python{minor}", dest / "bin" / f"python{minor}")
    if activate:
        (dest / "bin" / "activate").write_text(ACTIVATE)
    lib = dest / "lib"
    (lib / f"python{minor}" / "site-packages").mkdir(parents=True)
    if libpython:
        _link(build / "lib" / f"libpython{minor}.so.1.0", lib / f"libpython{minor}.so.1.0")
        os.symlink(f"libpython{minor}.so.1.0", lib / f"libpython{minor}.so")
    for rel, text in STDLIB_FILES.items():
        path = lib / f"python{minor}" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return dest


def clone(prefix: Path, dest: Path) -> Path:
    """A copy of a prefix whose regular files are hard links: cheap, and safe to add files to."""
    shutil.copytree(prefix, dest, symlinks=True, copy_function=os.link)
    return dest


def _link(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def site_packages(prefix: Path, minor: str) -> Path:
    return prefix / "lib" / f"python{minor}" / "site-packages"


def pack(prefix: Path, out: Path) -> Path:
    """A tar.gz with the prefix's contents at the top level, as conda-pack writes it."""
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        for entry in sorted(prefix.iterdir()):
            tar.add(entry, arcname=entry.name)
    return out


def write_model(repo: Path, name: str, *, config: str | None = None, model_py: str | None = "import os\n",
                version: str = "1", env: str | None = None, backend: str = "python") -> Path:
    """A model directory: config.pbtxt (written from `config`, else a python-backend config with
    EXECUTION_ENV_PATH = `env` when given) and <version>/model.py."""
    model = repo / name
    (model / version).mkdir(parents=True)
    if config is None:
        config = f'name: "{name}"\nbackend: "{backend}"\nmax_batch_size: 0\n'
        if env is not None:
            config += f'parameters: {{\n  key: "EXECUTION_ENV_PATH"\n  value: {{ string_value: "{env}" }}\n}}\n'
    (model / "config.pbtxt").write_text(config)
    if model_py is not None:
        (model / version / "model.py").write_text(model_py)
    return model


def extension_package(fx: Fixtures, site: Path, package: str, minor: str, *, needs: str | None = None) -> Path:
    """site/package/__init__.py and a C extension module _core.cpython-XY-x86_64-linux-gnu.so. With
    `needs` (a GLIBCXX version newer than this machine's), the extension needs it from a
    libstdc++.so.6 vendored in site/package.libs and found through its RUNPATH, as wheels do."""
    pkg = site / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from ._core import *\n")
    tag = minor.replace(".", "")
    rel = (pkg / f"_core.cpython-{tag}-x86_64-linux-gnu.so").relative_to(fx.root)
    if needs is None:
        return fx.lib(rel, soname=None)
    nodes = _version_nodes(Path(SYSTEM_LIBSTDCXX))
    extra = [f"GLIBCXX_3.4.{n}" for n in range(31, int(needs.rsplit(".", 1)[1]) + 1)]
    vendored = (site / f"{package}.libs" / "libstdc++.so.6").relative_to(fx.root)
    provider = fx.versioned_lib(vendored, nodes + [v for v in extra if v not in nodes], soname="libstdc++.so.6")
    return fx.needing_versions(rel, provider, [needs], rpath=[f"$ORIGIN/../{package}.libs"])


def clean_environ() -> Mapping[str, str]:
    """The server's environment for the tests: no LD_LIBRARY_PATH / LD_PRELOAD of the runner."""
    keep = ("PATH", "HOME")
    return {k: os.environ[k] for k in keep if k in os.environ}


def runner_python() -> str:
    return sys.executable


# --- execution environments a real stub can run in ----------------------------------------------

# What the stub and triton_python_backend_utils import at start-up (pb_stub.cc imports asyncio,
# threading, traceback and inspect; the utils json, struct and numpy), plus site and encodings.
_STUB_IMPORTS = "json, struct, asyncio, threading, traceback, inspect, numpy, site, encodings, codecs, io"
_MODULE_FILES = (
    "import sys, os, sysconfig\n"
    f"import {_STUB_IMPORTS}\n"
    "std = sysconfig.get_paths()['stdlib']\n"
    "files = {getattr(m, '__file__', None) or '' for m in list(sys.modules.values())}\n"
    "print('\\n'.join(sorted(os.path.relpath(f, std) for f in files if f.startswith(std + '/') "
    "and '/site-packages/' not in f)))\n"
)
# Activation as conda-pack's bin/activate does it: the env's bin first on PATH (the stub's
# embedded Python finds its prefix by looking up python3 there) and CONDA_PREFIX.
SERVING_ACTIVATE = ("# conda-pack activate (fixture)\n"
                    "_prefix=\"$(cd \"$(dirname \"${BASH_SOURCE[0]}\")/..\" && pwd)\"\n"
                    "export CONDA_PREFIX=\"$_prefix\"\nexport PATH=\"$_prefix/bin:$PATH\"\n")


def numpy_dir(minor: str) -> Path | None:
    """A numpy 1.x for Python `minor` (the stub imports numpy; PyTriton 0.7.0's stub hands numpy 2
    arrays back empty): the test runner's own when it is that Python, else the pyenv build's."""
    here = Path(sysconfig.get_paths()["purelib"]) if f"{sys.version_info[0]}.{sys.version_info[1]}" == minor else None
    for site in (here, pyenv_build(minor) / "lib" / f"python{minor}" / "site-packages"):
        if site is not None and (site / "numpy" / "__init__.py").exists() and any(site.glob("numpy-1.*.dist-info")):
            return site / "numpy"
    return None


def serving_env(dest: Path, minor: str, *, libpython: bool = True) -> Path:
    """A conda-layout prefix a real stub can run in: bin/pythonX.Y and python3, a conda-pack like
    bin/activate, lib/libpythonX.Y.so.1.0 (unless `libpython` is False), the standard-library
    files the stub imports at start-up and the build's numpy. Regular files are hard links."""
    build = pyenv_build(minor)
    source = numpy_dir(minor)
    assert source is not None, f"no numpy for Python {minor} in {build}"
    (dest / "bin").mkdir(parents=True)
    _link(build / "bin" / f"python{minor}", dest / "bin" / f"python{minor}")
    os.symlink(f"python{minor}", dest / "bin" / "python3")
    (dest / "bin" / "activate").write_text(SERVING_ACTIVATE)
    (dest / "lib").mkdir()
    if libpython:
        _link(build / "lib" / f"libpython{minor}.so.1.0", dest / "lib" / f"libpython{minor}.so.1.0")
    _copy_stdlib(build, dest, minor, source.parent)
    site = site_packages(dest, minor)
    site.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("tests", "__pycache__", "*.pyi", "f2py", "distutils")
    for name in ("numpy", "numpy.libs"):
        if (source.parent / name).is_dir():
            shutil.copytree(source.parent / name, site / name, ignore=ignore, copy_function=_link_file)
    return dest


def _copy_stdlib(build: Path, dest: Path, minor: str, numpy_site: Path) -> None:
    """The standard-library files the stub's start-up imports load, with the numpy it will get."""
    import subprocess

    python = build / "bin" / f"python{minor}"
    env = {"PATH": os.environ.get("PATH", ""), "LD_LIBRARY_PATH": str(build / "lib"), "PYTHONPATH": str(numpy_site)}
    listed = subprocess.run([str(python), "-c", _MODULE_FILES], capture_output=True, text=True, check=True, env=env)
    stdlib = build / "lib" / f"python{minor}"
    shutil.copytree(stdlib / "encodings", dest / "lib" / f"python{minor}" / "encodings",
                    ignore=shutil.ignore_patterns("__pycache__"), copy_function=_link_file)
    for rel in listed.stdout.split():
        target = dest / "lib" / f"python{minor}" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            _link(stdlib / rel, target)


def _link_file(src: str, dest: str) -> str:
    _link(Path(src), Path(dest))
    return dest


_PACKED: dict[tuple[str, str, bool], Path] = {}


def packed_serving_env(root: Path, minor: str, *, libpython: bool = True) -> Path:
    """serving_env packed as a tar.gz under `root` (a session's temporary directory), made once
    per session and kind: the tests copy the tarball into their model directories."""
    key = (str(root), minor, libpython)
    if key not in _PACKED:
        name = f"serving-env-{minor}" + ("" if libpython else "-nolibpython")
        prefix = serving_env(root / name, minor, libpython=libpython)
        _PACKED[key] = pack(prefix, root / f"{name}.tar.gz")
    return _PACKED[key]
