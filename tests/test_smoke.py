"""`tritondoctor smoke` end to end: a real tritonserver from a real nvidia-pytriton in a fresh venv.

The key case is this machine's bug: the venv's Python (pyenv 3.11.7, its own shared libpython)
makes PyTriton's stub load Debian's libpython3.11 (3.11.2) from the loader cache; the smoke test
must fail fast naming `libpython`, and pass once the interpreter's LIBDIR is on LD_LIBRARY_PATH.
After every ending (pass, fail, timeout, SIGINT, a crashed server) no tritonserver or stub of the
run may be left, its ports must be free and its scratch files gone.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from tritondoctor import ldcache
from tritondoctor.smoke import EXIT_INTERRUPTED, EXIT_USAGE, SmokeUsageError, run_smoke
from tritondoctor.smoke.model_script import DeviceFacts, choose_device, gather_device_facts, nvidia_device_present
from tritondoctor.smoke.procs import free_ports, port_is_free
from tritondoctor.smoke.runner import SmokeOptions, remove_model_folders, run

SERVER_NAMES = ("tritonserver", "triton_python_backend_stub")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def target(pytriton_venv: Path) -> dict[str, str]:
    """The venv's interpreter and facts about it, read by running it."""
    python = str(pytriton_venv / "bin" / "python")
    code = "import sys, sysconfig; print(sysconfig.get_config_var('LIBDIR')); print(sysconfig.get_config_var('INSTSONAME') or ''); print('%d.%d' % sys.version_info[:2])"
    libdir, soname, minor = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")[:3]
    return {"python": python, "libdir": libdir, "soname": soname, "minor": minor}


def cache_resolves_elsewhere(soname: str, own_dir: str) -> bool:
    """Whether the loader cache gives `soname` from another directory than the interpreter's."""
    cache = ldcache.load()
    found = cache.lookup(soname, platform.machine(), ()) if cache and soname else None
    if not found:
        return False
    own = os.path.join(own_dir, soname)
    return os.path.exists(own) and not os.path.samefile(found, own)


@pytest.fixture
def fixed_env(clean_environ: dict[str, str], target: dict[str, str]) -> dict[str, str]:
    env = dict(clean_environ)
    env["LD_LIBRARY_PATH"] = target["libdir"]
    return env


class TreeWatch(threading.Thread):
    """Records every tritonserver / stub below `root` while a run is in progress."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.seen: dict[tuple[int, float], psutil.Process] = {}
        self.seen_names: set[str] = set()
        self.cmdlines: list[list[str]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                children = psutil.Process(self.root).children(recursive=True)
            except psutil.Error:
                children = []
            for proc in children:
                try:
                    key = (proc.pid, proc.create_time())
                    if key in self.seen:
                        continue
                    name = proc.name()
                    if name in SERVER_NAMES:
                        cmdline = proc.cmdline()  # empty for a moment around exec: retry then
                        if not cmdline:
                            continue
                        self.seen[key] = proc
                        self.seen_names.add(name)
                        self.cmdlines.append(cmdline)
                except psutil.Error:
                    continue
            time.sleep(0.02)

    def names(self) -> set[str]:
        return set(self.seen_names)

    def leftovers(self) -> list[str]:
        out = []
        for proc in self.seen.values():
            try:
                if proc.is_running():  # a zombie counts: it was not reaped
                    out.append(f"{proc.name()} {proc.pid} {proc.status()}")
            except psutil.Error:
                continue
        return out

    def scratch_paths(self) -> list[str]:
        """The workspace and the unpacked model folder the server and stub were given."""
        paths = []
        for cmd in self.cmdlines:
            for arg in cmd:
                if "/workspace_" in arg:
                    paths.append(arg.split("/workspace_")[0])
                if arg.startswith("/tmp/folder"):
                    paths.append(arg.split("/1/")[0])
        return sorted(set(paths))


@pytest.fixture
def watch() -> Iterator[TreeWatch]:
    tree = TreeWatch(os.getpid())
    tree.start()
    yield tree
    tree.done.set()
    tree.join()


def assert_nothing_left(tree: TreeWatch, ports: dict[str, int], script_pid: int | None = None, skip_port: int | None = None) -> None:
    tree.done.set()
    tree.join()
    assert tree.leftovers() == []
    for name, port in ports.items():
        if port != skip_port:
            assert port_is_free(port), f"{name} port {port} still taken"
    for path in tree.scratch_paths():
        assert not os.path.exists(path), f"{path} was not removed"
    if script_pid:
        assert not [p for p in os.listdir("/dev/shm") if p.startswith(f"pytrtion{script_pid}-")]


# --- without a server --------------------------------------------------------------------------


def test_missing_python_is_a_usage_error(clean_environ: dict[str, str]) -> None:
    with pytest.raises(SmokeUsageError, match="no such file"):
        run_smoke("/nonexistent/bin/python", clean_environ)
    assert EXIT_USAGE == 2


def test_bad_timeout_is_a_usage_error(clean_environ: dict[str, str]) -> None:
    with pytest.raises(SmokeUsageError, match="timeout"):
        run_smoke(sys.executable, clean_environ, timeout=0)


def test_directory_is_not_a_python(clean_environ: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(SmokeUsageError, match="not an executable"):
        run_smoke(str(tmp_path), clean_environ)


@pytest.mark.parametrize(
    "facts, device, words",
    [
        (DeviceFacts(prefer_gpu=True, nvidia_device=False), "cpu", "torch is not installed"),
        (DeviceFacts(prefer_gpu=True, nvidia_device=False, torch_version="2.13.0+cpu"), "cpu", "no NVIDIA GPU"),
        (DeviceFacts(prefer_gpu=True, nvidia_device=True, torch_version="2.13.0+cpu"), "cpu", "CPU-only build"),
        (DeviceFacts(True, True, "2.5.1", None, "12.4", cuda_available=False), "cpu", "is_available() is False"),
        (DeviceFacts(True, True, "2.5.1", "libcudnn.so.9: cannot open", None), "cpu", "failed to import"),
        (DeviceFacts(True, True, "2.5.1", None, "12.4", True, "NVIDIA H100"), "cuda", "NVIDIA H100"),
        (DeviceFacts(False, True, "2.5.1", None, "12.4", True, "NVIDIA H100"), "cpu", "CPU requested"),
    ],
)
def test_device_choice(facts: DeviceFacts, device: str, words: str) -> None:
    chosen, reason = choose_device(facts)
    assert chosen == device and words in reason


def test_device_facts_of_this_host() -> None:
    facts = gather_device_facts(prefer_gpu=True)
    device, reason = choose_device(facts)
    if not nvidia_device_present():
        assert device == "cpu" and reason
    assert facts.nvidia_device == nvidia_device_present()


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(port_is_free(p) for p in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))
        sock.listen()
        assert not port_is_free(ports[0])


def test_remove_model_folders_takes_only_its_own(tmp_path: Path) -> None:
    import tempfile

    ours = tempfile.mkdtemp(prefix="folder", dir="/tmp")
    theirs = tempfile.mkdtemp(prefix="folder", dir="/tmp")
    try:
        Path(ours, "config.pbtxt").write_text('name: "tdsmoke_abc123"\nmax_batch_size: 16\n')
        Path(theirs, "config.pbtxt").write_text('name: "their_model"\n')
        if len(os.path.basename(ours)) == len("folderXXXXXX"):
            assert remove_model_folders("tdsmoke_abc123") == [ours]
            assert not os.path.exists(ours) and os.path.exists(theirs)
    finally:
        for path in (ours, theirs):
            if os.path.exists(path):
                for child in Path(path).iterdir():
                    child.unlink()
                os.rmdir(path)


def test_interpreter_without_pytriton(clean_environ: dict[str, str]) -> None:
    base = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    probe = subprocess.run([base, "-c", "import pytriton"], capture_output=True, env=clean_environ)
    if probe.returncode == 0:
        pytest.skip(f"{base} has pytriton installed")
    started = time.monotonic()
    result = run_smoke(base, clean_environ, timeout=60)
    assert time.monotonic() - started < 20
    assert not result.passed and result.exit_code == 1
    finding = result.findings[0]
    assert finding.id == "pytriton" and "not installed" in finding.title
    assert finding.fix is not None and finding.fix.commands == (f"{base} -m pip install -U nvidia-pytriton",)


# --- with a real server ------------------------------------------------------------------------


@pytest.mark.slow
def test_libpython_mismatch_fails_fast(target: dict[str, str], clean_environ: dict[str, str], watch: TreeWatch) -> None:
    if not cache_resolves_elsewhere(target["soname"], target["libdir"]):
        pytest.skip(f"the loader cache does not give {target['soname']} from another Python here: no mismatch to find")
    started = time.monotonic()
    result = run_smoke(target["python"], clean_environ, timeout=120)
    elapsed = time.monotonic() - started
    assert not result.passed and result.exit_code == 1
    assert elapsed < 30, f"took {elapsed:.1f} s"
    errors = [f for f in result.findings if f.status.value == "error"]
    assert [f.id for f in errors] == ["libpython"], [f.title for f in errors]
    assert result.device == "cpu" and result.device_reason
    fix = errors[0].fix
    assert fix is not None and fix.commands[0] == "tritondoctor fix"
    assert f"export LD_LIBRARY_PATH={target['libdir']}" in fix.commands[1]
    assert "tritonserver" in watch.names()
    assert_nothing_left(watch, result.ports, result.interpreter.get("pid"))
    assert result.log_path and "_recursion_count" in Path(result.log_path).read_text()


@pytest.mark.slow
def test_passes_with_libdir_on_loader_path(target: dict[str, str], fixed_env: dict[str, str], watch: TreeWatch) -> None:
    result = run_smoke(target["python"], fixed_env, timeout=120)
    assert result.passed, [f.title for f in result.findings]
    assert result.exit_code == 0
    t = result.timings
    assert t.server_ready_s and t.model_ready_s and t.first_infer_s and t.grpc_first_infer_s
    assert t.p50_ms and t.p99_ms and t.p99_ms >= t.p50_ms and t.throughput_rps
    assert t.burst_requests == 128 and t.model_calls is not None and t.model_calls <= t.burst_requests
    assert result.max_error is not None and result.max_error < 1e-4
    # Nothing but OK notes: the model's own readiness, the restricted endpoints (refused without
    # the token, answered with it) and, on a GPU-less host, CUDA/NVML/DCGM messages explained as harmless.
    assert {f.id for f in result.findings} <= {"server-log", "model-ready", "server-protocol"}
    assert all(f.status.value in ("ok", "skip") for f in result.findings)
    assert result.model_status and result.model_status["ready"] and result.model_status["status"] == 200
    assert {"tritonserver", "triton_python_backend_stub"} <= watch.names()
    # loopback only, on the ports it chose
    server_cmd = next(c for c in watch.cmdlines if c and c[0].endswith("tritonserver"))
    for flag in ("--http-address", "--grpc-address", "--metrics-address"):
        assert server_cmd[server_cmd.index(flag) + 1] == "127.0.0.1"
    assert server_cmd[server_cmd.index("--http-port") + 1] == str(result.ports["http"])
    assert_nothing_left(watch, result.ports, result.interpreter.get("pid"))
    data = result.to_json()
    assert data["passed"] is True and data["timings"]["p50_ms"] == t.p50_ms


@pytest.mark.slow
def test_timeout_ends_everything(target: dict[str, str], fixed_env: dict[str, str], watch: TreeWatch) -> None:
    # The model's infer function never returns: the request stays in flight inside the server.
    options = SmokeOptions(timeout=12, extra_env={"TRITONDOCTOR_SMOKE_TEST_HOOK": "hang-infer"})
    started = time.monotonic()
    result = run(target["python"], fixed_env, options)
    assert time.monotonic() - started < 12 + 10
    assert not result.passed and result.timed_out
    assert "timeout" in [f.id for f in result.findings]
    assert "tritonserver" in watch.names()
    assert_nothing_left(watch, result.ports, result.interpreter.get("pid"))


@pytest.mark.slow
def test_port_in_use_is_named(target: dict[str, str], fixed_env: dict[str, str], watch: TreeWatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        grpc, metrics = free_ports(2)
        started = time.monotonic()
        result = run(target["python"], fixed_env, SmokeOptions(timeout=60, ports={"http": port, "grpc": grpc, "metrics": metrics}))
        assert time.monotonic() - started < 30  # PyTriton alone would wait 120 s for a dead server
        errors = [f for f in result.findings if f.status.value == "error"]
        assert errors and errors[0].id == "ports" and f"127.0.0.1:{port}" in errors[0].title
        assert_nothing_left(watch, result.ports, result.interpreter.get("pid"), skip_port=port)


@pytest.mark.slow
def test_server_killed_by_sigsegv_is_named(target: dict[str, str], fixed_env: dict[str, str], watch: TreeWatch) -> None:
    def crash_server() -> None:
        me = psutil.Process()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for proc in me.children(recursive=True):
                try:
                    if proc.name() == "tritonserver" and any(c.status == psutil.CONN_LISTEN for c in proc.net_connections("tcp")):
                        proc.send_signal(signal.SIGSEGV)
                        return
                except psutil.Error:
                    continue
            time.sleep(0.05)

    killer = threading.Thread(target=crash_server, daemon=True)
    killer.start()
    result = run_smoke(target["python"], fixed_env, timeout=60)
    killer.join()
    assert not result.passed
    crash = [f for f in result.findings if f.id == "server-signal"]
    assert crash and "SIGSEGV" in crash[0].title and "-11" not in crash[0].title
    assert_nothing_left(watch, result.ports, result.interpreter.get("pid"))


@pytest.mark.slow
def test_stub_for_another_python_is_named(target: dict[str, str], fixed_env: dict[str, str], watch: TreeWatch) -> None:
    other = "3.12" if target["minor"] != "3.12" else "3.11"
    cache = ldcache.load()
    if cache and cache.lookup(f"libpython{other}.so.1.0", platform.machine(), ()):
        pytest.skip(f"libpython{other} is loadable here: that stub would start")
    options = SmokeOptions(timeout=60, extra_env={"TRITONDOCTOR_SMOKE_TEST_HOOK": f"stub={other}"})
    started = time.monotonic()
    result = run(target["python"], fixed_env, options)
    assert time.monotonic() - started < 30  # the server itself would wait for the stub much longer
    errors = [f for f in result.findings if f.status.value == "error"]
    assert [f.id for f in errors] == ["pytriton"] and other in errors[0].title
    assert_nothing_left(watch, result.ports, result.interpreter.get("pid"))


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_model_on_a_gpu(target: dict[str, str], fixed_env: dict[str, str], watch: TreeWatch) -> None:
    if not nvidia_device_present():
        pytest.skip("no NVIDIA GPU on this host (/dev/nvidiactl absent): the cuda path cannot run")
    probe = subprocess.run([target["python"], "-c", "import torch; assert torch.cuda.is_available()"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("the target venv has no torch that sees the GPU")
    result = run_smoke(target["python"], fixed_env, timeout=180)
    assert result.passed, [f.title for f in result.findings]
    assert result.device == "cuda" and "CUDA" in result.device_reason
    assert_nothing_left(watch, result.ports, result.interpreter.get("pid"))


RUNNER = textwrap.dedent(
    """
    import os, sys
    from tritondoctor.smoke import EXIT_INTERRUPTED, run_smoke
    try:
        result = run_smoke(sys.argv[1], dict(os.environ), timeout=90)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(result.exit_code)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_ends_everything(target: dict[str, str], fixed_env: dict[str, str], sig: signal.Signals) -> None:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, target["python"]], env=fixed_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree = TreeWatch(runner.pid)
    tree.start()
    ports: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "tritonserver" not in tree.names():
            time.sleep(0.05)
        assert "tritonserver" in tree.names(), runner.stderr.read().decode() if runner.poll() is not None else "no server"
        server_cmd = next(c for c in tree.cmdlines if c and c[0].endswith("tritonserver"))
        ports = {flag: int(server_cmd[server_cmd.index(f"--{flag}-port") + 1]) for flag in ("http", "grpc", "metrics")}
        time.sleep(1.0)  # mid-startup: the server is up, the model is loading
        runner.send_signal(sig)
        code = runner.wait(timeout=20)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert code == EXIT_INTERRUPTED, runner.stderr.read().decode()[-2000:]
    assert_nothing_left(tree, ports)
