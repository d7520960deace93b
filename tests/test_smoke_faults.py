"""Faults a smoke run shows only as a timeout or an exit code: a dead proxy in front of gRPC, the
OOM killer of a memory cgroup, a model that never became ready. Real runs where the machine
allows (the dead proxy; a 110 MiB cgroup v1 as root), pure functions over real observations."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import pytest

from tritondoctor.findings import Status
from tritondoctor.observation import Interpreter, Observation
from tritondoctor.smoke import diagnose as dx
from tritondoctor.smoke import faults

LOGS = Path(__file__).parent / "data" / "logs"


def observation_from_log(text: str, **more: object) -> Observation:
    """What the runner saw, rebuilt from a smoke log: `[smoke]` lines are its events."""
    events, lines = [], []
    for line in text.splitlines():
        if line.startswith("[smoke] "):
            events.append(event_of(line[len("[smoke] "):]))
        elif not line.startswith("# "):
            lines.append(line)
    hello = next((e for e in events if e.get("ev") == "hello"), None)
    exit_event = next((e for e in events if e.get("ev") == "script-exit"), None)
    return Observation(log="\n".join(lines), events=events, interpreter=Interpreter.from_event(hello),
                       script_exit=exit_event.get("code") if exit_event else None, **more)  # type: ignore[arg-type]


def event_of(text: str) -> dict:
    """One event; the log cuts long ones at 2000 characters: then their leading simple fields."""
    try:
        return json.loads(text)
    except ValueError:
        pairs = re.findall(r'"(\w+)": ("(?:[^"\\]|\\.)*"|-?[\d.]+|null|true|false)(?=[,}])', text)
        return {key: json.loads(value) for key, value in pairs}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the proxy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("environ,variable", [
    ({"https_proxy": "http://p:3128"}, "https_proxy"),
    ({"http_proxy": "p:3128"}, "http_proxy"),
    ({"grpc_proxy": "http://g:1", "https_proxy": "http://p:3128"}, "grpc_proxy"),
    ({"HTTPS_PROXY": "http://p:3128"}, None),  # gRPC core reads the lowercase names only
    ({"https_proxy": "http://p:3128", "no_proxy": "localhost,127.0.0.1"}, None),
    ({"https_proxy": "http://p:3128", "no_grpc_proxy": "*"}, None),
    ({"https_proxy": "http://p:3128", "no_proxy": "example.com"}, "https_proxy"),
    ({"https_proxy": "https://p:3128"}, None),  # a scheme gRPC refuses: it connects directly
])
def test_grpc_proxy_from_environ(environ: dict[str, str], variable: str | None) -> None:
    found = faults.grpc_proxy(environ)
    assert (found.variable if found else None) == variable


def test_preflight_names_a_dead_proxy_at_once() -> None:
    port = closed_port()
    started = time.monotonic()
    finding = faults.proxy_preflight({"https_proxy": f"http://127.0.0.1:{port}"})
    assert time.monotonic() - started < 2
    assert finding is not None and finding.status is Status.ERROR and finding.id == "grpc-proxy"
    assert f"127.0.0.1:{port}" in finding.title and "no_grpc_proxy" in " ".join(finding.fix.commands)


def test_preflight_warns_of_a_live_proxy_and_passes_without_one() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        finding = faults.proxy_preflight({"http_proxy": f"http://127.0.0.1:{port}"})
    assert finding is not None and finding.status is Status.WARN
    assert faults.proxy_preflight({"PATH": "/bin"}) is None


def test_real_observation_of_a_dead_proxy_names_it() -> None:
    """The captured run: HTTP inferred, gRPC waited 30 s, 'Waiting for server to be ready timed out'."""
    obs = observation_from_log((LOGS / "smoke-dead-https-proxy.log").read_text())
    findings = dx.diagnose(obs, environ={"https_proxy": "http://127.0.0.1:9"})
    assert findings[0].id == "grpc-proxy" and "https_proxy" in findings[0].title
    assert not any(f.id == "infer" and f.status is Status.ERROR for f in findings)
    # Without the environment the log alone still points at row 25; with no proxy set, no proxy claim.
    assert not any(f.id == "grpc-proxy" and "https_proxy=" in f.title for f in dx.diagnose(obs, environ={}))


def smoke_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    # This machine's real bug (pyenv 3.11.7 vs Debian's 3.11.2 libpython) would fail the run first.
    env["LD_LIBRARY_PATH"] = str(sysconfig.get_config_var("LIBDIR") or "")
    env.update(extra)
    return env


def run_smoke(env: dict[str, str], log: Path, timeout: int, prefix: list[str] | None = None) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "tritondoctor", "smoke", "--python", sys.executable, "--json",
           "--timeout", str(timeout), "--log", str(log)]
    started = time.monotonic()
    done = subprocess.run((prefix or []) + cmd, env=env, capture_output=True, text=True, timeout=timeout + 60)
    elapsed = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return json.loads(done.stdout), elapsed


@pytest.mark.slow
def test_real_smoke_with_a_dead_proxy(tmp_path: Path) -> None:
    """Before: ~38 s and "Waiting for server to be ready timed out". The runner's pre-flight finds
    that gRPC would go through a proxy nothing answers at and fails at once, naming it (what a run
    that went ahead would show is tested on the captured log of such a run)."""
    port = closed_port()
    env = smoke_env(https_proxy=f"http://127.0.0.1:{port}")
    result, elapsed = run_smoke(env, tmp_path / "smoke.log", timeout=20)
    assert result["passed"] is False
    assert elapsed < 30
    first = result["findings"][0]
    assert first["id"] == "grpc-proxy" and "https_proxy" in first["title"] and str(port) in first["title"], first


# --- the OOM killer -----------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_oom_evidence_v2_and_v1(tmp_path: Path) -> None:
    v2 = tmp_path / "v2" / "user.slice" / "job"
    write(v2 / "memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n")
    write(v2 / "memory.max", "115343360\n")
    found = faults.oom_evidence(str(v2))
    assert found is not None and (found.version, found.oom_kills, found.limit_bytes) == (2, 1, 115343360)
    v1 = tmp_path / "v1" / "memory" / "job"
    write(v1 / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    write(v1 / "memory.limit_in_bytes", "9223372036854771712\n")
    write(v1 / "memory.failcnt", "77\n")
    write(v1.parent / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    write(v1.parent / "memory.limit_in_bytes", "536870912\n")
    found = faults.oom_evidence(str(v1))
    assert found is not None and (found.version, found.oom_kills, found.failcnt) == (1, 3, 77)
    assert found.limit_bytes == 536870912  # the parent's limit is the one that bites
    assert faults.oom_since(found, found) is None
    assert faults.oom_evidence(str(tmp_path / "nothing")) is None


def test_memory_cgroup_dir_of_a_pid(tmp_path: Path) -> None:
    write(tmp_path / "proc" / "7" / "cgroup", "5:devices:/\n4:memory:/docker/abc\n0::/\n")
    assert faults.memory_cgroup_dir(7, str(tmp_path / "proc"), "/sys/fs/cgroup") == "/sys/fs/cgroup/memory/docker/abc"
    write(tmp_path / "proc" / "8" / "cgroup", "0::/user.slice/run.scope\n")
    assert faults.memory_cgroup_dir(8, str(tmp_path / "proc"), "/sys/fs/cgroup") == "/sys/fs/cgroup/user.slice/run.scope"


def make_memory_cgroup(limit: str) -> Path:
    root = Path("/sys/fs/cgroup/memory")
    if not (root / "memory.limit_in_bytes").exists():
        pytest.skip("no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory")
    path = root / f"tritondoctor-test-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(limit)
        if (path / "memory.memsw.limit_in_bytes").exists():  # no swapping around the limit
            (path / "memory.memsw.limit_in_bytes").write_text(limit)
    except OSError as exc:
        if path.exists():
            path.rmdir()
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    return path


def remove_cgroup(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.1)  # its last processes are still exiting
    raise AssertionError(f"could not remove {path}: {(path / 'cgroup.procs').read_text()}")


@pytest.mark.slow
def test_real_smoke_in_a_small_memory_cgroup(tmp_path: Path) -> None:
    log = tmp_path / "smoke.log"
    for _attempt in range(3):  # the kernel decides when to kill: rarely a run stays just under the limit
        cgroup = make_memory_cgroup("110M")
        try:
            before = faults.oom_evidence(str(cgroup))
            enter = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh"]
            result, _ = run_smoke(smoke_env(), log, timeout=60, prefix=enter)
            after = faults.oom_evidence(str(cgroup))
        finally:
            remove_cgroup(cgroup)
        oom = faults.oom_since(before, after)
        if oom is not None:
            break
    assert result["passed"] is False
    # The runner reads its own cgroup: the report itself names the kill and the limit.
    assert result["findings"][0]["id"] == "memory-limit" and "110 MiB" in result["findings"][0]["title"]
    assert oom is not None and oom.oom_kills >= 1 and oom.limit_bytes == 110 * 1024 * 1024
    obs = observation_from_log(log.read_text())
    findings = dx.diagnose(obs, oom=oom)
    assert findings[0].id == "memory-limit" and "OOM killer" in findings[0].title and "110 MiB" in findings[0].title
    assert not any("ended before finishing" in f.title for f in findings)
    # Without the cgroup's counters the bare exit code at least points at the OOM killer.
    bare = dx.diagnose(obs)
    assert any("-9" in f.title and f.fix is not None and "out of memory" in " ".join(f.fix.commands) for f in bare)


# --- model readiness ----------------------------------------------------------------------------


def test_model_states_per_model() -> None:
    log = ('I0301 model_lifecycle.cc:472] "loading: a:1"\nI0301 model_lifecycle.cc:472] "loading: b:1"\n'
           "I0301 model_lifecycle.cc:838] \"successfully loaded 'a'\"\n")
    assert faults.model_states(log) == {"a": "READY", "b": "LOADING"}


def test_server_ready_model_not_is_named() -> None:
    events = [{"ev": "phase", "name": "server-ready"}]
    obs = Observation(log='I0301 model_lifecycle.cc:472] "loading: tdsmoke_1:1"\n', events=events, timed_out=True,
                      timeout_s=30)
    findings = dx.diagnose(obs)
    assert findings[0].id == "model-ready" and "tdsmoke_1 LOADING" in findings[0].title
    assert not any(f.id == "timeout" for f in findings)
    ready = Observation(events=events + [{"ev": "phase", "name": "model-ready"}], timed_out=True, timeout_s=30)
    assert not any(f.id == "model-ready" for f in dx.diagnose(ready))


def test_model_ready_probe_goes_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
    assert faults.model_ready(closed_port(), "m", timeout=1) is None  # nothing there, and no proxy detour
