"""Snapshot.derive(env) gives what take_snapshot(env) gives for the same target interpreter.

The target is the interpreter running the tests (it has nvidia-pytriton installed: see
tests/conftest.py, which installs the same version into the fixtures' venvs).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from conda_envs import make_conda_prefix
from tritondoctor.checks import ld_library_path
from tritondoctor.facts.runtime import RuntimeFacts
from tritondoctor.snapshot import Snapshot, take_snapshot

Env = dict[str, str]


def snapshot(environ: Env) -> Snapshot:
    return take_snapshot(python=sys.executable, environ=environ)


def machine_state_free(runtime: RuntimeFacts | None) -> RuntimeFacts | None:
    """`runtime` less what is the machine's state at the moment of a look, which derive does not
    look at again by design: the ports (and who holds them), the Triton processes and the /dev/shm
    segments change whenever another process on this shared machine starts or stops one, and free
    space moves with every write anywhere on the filesystem. The errors list is made by the port
    scan (net_connections), so it moves with the ports."""
    if runtime is None:
        return None
    workspace = dataclasses.replace(runtime.workspace, free_bytes=None) if runtime.workspace else None
    shm = dataclasses.replace(runtime.shm, free=None, segments=()) if runtime.shm else None
    return dataclasses.replace(runtime, ports=(), listening_ports=(), servers=(), errors=(), shm=shm,
                               workspace=workspace)


def comparable(snap: Snapshot, name: str) -> Any:
    value = getattr(snap, name)
    return machine_state_free(value) if name == "runtime" else value


def assert_same_snapshot(derived: Snapshot, fresh: Snapshot) -> None:
    names = [f.name for f in dataclasses.fields(Snapshot)]
    differing = [n for n in names if comparable(derived, n) != comparable(fresh, n)]
    assert not differing, {n: (comparable(derived, n), comparable(fresh, n)) for n in differing}


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        out[name] = str(tmp_path / name)
    return out


@pytest.fixture
def conda_prefixes(tmp_path: Path) -> dict[str, str]:
    base = make_conda_prefix(tmp_path / "miniforge", base=True)
    env = make_conda_prefix(base / "envs" / "work")
    return {"base": str(base), "env": str(env)}


def _with(environ: Env, **changes: str | None) -> Env:
    out = dict(environ)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# (name, changes to the starting environment, changes to the derived one); values are formatted
# with the `dirs` and `conda_prefixes` fixtures.
CASES: list[tuple[str, dict[str, str | None], dict[str, str | None]]] = [
    ("ld-changed", {"LD_LIBRARY_PATH": "{a}:{a}"}, {"LD_LIBRARY_PATH": "/usr/lib"}),
    ("ld-duplicated", {}, {"LD_LIBRARY_PATH": "{a}:{b}:{a}"}),
    ("ld-unset", {"LD_LIBRARY_PATH": "{a}"}, {"LD_LIBRARY_PATH": None}),
    ("ld-empty", {"LD_LIBRARY_PATH": "{a}"}, {"LD_LIBRARY_PATH": ""}),
    ("conda-activated", {}, {"CONDA_PREFIX": "{env}", "CONDA_SHLVL": "2", "CONDA_PREFIX_1": "{base}"}),
    ("conda-changed", {"CONDA_PREFIX": "{base}", "CONDA_SHLVL": "1"}, {"CONDA_PREFIX": "{env}", "CONDA_SHLVL": "x"}),
    ("conda-deactivated", {"CONDA_PREFIX": "{env}", "CONDA_SHLVL": "1"}, {"CONDA_PREFIX": None, "CONDA_SHLVL": None}),
    ("cuda-visible", {}, {"CUDA_VISIBLE_DEVICES": ""}),
    ("cuda-visible-changed", {"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}),
    ("pytriton-home", {}, {"PYTRITON_HOME": "{a}/pt"}),
    ("xdg-cache", {"PYTRITON_HOME": "{a}/pt"}, {"PYTRITON_HOME": None, "XDG_CACHE_HOME": "{b}"}),
    ("container-variable", {}, {"container": "podman"}),
    ("probe-knob", {}, {"PYTHONPATH": "{b}"}),
    ("unrelated", {}, {"TRITONDOCTOR_UNRELATED": "1"}),
]


@pytest.mark.parametrize("before,after", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_derive_equals_a_fresh_snapshot(
    clean_environ: Env, dirs: dict[str, str], conda_prefixes: dict[str, str],
    before: dict[str, str | None], after: dict[str, str | None],
) -> None:
    values = {**dirs, **conda_prefixes}
    fill: Callable[[dict[str, str | None]], dict[str, str | None]] = lambda changes: {
        k: v.format(**values) if v is not None else None for k, v in changes.items()
    }
    start = _with(clean_environ, **fill(before))
    target_env = _with(start, **fill(after))
    derived = snapshot(start).derive(target_env)
    assert_same_snapshot(derived, snapshot(target_env))


def test_derived_ld_library_path_no_longer_reports_the_old_entries(clean_environ: Env) -> None:
    snap = snapshot(dict(clean_environ, LD_LIBRARY_PATH="/opt/a:/opt/a"))
    assert any("/opt/a" in f.title for f in ld_library_path.run(snap))
    derived = snap.derive(dict(clean_environ, LD_LIBRARY_PATH="/usr/lib"))
    assert derived.conda is not None and derived.conda.ld_library_path == "/usr/lib"
    findings = ld_library_path.run(derived)
    assert not [f for f in findings if "/opt/a" in f.title or "/opt/a" in (f.detail or "")], findings


def test_unchanged_inputs_reuse_the_facts(clean_environ: Env, dirs: dict[str, str]) -> None:
    snap = snapshot(dict(clean_environ, LD_LIBRARY_PATH=dirs["a"]))
    same = snap.derive(dict(snap.environ, TRITONDOCTOR_UNRELATED="1"))
    for name in ("system", "target", "pytriton", "conda", "gpu", "runtime", "loader_env", "resolutions",
                 "libcuda", "libpython"):
        assert getattr(same, name) is getattr(snap, name), name
    assert same.server_environ is not None and same.server_environ["TRITONDOCTOR_UNRELATED"] == "1"


def test_machine_facts_are_not_looked_at_again(clean_environ: Env, dirs: dict[str, str]) -> None:
    snap = snapshot(clean_environ)
    moved = snap.derive(dict(clean_environ, LD_LIBRARY_PATH=dirs["a"], PYTRITON_HOME=dirs["b"] + "/pt",
                             CUDA_VISIBLE_DEVICES=""))
    assert moved.system is snap.system and moved.target is snap.target
    assert moved.runtime is not None and snap.runtime is not None
    assert moved.runtime.ports is snap.runtime.ports and moved.runtime.servers is snap.runtime.servers
    assert moved.runtime.shm is not None and snap.runtime.shm is not None
    assert moved.runtime.shm.segments is snap.runtime.shm.segments
    assert moved.gpu is not None and snap.gpu is not None
    assert moved.gpu.devices is snap.gpu.devices and moved.gpu.cuda_visible_devices == ""
    assert moved.runtime.workspace is not None and moved.runtime.workspace.home == dirs["b"] + "/pt"
    assert moved.pytriton is not None and moved.pytriton.pytriton_home == dirs["b"] + "/pt"
