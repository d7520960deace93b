"""Rows 29 and 30 made for real: PyTriton servers killed with SIGKILL leave their workspaces
beside a live one; numpy 2 installed into a PYTHONPATH directory with pip."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest
from fixkit import stop_group

from tritondoctor.checks import stale_workspaces, stub_numpy
from tritondoctor.findings import Status
from tritondoctor.snapshot import take_snapshot

SERVER = textwrap.dedent("""
    import sys, time
    from pytriton.triton import Triton, TritonConfig
    http, grpc, metrics = map(int, sys.argv[1:4])
    t = Triton(config=TritonConfig(http_port=http, grpc_port=grpc, metrics_port=metrics))
    t.run()
    print("ready", flush=True)
    time.sleep(600)
""")


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start(home: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTRITON_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-c", SERVER, *map(str, _ports(3))], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # tritonserver's own log shares the stream
        if line.strip() == "ready":
            break
    else:
        proc.kill()
        pytest.fail("a PyTriton server did not start")
    return proc


def _gone(pid: int, timeout: float = 40.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        out = subprocess.run(["pgrep", "-s", str(pid)], capture_output=True, text=True).stdout.split()
        if not out:
            return
        time.sleep(0.5)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    home = tmp_path / "pytriton-home"
    killed = [_start(home) for _ in range(2)]
    for proc in killed:
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup: the workspace stays; tritonserver dies by PDEATHSIG
        proc.wait()
    for proc in killed:
        _gone(proc.pid)
    live = _start(home)
    try:
        yield home, live
    finally:
        stop_group(live)


def test_row29_killed_servers_leave_stale_workspaces_and_fix_removes_only_them(servers, monkeypatch) -> None:
    from tritondoctor.facts import workspaces as ws_facts
    from tritondoctor.fixes import workspace_cleanup

    home, _live = servers
    monkeypatch.setattr(ws_facts, "STARTING_GRACE_S", 0.0)  # the killed ones are seconds old here
    snap = take_snapshot(python=sys.executable, environ=dict(os.environ, PYTRITON_HOME=str(home)))
    scan = snap.workspaces
    assert scan is not None and len(scan.workspaces) == 3
    assert len(scan.stale) == 2 and len(scan.live) == 1 and scan.live[0].held_by
    assert all(w.size > 10 * 1024 * 1024 for w in scan.stale)  # PyTriton's ~22 MB copy each
    finding = stale_workspaces.run(snap)[0]
    assert finding.status is Status.WARN and finding.title.startswith("2 stale PyTriton workspace(s)")
    plan = workspace_cleanup.plan(snap, [finding])
    assert plan is not None and plan.prediction.proven and len(plan.commands) == 2
    assert any("not undoable" in n for n in plan.notes)
    assert all("MiB" in c.description for c in plan.commands)
    workspace_cleanup.apply(plan, journal=None)  # type: ignore[arg-type] - it writes nothing to the journal
    left = sorted(p.name for p in home.iterdir() if p.name.startswith("workspace_"))
    assert left == [os.path.basename(scan.live[0].path)]


@pytest.fixture(scope="session")
def numpy2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("numpy2")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "--no-deps", "--target", str(target), "numpy>=2"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"pip could not install numpy>=2 here: {proc.stderr.strip()[-300:]}")
    return target


def test_row30_numpy2_on_pythonpath_reaches_the_stub(numpy2_dir: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(numpy2_dir))
    snap = take_snapshot(python=sys.executable, environ=env)
    assert snap.pkgfiles is not None and snap.pkgfiles.numpy is not None
    assert snap.pkgfiles.numpy.route == "PYTHONPATH" and snap.pkgfiles.numpy.version.startswith("2.")
    finding = stub_numpy.run(snap)[0]
    assert finding.status is Status.ERROR and "PYTHONPATH" in finding.title
    clean = take_snapshot(python=sys.executable, environ={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert stub_numpy.run(clean)[0].status is Status.OK
