"""Runtime-resource checks (ports, workspace, stale-servers, shm) on situations created for real:
listening sockets, mounts (read-only, noexec, a small /dev/shm in a private mount namespace),
processes named like Triton's (running, zombie, orphaned), leftover POSIX shared memory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from multiprocessing import shared_memory
from pathlib import Path
from typing import Iterator

import pytest
from fixkit import mounted_tmpfs
from tritondoctor.checks import ports, shm, stale_servers, workspace

from tritondoctor.facts import runtime as runtime_facts
from tritondoctor.findings import Status
from tritondoctor.snapshot import CheckOptions, Snapshot, take_snapshot


@pytest.fixture
def env() -> dict[str, str]:
    drop = {"LD_LIBRARY_PATH", "LD_PRELOAD", "PYTRITON_HOME"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def snapshot(env: dict[str, str], **options) -> Snapshot:
    return take_snapshot(python=sys.executable, environ=env, options=CheckOptions(**options))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]




# --- ports -------------------------------------------------------------------------------------

@pytest.mark.parametrize("family,address", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::")])
def test_port_in_use_names_its_process(env: dict, family: int, address: str) -> None:
    port = free_port()
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        try:
            listener.bind((address, port))
        except OSError as exc:
            pytest.skip(f"cannot bind {address}: {exc}")
        listener.listen()
        other = free_port()
        snap = snapshot(env, ports=(port, other))
    found = ports.run(snap)
    assert len(found) == 1 and found[0].status is Status.ERROR
    assert f"port {port}" in found[0].title and f"pid {os.getpid()}" in found[0].title
    assert f"kill {os.getpid()}" in found[0].fix.commands
    assert any("TritonConfig(http_port=" in c for c in found[0].fix.commands)
    assert found[0].evidence["error"] == "EADDRINUSE"


def test_default_port_roles_and_free_suggestion() -> None:
    assert ports.free_ports({9000, 9011}) == [9020, 9021, 9022]
    assert ports.ROLES[8001] == ("gRPC", "grpc_port")


def test_free_ports_are_ok(env: dict) -> None:
    chosen = (free_port(), free_port())
    found = ports.run(snapshot(env, ports=chosen))
    assert [f.status for f in found] == [Status.OK]


# --- workspace ---------------------------------------------------------------------------------

@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """pytest's tmp_path alone is ~60 bytes: too long to leave room for PyTriton's sockets."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="td", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_workspace(env: dict, home: str | Path):
    return workspace.run(snapshot(dict(env, PYTRITON_HOME=str(home))))


def test_workspace_default_is_ok(env: dict) -> None:
    found = workspace.run(snapshot(env))
    assert [f.status for f in found] == [Status.OK], found
    ws = snapshot(env).runtime.workspace
    if ws.needed_bytes is not None:  # nvidia-pytriton installed in the test interpreter
        assert ws.needed_bytes > 10 * 2**20


def test_workspace_under_a_file(env: dict, short_tmp: Path) -> None:
    (short_tmp / "afile").write_text("not a directory")
    found = run_workspace(env, short_tmp / "afile" / "pytriton")
    assert [f.status for f in found] == [Status.ERROR]
    assert "is a file, not a directory" in found[0].title and str(short_tmp / "afile") in found[0].title
    assert found[0].fix.commands[0].startswith("export PYTRITON_HOME=")


def test_workspace_on_proc_is_not_writable_even_for_root(env: dict) -> None:
    found = run_workspace(env, "/proc/tritondoctor-test/pytriton")
    assert [f.status for f in found] == [Status.ERROR]
    assert "not writable" in found[0].title


def test_workspace_on_a_read_only_mount(env: dict, short_tmp: Path) -> None:
    ro = short_tmp / "ro"
    with mounted_tmpfs(ro, "ro,size=1m"):
        found = run_workspace(env, ro / "pytriton")
        ws = snapshot(dict(env, PYTRITON_HOME=str(ro / "pytriton"))).runtime.workspace
    assert ws.read_only_fs and not ws.writable
    assert [f.status for f in found] == [Status.ERROR]
    assert "read-only file system" in found[0].title
    if os.geteuid() == 0:
        assert "root" in found[0].detail


def test_workspace_on_a_noexec_mount(env: dict, short_tmp: Path) -> None:
    mnt = short_tmp / "noexec"
    with mounted_tmpfs(mnt, "noexec,size=64m"):
        shutil.copy("/bin/true", mnt / "true")
        with pytest.raises(PermissionError):  # the situation is real: nothing executes there
            subprocess.run([str(mnt / "true")], check=True)
        found = run_workspace(env, mnt / "pytriton")
    assert [f.status for f in found] == [Status.ERROR]
    assert "noexec" in found[0].title and str(mnt) in found[0].title
    assert "Permission denied" in found[0].detail


def test_long_pytriton_home_breaks_af_unix(env: dict, short_tmp: Path) -> None:
    base = len(os.fsencode(os.path.realpath(short_tmp))) + 1
    too_long = short_tmp / ("d" * (runtime_facts.AF_UNIX_MAX - base - 20))
    found = run_workspace(env, too_long)
    assert [f.status for f in found] == [Status.ERROR]
    assert "too long for PyTriton's sockets" in found[0].title

    tight = short_tmp / ("t" * (runtime_facts.AF_UNIX_MAX - base - 36 - 10))  # room for 10 characters
    found = run_workspace(env, tight)
    assert [f.status for f in found] == [Status.WARN]
    assert "at most 10 characters" in found[0].title


def test_socket_budget_matches_zeromq_and_af_unix(short_tmp: Path) -> None:
    """The computed budget is exactly where PyTriton's sockets stop working: a model name of
    `budget` characters binds, one more does not (ZeroMQ ipc:// is the strictest)."""
    zmq = pytest.importorskip("zmq")
    home = short_tmp / "h"
    example, budget = runtime_facts.socket_budget(str(home))
    assert budget > 1
    workspace_dir = Path(example).parent
    workspace_dir.mkdir(parents=True)

    def bind(name: str) -> bool:
        path = workspace_dir / f"{name}_0_0-server.sock"
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        try:
            sock.bind(f"ipc://{path}")
            return True
        except zmq.ZMQError:
            return False
        finally:
            sock.close(linger=0)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    assert bind("m" * budget)
    assert not bind("m" * (budget + 1))
    with socket.socket(socket.AF_UNIX) as unix:  # the data/config sockets are shorter: they fit too
        unix.bind(str(workspace_dir / ("m" * budget + "-config.sock")))


# --- stale servers -----------------------------------------------------------------------------

@pytest.fixture
def fake_binaries(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, source in (("tritonserver", "/bin/sleep"), ("triton_python_backend_stub", "/bin/sleep")):
        target = tmp_path / "bin" / name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(source, target)
        out[name] = target
    dead = tmp_path / "dead" / "tritonserver"
    dead.parent.mkdir()
    shutil.copy("/bin/true", dead)
    out["dead"] = dead
    return out


def state_of(pid: int) -> str:
    stat = runtime_facts._read_stat(pid)
    return stat[1] if stat else "?"


def test_running_child_named_tritonserver(env: dict, fake_binaries: dict) -> None:
    child = subprocess.Popen([str(fake_binaries["tritonserver"]), "60"])
    try:
        found = [f for f in stale_servers.run(snapshot(env)) if f.evidence.get("pid") == child.pid]
    finally:
        child.kill()
        child.wait()
    assert len(found) == 1 and found[0].status is Status.OK
    assert f"started by pid {os.getpid()}" in found[0].title


def test_zombie_tritonserver(env: dict, fake_binaries: dict) -> None:
    child = subprocess.Popen([str(fake_binaries["dead"])])
    try:
        deadline = time.monotonic() + 10
        while state_of(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state_of(child.pid) == "Z"
        found = [f for f in stale_servers.run(snapshot(env)) if f.evidence.get("pid") == child.pid]
    finally:
        child.wait()
    assert len(found) == 1 and found[0].status is Status.WARN
    assert "defunct tritonserver" in found[0].title and f"parent pid {os.getpid()}" in found[0].title
    assert found[0].fix.commands == (f"kill {os.getpid()}  # python: only if that process may go",) or \
        found[0].fix.commands[0].startswith(f"kill {os.getpid()}")


@pytest.mark.parametrize("name", ["tritonserver", "triton_python_backend_stub"])
def test_orphaned_server_left_running(env: dict, fake_binaries: dict, name: str) -> None:
    out = subprocess.run(["sh", "-c", f"'{fake_binaries[name]}' 60 >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True)
    pid = int(out.stdout.strip())
    try:
        deadline = time.monotonic() + 5
        while (runtime_facts._read_stat(pid) or ("", "", 0))[2] not in (0, 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        ppid = (runtime_facts._read_stat(pid) or ("", "", -1))[2]
        snap = snapshot(env)
    finally:
        os.kill(pid, signal.SIGKILL)
    server = [s for s in snap.runtime.servers if s.pid == pid]
    assert server and server[0].name == name  # the 15-character comm is restored from argv[0]
    if ppid != 1:
        pytest.skip(f"orphans are re-parented to a live subreaper here (ppid {ppid})")
    found = [f for f in stale_servers.run(snap) if f.evidence.get("pid") == pid]
    assert len(found) == 1 and found[0].status is Status.WARN
    assert "left running without the process that started it" in found[0].title
    assert f"kill -INT {pid}" in found[0].fix.commands


# --- /dev/shm ----------------------------------------------------------------------------------

def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def leftover_segments() -> Iterator[dict[str, str]]:
    names = {
        "dead": f"pytrtion{dead_pid()}-{uuid.uuid4().hex[:8]}{uuid.uuid4()}",
        "alive": f"pytrtion{os.getpid()}-{uuid.uuid4().hex[:8]}1",
        "plain": f"triton_python_backend_shm_region_{uuid.uuid4()}",
    }
    segments = [shared_memory.SharedMemory(name=n, create=True, size=1 << 20) for n in names.values()]
    try:
        yield names
    finally:
        for segment in segments:
            segment.close()
            with contextlib.suppress(FileNotFoundError):
                segment.unlink()


def test_leftover_shared_memory(env: dict, leftover_segments: dict) -> None:
    snap = snapshot(env)
    by_name = {s.name: s for s in snap.runtime.shm.segments}
    assert by_name[leftover_segments["dead"]].creator_alive is False
    assert by_name[leftover_segments["alive"]].creator_alive is True
    found = shm.run(snap)
    stale = [f for f in found if f.fix is not None and f.fix.id == "shm-cleanup"]
    assert len(stale) == 1 and stale[0].status is Status.WARN
    commands = " ".join(stale[0].fix.commands)
    assert f"/dev/shm/{leftover_segments['dead']}" in commands
    assert leftover_segments["alive"] not in commands
    servers = any(s.name == "tritonserver" and not s.zombie for s in snap.runtime.servers)
    assert (leftover_segments["plain"] in commands) is (not servers)


def test_shm_is_ok_here(env: dict) -> None:
    found = shm.run(snapshot(env))
    assert found[0].status is Status.OK, found[0]
    assert "MiB region" in found[0].detail


SHM_PROBE = r"""
import json, sys
from tritondoctor.checks import shm
from tritondoctor.snapshot import take_snapshot
snap = take_snapshot(python=sys.executable)
print(json.dumps([f.to_json() for f in shm.run(snap)]))
"""


@pytest.mark.parametrize("size,status", [("2m", "error"), ("32m", "warn")])
def test_small_dev_shm(size: str, status: str) -> None:
    """A container-sized /dev/shm, mounted in a private mount namespace (the host's stays as is)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    can = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"],
                         capture_output=True, text=True)
    if can.returncode != 0:
        pytest.skip(f"cannot mount in a private mount namespace here: {can.stderr.strip()[:200]}")
    script = f"mount -t tmpfs -o size={size} tmpfs /dev/shm && exec {sys.executable} -c \"$0\""
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, SHM_PROBE], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout.strip().splitlines()[-1])
    assert findings[0]["status"] == status
    assert findings[0]["fix"]["id"] == "shm-size"
    assert findings[0]["evidence"]["total"] == {"2m": 2, "32m": 32}[size] * 2**20


# --- cost --------------------------------------------------------------------------------------

def test_runtime_gather_is_fast(env: dict) -> None:
    snap = snapshot(env)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        facts = runtime_facts.gather(env, snap.options, snap.pytriton, snap.target)
        times.append(time.perf_counter() - start)
    assert not facts.errors
    assert statistics.median(times) < 0.1, times
    facts.to_json()


def test_workspace_follows_the_environment(env: dict, short_tmp: Path) -> None:
    """Snapshot.derive can move the workspace without scanning processes or ports again."""
    from tritondoctor.facts import pytriton as pytriton_facts

    snap = snapshot(env)
    moved_env = dict(env, PYTRITON_HOME=str(short_tmp / "afile" / "pt"))
    (short_tmp / "afile").write_text("")
    install = pytriton_facts.locate(snap.target, moved_env) if snap.target else None
    moved = snap.runtime.for_environ(moved_env, install, snap.target)
    assert moved.workspace.blocker == str(short_tmp / "afile")
    assert moved.ports == snap.runtime.ports and moved.servers == snap.runtime.servers


# --- a port held by the user's own live server -------------------------------------------------

_LISTEN = ("import socket, sys, time\n"
           "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
           "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(); print('up', flush=True); time.sleep(60)\n")


def test_a_port_held_by_a_live_server_is_a_warning_naming_its_owner(env: dict, tmp_path: Path) -> None:
    """A tritonserver whose starter is alive is the user's own server: warn, name the starter and
    tell them to stop it there; never suggest killing the tritonserver child."""
    server = tmp_path / "bin" / "tritonserver"
    server.parent.mkdir()
    server.symlink_to(sys.executable)  # /proc/PID/comm is then "tritonserver"
    port = free_port()
    child = subprocess.Popen([str(server), "-c", _LISTEN, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        found = [f for f in ports.run(snapshot(env, ports=(port,))) if f.evidence.get("port") == port]
    finally:
        child.kill()
        child.wait()
    assert len(found) == 1, found
    finding = found[0]
    assert finding.status is Status.WARN, finding.title
    assert f"started by pid {os.getpid()}" in finding.title
    assert finding.fix is not None and f"kill -INT {os.getpid()}" in finding.fix.commands[0]
    assert not any(f"kill {child.pid}" in c for c in finding.fix.commands)
