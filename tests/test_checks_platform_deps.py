"""platform and python-deps checks. Environments are real venvs: their site-packages are links
to the test interpreter's real installed packages, minus the package a test takes away, plus
real packages pip installs (numpy 2, an old pip). Other machines (old glibc, another
architecture) are the real snapshot with system facts replaced, using the real wheel tags
PyPI lists (tests/data/pypi-nvidia-pytriton-files.txt)."""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from tritondoctor.checks import platform, python_deps

from tritondoctor import versions as _versions
from tritondoctor.findings import Status
from tritondoctor.snapshot import Snapshot, take_snapshot

DATA = Path(__file__).parent / "data"
SITE = sysconfig.get_paths()["purelib"]


def has_pytriton() -> bool:
    return any(n.startswith("nvidia_pytriton-") and n.endswith(".dist-info") for n in os.listdir(SITE))


needs_pytriton = pytest.mark.skipif(not has_pytriton(), reason="the test interpreter has no nvidia-pytriton")


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    drop = {"LD_LIBRARY_PATH", "LD_PRELOAD", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def snap(env: dict) -> Snapshot:
    return take_snapshot(python=sys.executable, environ=env)


def make_env(path: Path, python: str, without: tuple[str, ...] = ()) -> Path:
    """A venv (no pip of its own) whose site-packages links every package of the test
    interpreter except the distributions named in `without`."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True)
    site = Path(glob.glob(str(path / "lib" / "python3*" / "site-packages"))[0])
    drop = tuple(_versions.normalize(n) for n in without)
    for entry in os.listdir(SITE):
        top = _versions.normalize(entry.split("-")[0].split(".")[0])
        if top in drop or (top == "zmq" and "pyzmq" in drop):
            continue
        if entry.startswith("__editable__") or entry == "__pycache__":
            continue
        (site / entry).symlink_to(os.path.join(SITE, entry))
    return site


def pip_install(site: Path, *requirements: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                           "--target", str(site), *requirements], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"pip could not install {requirements}: {proc.stderr.strip()[-300:]}")


def python_313() -> str | None:
    candidates = [shutil.which("python3.13")] + sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 13)"],
                          capture_output=True).returncode == 0:
            return candidate
    return None


# --- python-deps -------------------------------------------------------------------------------

@needs_pytriton
def test_healthy_environment(snap: Snapshot) -> None:
    found = python_deps.run(snap)
    assert [f.status for f in found] == [Status.OK]
    assert "numpy" in found[0].title and "pyzmq" in found[0].title


@needs_pytriton
def test_venv_without_pyzmq(env: dict, tmp_path: Path) -> None:
    make_env(tmp_path / "v", sys.executable, without=("pyzmq",))
    snap = take_snapshot(python=str(tmp_path / "v" / "bin" / "python"), environ=env)
    assert "pyzmq" not in snap.target.distributions and "nvidia-pytriton" in snap.target.distributions
    found = python_deps.run(snap)
    assert [f.status for f in found] == [Status.ERROR]
    assert found[0].title.startswith("pyzmq is not installed")
    assert "ModuleNotFoundError (zmq)" in found[0].detail
    assert "pyzmq>=23.0" in found[0].fix.commands[0]


@needs_pytriton
def test_venv_with_numpy_2(env: dict, tmp_path: Path) -> None:
    site = make_env(tmp_path / "v", sys.executable, without=("numpy",))
    pip_install(site, "numpy>=2,<3")
    snap = take_snapshot(python=str(tmp_path / "v" / "bin" / "python"), environ=env)
    numpy = snap.target.distributions["numpy"]
    assert _versions.release(numpy.version) >= (2,)
    found = python_deps.run(snap)
    assert [f.status for f in found] == [Status.ERROR]
    assert f"numpy {numpy.version} is installed but nvidia-pytriton" in found[0].title
    assert "numpy<2" in found[0].title
    assert "numpy<2.0.0,>=1.21" in found[0].fix.commands[0]


@needs_pytriton
def test_python_313_without_numpy(env: dict, tmp_path: Path) -> None:
    python = python_313()
    if python is None:
        pytest.skip("no Python 3.13 on this machine")
    make_env(tmp_path / "v", python, without=("numpy",))
    snap = take_snapshot(python=str(tmp_path / "v" / "bin" / "python"), environ=env)
    assert snap.target.version[:2] == (3, 13)
    found = python_deps.run(snap)
    assert [f.status for f in found] == [Status.ERROR]
    assert "numpy is not installed" in found[0].title
    assert "no numpy<2 wheel" in found[0].detail
    assert found[0].fix.id == "python-version"


def test_versions_helper() -> None:
    assert _versions.satisfies("1.26.4", "<2.0.0,>=1.21") is True
    assert _versions.satisfies("2.0.0rc1", "<2.0.0") is False
    assert _versions.satisfies("2.1.3", "<2.0.0,>=1.21") is False
    assert _versions.satisfies("2.58.0", "~=2.50") is True
    assert _versions.requirement("tritonclient[grpc,http]~=2.50") == ("tritonclient", "~=2.50", "")
    assert _versions.requirement('pytest~=8.1.1; extra == "test"')[2] == 'extra == "test"'


# --- platform ----------------------------------------------------------------------------------

def pypi_tags() -> dict[str, list[str]]:
    """version -> wheel tags, from the real PyPI file list."""
    out: dict[str, list[str]] = {}
    for name in (DATA / "pypi-nvidia-pytriton-files.txt").read_text().split():
        _dist, version, py, abi, plat = name[: -len(".whl")].split("-")
        out.setdefault(version, []).append(f"{py}-{abi}-{plat}")
    return out


def test_pypi_wheel_tags_give_the_glibc_table() -> None:
    tags = pypi_tags()
    needs = {v: {platform.tag_platforms(t)[0] for t in ts} for v, ts in tags.items()}
    assert needs["0.2.5"] == {((2, 31), "x86_64")}
    assert needs["0.3.0"] == {((2, 35), "x86_64")}
    assert needs["0.7.0"] == {((2, 35), "x86_64"), ((2, 35), "aarch64")}
    assert all(g == (2, 35) for v, s in needs.items() if _versions.release(v) >= (0, 3) for g, _a in s)
    assert platform.tag_platforms("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64") == [
        ((2, 17), "x86_64"), ((2, 17), "x86_64")]


@needs_pytriton
def test_platform_here_is_ok(snap: Snapshot) -> None:
    found = platform.run(snap)
    assert [f.status for f in found] == [Status.OK]
    assert snap.system.machine in found[0].title and "fits" in found[0].title


def elsewhere(snap: Snapshot, *, glibc=None, machine=None, version=None, tags=None) -> Snapshot:
    """The real snapshot as another machine would show it (system facts and the installed
    distribution's version/tags replaced by real values of that machine / of PyPI)."""
    system = dataclasses.replace(snap.system, glibc=glibc or snap.system.glibc, machine=machine or snap.system.machine)
    target = snap.target
    dists = dict(target.distributions)
    if version:
        dists["nvidia-pytriton"] = dataclasses.replace(dists["nvidia-pytriton"], version=version, tags=tuple(tags))
    pytriton = dataclasses.replace(snap.pytriton, version=version, wheel_tags=tuple(tags)) if version else snap.pytriton
    return dataclasses.replace(snap, system=system, target=dataclasses.replace(target, distributions=dists),
                               pytriton=pytriton)


@needs_pytriton
def test_pip_fell_back_to_0_2_on_old_glibc(snap: Snapshot) -> None:
    found = platform.run(elsewhere(snap, glibc=(2, 31), version="0.2.5", tags=pypi_tags()["0.2.5"]))
    assert [f.status for f in found] == [Status.WARN]
    assert "nvidia-pytriton 0.2.5 is installed because glibc 2.31" in found[0].title


@needs_pytriton
def test_installed_wheel_needs_newer_glibc(snap: Snapshot) -> None:
    found = platform.run(elsewhere(snap, glibc=(2, 28), version="0.7.0", tags=pypi_tags()["0.7.0"][-1:]))
    assert [f.status for f in found] == [Status.ERROR]
    assert "needs glibc >= 2.35, this system has 2.28" in found[0].title


@needs_pytriton
def test_wheel_for_another_architecture(snap: Snapshot) -> None:
    x86 = [t for t in pypi_tags()["0.7.0"] if t.endswith("x86_64")]
    found = platform.run(elsewhere(snap, machine="aarch64", version="0.7.0", tags=x86))
    assert [f.status for f in found] == [Status.ERROR]
    assert "is for x86_64, this machine is aarch64" in found[0].title


def test_old_pip_cannot_read_manylinux_2_35(env: dict, tmp_path: Path) -> None:
    path = tmp_path / "oldpip"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    site = Path(glob.glob(str(path / "lib" / "python3*" / "site-packages"))[0])
    pip_install(site, "pip==20.2.4")
    snap = take_snapshot(python=str(path / "bin" / "python"), environ=env)
    assert snap.target.distributions["pip"].version == "20.2.4"
    found = [f for f in platform.run(snap) if "pip" in f.title]
    assert len(found) == 1 and found[0].status is Status.WARN
    assert "pip 20.2.4 cannot read manylinux_2_35" in found[0].title
    assert found[0].fix.commands == (f"{snap.target.executable} -m pip install -U pip",)

