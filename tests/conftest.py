"""Shared fixtures: real environments, never mocks.

`pytriton_venv` is a fresh venv made from the base interpreter of the test run (here pyenv's
3.11.7, the real libpython-mismatch machine) with the real nvidia-pytriton installed into it.
`layered_venv` makes further cheap venvs that see that one's site-packages through a .pth file,
for tests that write into an environment (fix, hooks) and must not disturb each other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Callable, Iterator

import pytest


def base_python() -> str:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


def _pytriton_requirement() -> str:
    try:
        from importlib import metadata

        return f"nvidia-pytriton=={metadata.version('nvidia-pytriton')}"
    except Exception:
        return "nvidia-pytriton"


@pytest.fixture(scope="session")
def pytriton_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("pytriton-venv") / "venv"
    subprocess.run([base_python(), "-m", "venv", str(path)], check=True)
    cmd = [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    wheelhouse = os.environ.get("TRITONDOCTOR_WHEELHOUSE")
    if wheelhouse:
        cmd += ["--no-index", "--find-links", wheelhouse]
    proc = subprocess.run(cmd + [_pytriton_requirement()], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"could not install nvidia-pytriton into a fresh venv:\n{proc.stderr[-2000:]}")
    yield path


def link_site_packages(shared_venv: Path, venv_path: Path) -> None:
    """Give `venv_path` the packages of `shared_venv` as symlinks inside its own site-packages.

    Not a .pth file: PyTriton (pytriton.utils.distribution) treats a package found outside
    site.getsitepackages() as an editable install and then looks for its bundled libraries in
    the wrong place, so a .pth-layered venv is a broken PyTriton environment.
    """
    site = next((venv_path / "lib").glob("python3*/site-packages"))
    shared = next((shared_venv / "lib").glob("python3*/site-packages"))
    for entry in shared.iterdir():
        target = site / entry.name
        if not target.exists() and not target.is_symlink():
            target.symlink_to(entry)


@pytest.fixture
def layered_venv(pytriton_venv: Path, tmp_path: Path) -> Callable[[str], Path]:
    """Factory: a new venv (base interpreter) that has the shared venv's packages (symlinked)."""

    def make(name: str = "env") -> Path:
        path = tmp_path / name
        venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
        link_site_packages(pytriton_venv, path)
        return path

    return make


@pytest.fixture
def clean_environ() -> dict[str, str]:
    """The environment of a user with nothing activated: no conda, no venv, no loader knobs."""
    drop = {"LD_LIBRARY_PATH", "LD_PRELOAD", "CONDA_PREFIX", "CONDA_SHLVL", "CONDA_DEFAULT_ENV",
            "CONDA_EXE", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "MAMBA_EXE"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CONDA_PREFIX_")}
    return env


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


@pytest.fixture
def venv_needing_hooks(layered_venv, clean_environ: dict[str, str]):  # type: ignore[no-untyped-def]
    """A layered venv (activated environ) for which `fix` plans venv-hooks: this machine's
    libpython mismatch; skipped where the machine has none."""
    from fixkit import tritondoctor, venv_activated

    venv_dir = layered_venv("venv")
    environ = venv_activated(venv_dir, clean_environ)
    dry = tritondoctor("fix", "--dry-run", environ=environ)
    if "venv-hooks" not in dry.stdout:
        pytest.skip("nothing for venv-hooks to fix on this machine (no libpython mismatch)")
    return venv_dir, environ
