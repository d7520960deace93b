"""Two fixes of the field catalog's second round through the CLI, as a user runs them:
`python -m tritondoctor fix --yes --no-smoke` in a real venv.

- grpc-proxy-hooks (row 25): a dead loopback proxy in https_proxy and no no_grpc_proxy; the fix is
  planned, proven and applied, a newly activated shell exports no_grpc_proxy and `check --only
  grpc-proxy` is ok there; `fix --undo` gives the venv back byte for byte.
- workspace-cleanup (row 29): PYTRITON_HOME holding workspaces of real PyTriton servers killed
  with SIGKILL plus one of a live server; the plan lists each stale one with its size and says it
  is not undoable; `fix --yes` removes only the stale ones.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from fixkit import by_id, check_json, stop_group, tree_state, tritondoctor, venv_activated


def _dead_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing accepts connections there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _plan(result: dict, fix_id: str) -> dict:
    plans = [p for p in result["plans"] if p["id"] == fix_id]
    assert plans, [p["id"] for p in result["plans"]]
    return plans[0]


# --- grpc-proxy-hooks --------------------------------------------------------------------------


@pytest.fixture
def proxied_venv(layered_venv, clean_environ: dict[str, str]):  # type: ignore[no-untyped-def]
    venv_dir = layered_venv("venv")
    shell = {k: v for k, v in clean_environ.items() if k.lower() not in ("no_proxy", "no_grpc_proxy", "grpc_proxy", "http_proxy")}
    shell["https_proxy"] = f"http://127.0.0.1:{_dead_port()}"
    return venv_dir, shell


def test_grpc_proxy_hooks_through_the_cli(proxied_venv) -> None:
    venv_dir, shell = proxied_venv
    environ = venv_activated(venv_dir, shell)
    assert "no_grpc_proxy" not in environ
    (before,) = by_id(check_json(venv_dir / "bin" / "python", environ), "grpc-proxy")
    assert before["status"] == "error" and before["fix"]["id"] == "grpc-proxy-hooks"
    pristine = tree_state(venv_dir)

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", environ=environ)

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    plan = _plan(result, "grpc-proxy-hooks")
    assert "grpc-proxy" in plan["clears"]
    assert plan["prediction"]["proven"] and plan["prediction"]["statuses"]["grpc-proxy"] == "ok"
    assert "grpc-proxy-hooks" in result["applied"]
    assert tree_state(venv_dir) != pristine

    activated = venv_activated(venv_dir, shell)
    assert {"localhost", "127.0.0.1"} <= set(activated["no_grpc_proxy"].split(","))
    only = tritondoctor("check", "--only", "grpc-proxy", "--json", environ=activated)
    assert only.returncode == 0, only.stdout + only.stderr
    (after,) = by_id(json.loads(only.stdout), "grpc-proxy")
    assert after["status"] == "ok"

    undo = tritondoctor("fix", "--undo", environ=environ)
    assert undo.returncode == 0, undo.stderr
    assert tree_state(venv_dir) == pristine
    assert "no_grpc_proxy" not in venv_activated(venv_dir, shell)


# --- workspace-cleanup ---------------------------------------------------------------------------

SERVER = """
import sys, time
from pytriton.triton import Triton, TritonConfig
http, grpc, metrics = map(int, sys.argv[1:4])
t = Triton(config=TritonConfig(http_address="127.0.0.1", http_port=http, grpc_address="127.0.0.1", grpc_port=grpc,
                               metrics_address="127.0.0.1", metrics_port=metrics))
t.run()
print("ready", flush=True)
time.sleep(600)
"""


def _start(python: Path, home: Path, environ: dict[str, str]) -> subprocess.Popen[str]:
    ports = [_dead_port() for _ in range(3)]
    proc = subprocess.Popen([str(python), "-c", SERVER, *map(str, ports)], env=dict(environ, PYTRITON_HOME=str(home)),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # tritonserver's own log shares the stream
        if line.strip() == "ready":
            return proc
    proc.kill()
    proc.wait()
    pytest.fail("a PyTriton server did not start")


def _session_gone(sid: int, timeout: float = 40.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout.split():
            return
        time.sleep(0.3)


@pytest.fixture
def workspaces(layered_venv, clean_environ: dict[str, str], tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], Path]]:
    venv_dir = layered_venv("venv")
    environ = venv_activated(venv_dir, clean_environ)
    environ["LD_LIBRARY_PATH"] = sysconfig.get_config_var("LIBDIR")  # the stub's own libpython (this host)
    # Short: PyTriton's sockets live under it (a pytest tmp_path is too long for AF_UNIX).
    home = Path(tempfile.mkdtemp(prefix="tdws", dir="/tmp"))
    killed = [_start(venv_dir / "bin" / "python", home, environ) for _ in range(2)]
    for proc in killed:
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup: the workspace stays; tritonserver dies by PDEATHSIG
        proc.wait()
        _session_gone(proc.pid)
    hour_ago = time.time() - 3600  # past the grace that keeps a just-created workspace for a starting server
    for path in home.iterdir():
        os.utime(path, (hour_ago, hour_ago))
    live = _start(venv_dir / "bin" / "python", home, environ)
    try:
        yield venv_dir, dict(environ, PYTRITON_HOME=str(home)), home
    finally:
        stop_group(live)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_workspace_cleanup_through_the_cli(workspaces) -> None:
    _venv_dir, environ, home = workspaces
    names = sorted(p.name for p in home.iterdir())
    assert len(names) == 3
    (finding,) = by_id(check_json(Path(environ["VIRTUAL_ENV"]) / "bin" / "python", environ), "stale-workspaces")
    stale = sorted(w["path"] for w in finding["evidence"]["stale"])
    (live,) = [w["path"] for w in finding["evidence"]["live"]]
    assert len(stale) == 2 and live not in stale

    dry = tritondoctor("fix", "--dry-run", environ=environ)
    assert dry.returncode == 0, dry.stderr
    assert "not undoable" in " ".join(dry.stdout.split())  # the note, however the terminal wraps it
    removals = [line for line in dry.stdout.splitlines() if "$ rm -rf -- " in line]
    assert len(removals) == 2 and not any(live in line for line in removals), dry.stdout
    for path in stale:  # commands are never wrapped: path, size and age on one line
        (line,) = [line for line in removals if path in line]
        assert "MiB, stale for" in line
    assert live in dry.stdout  # named as kept

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", environ=environ)
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout)
    plan = _plan(result, "workspace-cleanup")
    assert sorted(c["argv"][-1] for c in plan["commands"]) == stale
    assert all("MiB" in c["description"] for c in plan["commands"])
    assert any("not undoable" in n for n in plan["notes"])
    assert "workspace-cleanup" in result["applied"]
    assert sorted(str(p) for p in home.iterdir()) == [live]
    (after,) = by_id(check_json(Path(environ["VIRTUAL_ENV"]) / "bin" / "python", environ), "stale-workspaces")
    assert after["status"] == "ok" and [w["path"] for w in after["evidence"]["live"]] == [live]
    # fix's own re-check must see the same: it derives the snapshot under the new environment,
    # and nothing in the environment changed, so it must look at PYTRITON_HOME again (the fix
    # declares the facts it changes on the disk).
    assert result["recheck"]["statuses"].get("stale-workspaces") == "ok", result["recheck"]
    assert proc.returncode == 0 and result["recheck"]["ok"], proc.stderr
