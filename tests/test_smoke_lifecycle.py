"""How a smoke run ends when it is not allowed to finish, and what it leaves: nothing.

`python -m tritondoctor smoke` is started for real and killed with SIGKILL at several points
(starting, server starting, serving, stopping): its supervisor must end the whole tree and
remove the run's files. When the supervisor is killed too, the next run must clean up. Ctrl-C
and SIGTERM end with 130 / 143 and the JSON object saying so. A user's PYTRITON_HOME is used
(a read-only one makes smoke fail naming the workspace) and left as it was found.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest
from fixkit import mounted_tmpfs

from tritondoctor.smoke import leftovers, run_smoke
from tritondoctor.smoke.procs import port_is_free

SCRIPT_NAME = "tritondoctor_smoke_model.py"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def target_python(pytriton_venv: Path) -> str:
    return str(pytriton_venv / "bin" / "python")


@pytest.fixture
def fixed_env(clean_environ: dict[str, str], target_python: str) -> dict[str, str]:
    """An environment in which the target passes (its own libpython first on the loader path)."""
    code = "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"
    libdir = subprocess.run([target_python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    env = dict(clean_environ)
    env["LD_LIBRARY_PATH"] = libdir
    env.pop("PYTRITON_HOME", None)
    return env


class RunRecorder(threading.Thread):
    """Everything below `root` while it runs: processes, the run's marker, ports, directory."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.procs: dict[tuple[int, float], psutil.Process] = {}
        self.tokens: set[str] = set()
        self.ports: dict[str, int] = {}
        self.script_pids: set[int] = set()
        self.model_names: set[str] = set()
        self.cmdlines: dict[tuple[int, float], list[str]] = {}
        self.listening = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                children = psutil.Process(self.root).children(recursive=True)
            except psutil.Error:
                children = []
            for proc in children:
                try:
                    self._look(proc)
                except psutil.Error:
                    continue
            time.sleep(0.02)

    def _look(self, proc: psutil.Process) -> None:
        key = (proc.pid, proc.create_time())
        self.procs.setdefault(key, proc)  # looked at again each time: a fork becomes what it execs
        token = proc.environ().get(leftovers.MARKER_ENV)
        if token:
            self.tokens.add(token)
        cmdline = proc.cmdline()
        if any(arg.endswith(SCRIPT_NAME) for arg in cmdline):
            self.script_pids.add(proc.pid)
            self.model_names.add(json.loads(cmdline[-1])["model_name"])
        if proc.name() == "tritonserver" and cmdline:
            self.cmdlines[key] = cmdline
            self.ports = {p: int(cmdline[cmdline.index(f"--{p}-port") + 1]) for p in ("http", "grpc", "metrics")}
            if any(c.status == psutil.CONN_LISTEN for c in proc.net_connections("tcp")):
                self.listening.set()

    def stop(self) -> None:
        self.done.set()
        self.join()


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "(gone)"


def what_is_left(rec: RunRecorder, runner_pid: int) -> list[str]:
    """Anything of the run still there: processes, ports, segments, model folders, directories."""
    left = [f"process {p.pid} {_name(p)}" for p in list(rec.procs.values()) if alive(p)]
    left += [f"process {pid} carrying the marker" for token in rec.tokens for pid in leftovers.carrying(token)]
    left += [f"{name} port {port}" for name, port in rec.ports.items() if not port_is_free(port)]
    for pid in rec.script_pids:
        left += glob.glob(f"/dev/shm/pytrtion{pid}-*")
    for name in rec.model_names:
        left += [d for d in glob.glob("/tmp/folder??????") if _model_folder_of(d, name)]
    for workdir in leftovers.run_dirs():
        record = leftovers.read_json(os.path.join(workdir, leftovers.RUN_FILE)) or {}
        if (record.get("runner") or {}).get("pid") == runner_pid or record.get("token") in rec.tokens:
            left.append(workdir)
    return left


def _model_folder_of(directory: str, name: str) -> bool:
    try:
        return Path(directory, "config.pbtxt").read_text().startswith(f'name: "{name}"')
    except OSError:
        return False


def wait_until_clean(rec: RunRecorder, runner_pid: int, within: float) -> list[str]:
    deadline = time.monotonic() + within
    while True:
        left = what_is_left(rec, runner_pid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def start_smoke(python: str, env: dict[str, str], *extra: str) -> subprocess.Popen:
    # A session of its own, like a shell job: Ctrl-C goes to the whole foreground group.
    return subprocess.Popen([sys.executable, "-m", "tritondoctor", "smoke", "--python", python, *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@pytest.fixture
def smoke_runs() -> Iterator[list[subprocess.Popen]]:
    """Runs started by a test; any still running at its end is killed (its supervisor cleans up)."""
    runs: list[subprocess.Popen] = []
    yield runs
    for proc in runs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# --- without a server ----------------------------------------------------------------------------


def test_identity_tells_a_reused_pid(tmp_path: Path) -> None:
    me = leftovers.identity(os.getpid())
    assert leftovers.is_alive(me)
    assert not leftovers.is_alive({"pid": os.getpid(), "start": me["start"] + 1})
    child = subprocess.Popen(["true"])
    child.wait()
    assert not leftovers.is_alive(leftovers.identity(child.pid)) and not leftovers.is_alive(None)


def _fake_run(base: Path, runner: dict, token: str = "f" * 32) -> Path:
    workdir = base / f"{leftovers.PREFIX}fake"
    workdir.mkdir()
    leftovers.write_json(str(workdir / leftovers.RUN_FILE), {"token": token, "runner": runner, "model_name": "tdsmoke_ffffff",
                                                            "home": None, "home_created": []})
    return workdir


def test_a_live_run_is_never_touched(tmp_path: Path) -> None:
    workdir = _fake_run(tmp_path, leftovers.identity(os.getpid()))
    assert not leftovers.abandoned(str(workdir))


def test_a_dead_run_is_removed_with_only_its_own_files(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    home = tmp_path / "home"
    (home / "workspace_theirs").mkdir(parents=True)
    ours = home / "workspace_ours"
    ours.mkdir()
    workdir = _fake_run(tmp_path, leftovers.identity(child.pid))
    record = leftovers.read_json(str(workdir / leftovers.RUN_FILE)) or {}
    record.update(home=str(home), home_created=[str(home / "created")])
    leftovers.write_json(str(workdir / leftovers.RUN_FILE), record)
    (home / "created").mkdir()
    (workdir / leftovers.WORKSPACE_FILE).write_text(str(ours))
    assert leftovers.abandoned(str(workdir))
    leftovers.clean_abandoned(str(workdir))
    assert not workdir.exists() and not ours.exists() and not (home / "created").exists()
    assert (home / "workspace_theirs").is_dir()


def test_a_dead_runs_processes_are_killed_by_their_marker_only(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    token, other = "a" * 32, "b" * 32
    workdir = _fake_run(tmp_path, leftovers.identity(child.pid), token=token)
    ours = subprocess.Popen(["sleep", "60"], env={leftovers.MARKER_ENV: token})
    theirs = subprocess.Popen(["sleep", "60"], env={leftovers.MARKER_ENV: other})
    try:
        time.sleep(0.1)  # until both have exec'd: the marker is read from /proc/<pid>/environ
        leftovers.clean_abandoned(str(workdir))
        assert ours.wait(timeout=5) == -signal.SIGKILL
        assert theirs.poll() is None
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()


def test_an_unrecorded_directory_is_kept_while_young(tmp_path: Path) -> None:
    young = tmp_path / f"{leftovers.PREFIX}young"
    young.mkdir()
    assert not leftovers.abandoned(str(young))
    old = time.time() - leftovers.UNRECORDED_AGE_S - 60
    os.utime(young, (old, old))
    assert leftovers.abandoned(str(young))


# --- with a real server ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("after, user_home", [(0.5, False), (2.0, False), (4.0, True), (7.0, False)],
                         ids=["0.5s", "2s", "4s-user-home", "7s"])
def test_sigkill_leaves_nothing(target_python: str, fixed_env: dict[str, str], smoke_runs: list, short_dir: Path,
                                after: float, user_home: bool) -> None:
    env = dict(fixed_env, PYTRITON_HOME=str(short_dir / "home")) if user_home else fixed_env
    runner = start_smoke(target_python, env, "--json")
    smoke_runs.append(runner)
    rec = RunRecorder(runner.pid)
    rec.start()
    time.sleep(after)
    runner.kill()
    runner.wait()
    rec.stop()
    if after >= 2.0:
        assert rec.tokens, "the model script never started: nothing was tested"
    if after >= 7.0:
        assert rec.ports, "tritonserver never started: nothing was tested"
    if user_home and rec.cmdlines:  # the server ran from a workspace in the user's PYTRITON_HOME
        assert any(str(short_dir / "home" / "workspace_") in " ".join(c) for c in rec.cmdlines.values())
    left = wait_until_clean(rec, runner.pid, within=20.0)  # generous: a loaded 2-core CI machine
    assert left == [], f"after SIGKILL at {after} s: {left}"
    assert list(short_dir.iterdir()) == []  # the user's PYTRITON_HOME too, as it was found


@pytest.mark.slow
def test_next_run_cleans_what_a_killed_supervisor_left(target_python: str, fixed_env: dict[str, str],
                                                        smoke_runs: list) -> None:
    runner = start_smoke(target_python, fixed_env, "--json")
    smoke_runs.append(runner)
    rec = RunRecorder(runner.pid)
    rec.start()
    assert rec.listening.wait(60), "tritonserver never listened"
    tree = [psutil.Process(runner.pid)] + psutil.Process(runner.pid).children(recursive=True)
    top = [p for p in tree if p.pid == runner.pid or p.pid in rec.script_pids or "supervisor.py" in " ".join(p.cmdline())]
    # SIGKILL the runner, the supervisor and the model script together (stopped first, so that
    # none reacts to another's death): nobody of the run is left to clean up. (Freezing the
    # server too would not keep it: a stopped process in a newly orphaned process group gets
    # SIGHUP from the kernel. It stops by PyTriton's parent-death signal, in its own time.)
    for proc in top:
        proc.suspend()
    for proc in top:
        proc.kill()
    runner.wait()
    rec.stop()
    left = what_is_left(rec, runner.pid)
    assert left, "nothing left to clean: the test tests nothing"
    # The next run: one that ends at once (its "interpreter" runs no model script) is enough.
    nxt = subprocess.run([sys.executable, "-m", "tritondoctor", "smoke", "--python", "/bin/true", "--timeout", "20"],
                         env=fixed_env, capture_output=True, text=True, timeout=60)
    assert nxt.returncode == 1, nxt.stderr
    assert wait_until_clean(rec, runner.pid, within=15.0) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupt_says_so_and_leaves_nothing(target_python: str, fixed_env: dict[str, str], smoke_runs: list,
                                              sig: signal.Signals, status: int) -> None:
    runner = start_smoke(target_python, fixed_env, "--json")
    smoke_runs.append(runner)
    rec = RunRecorder(runner.pid)
    rec.start()
    assert rec.listening.wait(60), "tritonserver never listened"
    time.sleep(0.5)
    if sig == signal.SIGINT:
        os.killpg(runner.pid, sig)  # Ctrl-C: the terminal signals the whole foreground group
    else:
        runner.send_signal(sig)
    out, err = runner.communicate(timeout=30)
    rec.stop()
    assert what_is_left(rec, runner.pid) == []
    assert runner.returncode == status, err.decode()[-2000:]
    answer = json.loads(out.decode())
    assert answer == {"interrupted": True, "signal": sig.name, "exit_status": status}


# --- the user's PYTRITON_HOME --------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Under /tmp: pytest's own directories are too long for PyTriton's Unix sockets."""
    path = Path(tempfile.mkdtemp(prefix="tdh", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def read_only_dir(short_dir: Path) -> Iterator[Path]:
    """A read-only file system (root ignores a directory's mode bits, not a read-only mount)."""
    path = short_dir / "ro-home"
    with mounted_tmpfs(path, "ro,size=1m"):
        yield path


@pytest.mark.slow
def test_read_only_pytriton_home_fails_naming_the_workspace(target_python: str, fixed_env: dict[str, str],
                                                            read_only_dir: Path) -> None:
    env = dict(fixed_env, PYTRITON_HOME=str(read_only_dir))
    result = run_smoke(target_python, env, timeout=60)
    assert not result.passed
    errors = [f for f in result.findings if f.status.value == "error"]
    assert errors and "workspace" in errors[0].title and str(read_only_dir) in errors[0].title, [f.title for f in errors]
    assert "Read-only file system" in errors[0].title
    assert errors[0].id == "workspace" and errors[0].fix is not None and errors[0].fix.id == "pytriton-home"


@pytest.mark.slow
def test_user_pytriton_home_is_used_and_left_as_found(target_python: str, fixed_env: dict[str, str],
                                                      short_dir: Path) -> None:
    home = short_dir / "user-cache" / "pytriton"  # does not exist yet: PyTriton creates it
    env = dict(fixed_env, PYTRITON_HOME=str(home))
    rec = RunRecorder(os.getpid())
    rec.start()
    try:
        result = run_smoke(target_python, env, timeout=120)
    finally:
        rec.stop()
    assert result.passed, [f.title for f in result.findings]
    assert any(str(home / "workspace_") in " ".join(c) for c in rec.cmdlines.values()), "tritonserver did not run from the user's PYTRITON_HOME"
    assert list(short_dir.iterdir()) == []
