"""`smoke --model-repository`: real repositories served by nvidia-pytriton's real tritonserver.

The interpreter is the one running the tests (its venv has nvidia-pytriton); LD_LIBRARY_PATH
gets its LIBDIR so the stub maps this interpreter's libpython (see test_smoke.py for the bug that
happens otherwise on pyenv builds). After every ending no process, port, shm segment or
scratch directory of the run may be left.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from repo_server_fixtures import ADD_SUB_MODEL, write_add_sub, write_missing_dep, write_model, write_raising
from tritondoctor.findings import Status
from tritondoctor.smoke.procs import port_is_free
from tritondoctor.smoke.repository import render_repo_smoke, run_repository_smoke
from tritondoctor.smoke.runner import SmokeUsageError

pytestmark = pytest.mark.slow
PYTHON = sys.executable


@pytest.fixture
def env(clean_environ: dict[str, str]) -> dict[str, str]:
    out = dict(clean_environ)
    out["LD_LIBRARY_PATH"] = sysconfig.get_config_var("LIBDIR") or ""
    return out


def scratch_dirs() -> set[str]:
    return set(glob.glob("/tmp/tdrepo-*"))


def assert_nothing_left(before_dirs: set[str], ports: list[int]) -> None:
    assert scratch_dirs() <= before_dirs, "the scratch directory was left behind"
    assert all(port_is_free(p) for p in ports), f"a port is still taken: {ports}"
    mine = [p for p in psutil.process_iter(["name", "environ"])
            if p.info["name"] in ("tritonserver", "triton_python_backend_stub")
            and "TRITONDOCTOR_REPO_SMOKE" in (p.info["environ"] or {})]
    assert not mine, f"processes left: {mine}"
    assert not glob.glob("/dev/shm/tdrepo*"), "shm segments left"


def test_add_sub_passes_over_both_protocols(tmp_path: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    write_add_sub(repo)
    write_add_sub(repo, "add_sub_too")
    before = scratch_dirs()
    result = run_repository_smoke([str(repo)], PYTHON, env, None, None, 120.0)
    assert result.passed, result.to_json()
    assert result.exit_code == 0 and result.bundled
    assert [m.name for m in result.models] == ["add_sub", "add_sub_too"]
    for model in result.models:
        assert model.ready and model.state == "READY"
        assert model.http and model.http.ok and dict(model.http.outputs) == {"SUM": [1], "DIFF": [1]}
        assert model.grpc and model.grpc.ok and dict(model.grpc.outputs) == {"SUM": [1], "DIFF": [1]}
    assert result.to_json()["models"][0]["http"]["ok"] is True
    assert_nothing_left(before, list(result.ports.values()))


def test_model_raising_at_import_fails_naming_it(tmp_path: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    write_add_sub(repo)
    write_raising(repo, "broken")
    before = scratch_dirs()
    result = run_repository_smoke([str(repo)], PYTHON, env, None, None, 120.0)
    assert not result.passed and result.exit_code == 1
    good, bad = result.model("add_sub"), result.model("broken")
    assert good is not None and good.passed
    assert bad is not None and not bad.ready and bad.state == "UNAVAILABLE"
    assert "refuses to be imported" in bad.reason
    assert bad.findings and all(f.evidence["model"] == "broken" and "'broken'" in f.title for f in bad.findings)
    assert all(f.status is Status.ERROR for f in bad.findings)
    # The model that loaded fine is not blamed.
    assert all(f.evidence.get("model") == "broken" for f in result.findings)
    assert_nothing_left(before, list(result.ports.values()))


def test_missing_module_is_python_deps(tmp_path: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    write_missing_dep(repo, "needs_dep", module="tritondoctor_absent_module")
    result = run_repository_smoke([str(repo)], PYTHON, env, None, None, 120.0)
    assert not result.passed
    (finding,) = result.model("needs_dep").findings
    assert finding.id == "python-deps" and "tritondoctor_absent_module" in finding.title
    assert finding.evidence["model"] == "needs_dep"


def test_render_and_usage_errors(tmp_path: Path, env: dict[str, str]) -> None:
    from rich.console import Console

    with pytest.raises(SmokeUsageError):
        run_repository_smoke([str(tmp_path / "absent")], PYTHON, env, None, None, 10.0)
    with pytest.raises(SmokeUsageError):
        run_repository_smoke([str(tmp_path)], PYTHON, env, str(tmp_path / "no-server"), None, 10.0)
    repo = tmp_path / "repo"
    write_raising(repo, "broken")
    result = run_repository_smoke([str(repo)], PYTHON, env, None, None, 120.0)
    console = Console(record=True, width=200)
    render_repo_smoke(result, console)
    text = console.export_text()
    assert "Repository smoke test failed" in text and "broken: not ready" in text


SLOW_MODEL = ADD_SUB_MODEL.format(imports="import time").replace(
    "class TritonPythonModel:\n", "class TritonPythonModel:\n    def initialize(self, args):\n        time.sleep(120)\n\n")

DRIVER = textwrap.dedent("""
    import sys
    from tritondoctor.smoke.repository import run_repository_smoke
    try:
        run_repository_smoke([sys.argv[1]], sys.executable, dict(__import__("os").environ), None, None, 300.0)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(3)
""")


def _wait_for_stub(root: int, deadline: float) -> list[psutil.Process]:
    while time.monotonic() < deadline:
        try:
            procs = psutil.Process(root).children(recursive=True)
        except psutil.Error:
            procs = []
        if any(p.name() == "triton_python_backend_stub" for p in procs if p.is_running()):
            return procs
        time.sleep(0.1)
    raise AssertionError("the stub never started")


def test_ctrl_c_leaves_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "slow", SLOW_MODEL)
    before = scratch_dirs()
    driver = subprocess.Popen([PYTHON, "-c", DRIVER, str(repo)], env=env)
    try:
        procs = _wait_for_stub(driver.pid, time.monotonic() + 90)
        server = next(p for p in procs if p.name() == "tritonserver")
        cmdline = server.cmdline()
        ports = [int(a.split("=")[1]) for a in cmdline if a.split("=")[0] in ("--http-port", "--grpc-port")]
        workdir = cmdline[0].split("/tritonserver/bin/")[0]
        assert os.path.isdir(workdir)
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=60) == 130
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    gone, alive = psutil.wait_procs(procs, timeout=5)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
    assert not os.path.exists(workdir)
    assert_nothing_left(before, ports)
