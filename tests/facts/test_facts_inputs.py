"""The facts modules: their declared inputs, no import of the snapshot, the one container fact,
and the PyTriton install's file states that checks read instead of the filesystem."""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import tritondoctor.facts
from tritondoctor.facts import container as container_facts
from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts import target as target_facts
from tritondoctor.facts.conda import READS as CONDA_READS
from tritondoctor.facts.inputs import EnvReads
from tritondoctor.snapshot import take_snapshot

FACT_MODULES = sorted(m.name for m in pkgutil.iter_modules(tritondoctor.facts.__path__))
GATHERING = ("conda", "container", "gpu", "libpython", "ports", "processes", "pytriton", "runtime", "shm",
             "system", "target", "workspace")


def test_facts_never_import_the_snapshot() -> None:
    modules = [f"tritondoctor.facts.{name}" for name in FACT_MODULES]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "print([m for m in sys.modules if m in ('tritondoctor.snapshot', 'tritondoctor.checks')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", GATHERING)
def test_every_gathering_module_declares_what_it_reads(name: str) -> None:
    module = importlib.import_module(f"tritondoctor.facts.{name}")
    assert isinstance(getattr(module, "READS", None), EnvReads)


def test_env_reads_cover_names_and_prefixes() -> None:
    env = {"CONDA_PREFIX": "/c", "CONDA_PREFIX_2": "/b", "CONDA_PREFIXES": "x", "PATH": "/bin"}
    assert CONDA_READS.view(env) == (("CONDA_PREFIX", "/c"), ("CONDA_PREFIX_2", "/b"))
    assert CONDA_READS.same(env, dict(env, PATH="/usr/bin"))
    assert not CONDA_READS.same(env, dict(env, CONDA_PREFIX_3="/x"))
    assert target_facts.READS.names == frozenset(target_facts.PROBE_ENV)


def test_one_container_fact() -> None:
    snap = take_snapshot(python=sys.executable, environ=dict(os.environ, container="podman"))
    assert snap.system.container == container_facts.detect(snap.environ)
    assert snap.system.in_container is (snap.system.container is not None)
    assert snap.runtime is not None and not hasattr(snap.runtime, "container")  # one fact, in system
    assert snap.system.to_json()["container"] is snap.system.in_container


def test_container_kind_from_the_environment_when_no_marker_file(tmp_path: Path) -> None:
    if container_facts.detect({}) is not None:
        pytest.skip("this machine has container markers of its own")
    assert container_facts.detect({"container": "systemd-nspawn"}) == "systemd-nspawn"
    assert container_facts.detect({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == "kubernetes"


def test_install_file_states_of_the_real_install() -> None:
    snap = take_snapshot(python=sys.executable)
    install, tp = snap.pytriton, snap.target
    if install is None or tp is None:
        pytest.skip("nvidia-pytriton is not installed in the test interpreter")
    assert install.tritonserver_is_file and install.tritonserver_executable
    assert install.python_backend_is_file and install.libs_dir_is_dir
    assert install.missing_files == ()
    assert set(install.stub_executable) == set(install.stubs) and all(install.stub_executable.values())
    assert set(install.to_json()) == {"version", "package_dir", "libs_dir", "tritonserver", "python_backend",
                                      "stubs", "wheel_tags", "pytriton_home"}


def test_install_file_states_of_a_damaged_install(tmp_path: Path) -> None:
    tp = take_snapshot(python=sys.executable).target
    assert tp is not None
    site = tmp_path / "site"
    server = site / "pytriton" / "tritonserver"
    (server / "bin").mkdir(parents=True)
    (server / "bin" / "tritonserver").write_text("")  # not executable
    stub = server / "python_backend_stubs" / tp.minor / "triton_python_backend_stub"
    stub.parent.mkdir(parents=True)
    stub.write_text("")
    stub.chmod(stat.S_IRUSR)
    dist = target_facts.Distribution("nvidia-pytriton", "0.7.0", str(site))
    broken = dataclasses.replace(tp, site_packages=(str(site),), distributions={"nvidia-pytriton": dist})
    install = pytriton_facts.locate(broken, {"HOME": str(tmp_path)})
    assert install is not None
    assert install.tritonserver_is_file and not install.python_backend_is_file and not install.libs_dir_is_dir
    assert install.missing_files == (install.python_backend,)
    assert not install.tritonserver_executable  # X_OK needs an exec bit, for root too
    assert install.stub_executable == {tp.minor: False}
