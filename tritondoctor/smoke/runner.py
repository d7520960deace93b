"""Run the smoke model in the target interpreter and watch it from tritondoctor's own process.

The model script runs as `python <copy of model_script.py> <config json>` in a temporary run
directory that also holds PYTRITON_HOME (unless the user set one: then theirs, as their own
PyTriton would use it) and TMPDIR, with the caller's environment. Its parent is the run's
supervisor (smoke/supervisor.py), which owns the whole process tree and ends it even when this
process is killed with SIGKILL. The script reports phases and results as JSON lines on a pipe;
its stdout/stderr (which carry tritonserver's and the stub's log) go to the log file. The run
ends when the script is done, soon after it reports a failure, when the server dies, at the
overall timeout, or on Ctrl-C/SIGTERM; then every process it started is ended and reaped and
what it left is removed. A run that was killed before it could do that is cleaned up by its
supervisor or, failing that, by the next run (leftovers.py).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tritondoctor.cache import user_cache_base
from tritondoctor.findings import Finding, Status, worst
from tritondoctor.observation import Interpreter, Observation
from tritondoctor.smoke import diagnose as dx
from tritondoctor.smoke import faults, leftovers, model_script, procs, supervisor
from tritondoctor.smoke.leftovers import MARKER_ENV, remove_model_folders  # noqa: F401 - importable from here
from tritondoctor.smoke.presence import ServerPresence, describe
from tritondoctor.smoke.procs import (
    ProcessTree,
    child_subreaper,
    free_ports,
    port_is_free,
)
from tritondoctor.smoke.streams import RunStreams

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_LOG_KEEP = 20


class SmokeUsageError(Exception):
    """The smoke test cannot be run as asked (exit code 2); the message is one line for the user."""


@dataclass
class SmokeTimings:
    server_ready_s: float | None = None  # tritonserver started until it answered ready
    model_ready_s: float | None = None  # bind: model load in the server until usable
    first_infer_s: float | None = None  # first HTTP request, client creation included
    grpc_first_infer_s: float | None = None
    p50_ms: float | None = None  # over the concurrent burst (HTTP, dynamic batching on)
    p99_ms: float | None = None
    throughput_rps: float | None = None
    burst_requests: int | None = None
    burst_concurrency: int | None = None
    model_calls: int | None = None  # how many batches served the burst: fewer than requests = batching
    max_batch: int | None = None
    stop_s: float | None = None
    total_s: float | None = None  # the whole smoke test, cleanup included

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SmokeResult:
    passed: bool
    device: str  # "cuda", "cpu", or "" when the script never got that far
    device_reason: str
    timings: SmokeTimings
    findings: list[Finding]
    log_path: str | None
    python: str
    ports: dict[str, int] = field(default_factory=dict)
    interpreter: dict[str, Any] = field(default_factory=dict)
    max_error: float | None = None
    timed_out: bool = False
    leftovers: list[str] = field(default_factory=list)  # processes that could not be ended (should be empty)
    model_status: dict[str, Any] | None = None  # GET /v2/models/<model>/ready after binding (the script's event)
    endpoints: dict[str, Any] | None = None  # the restricted endpoints without and with the token

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_FAIL

    @property
    def status(self) -> Status:
        return Status.OK if self.passed else Status.ERROR

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "exit_code": self.exit_code,
            "device": self.device,
            "device_reason": self.device_reason,
            "python": self.python,
            "interpreter": self.interpreter,
            "ports": self.ports,
            "timings": self.timings.to_json(),
            "max_error": self.max_error,
            "timed_out": self.timed_out,
            "findings": [f.to_json() | {"area": f.area} for f in self.findings],
            "worst": worst(self.findings).value,
            "log_path": self.log_path,
            "leftovers": self.leftovers,
            "model_status": self.model_status,
            "endpoints": self.endpoints,
        }


@dataclass
class SmokeOptions:
    timeout: float = 120.0
    verbose: bool = False
    log_path: str | None = None
    prefer_gpu: bool = True
    ports: dict[str, int] | None = None  # None: pick free ones
    burst_requests: int = 128
    burst_concurrency: int = 8
    # After the script reports, how long it may take to stop PyTriton by itself.
    stop_grace: float = 20.0
    error_grace: float = 8.0
    server_exit_grace: float = 3.0
    # A fatal signature in the server log (the stub cannot start, a port is taken...): the load
    # would only time out later, so stop shortly after.
    signature_grace: float = 2.0
    # On timeout or Ctrl-C: SIGINT first (PyTriton stops its server), SIGKILL after this.
    interrupt_grace: float = 3.0
    extra_env: dict[str, str] = field(default_factory=dict)


def run_smoke(
    python: str,
    env: dict[str, str],
    *,
    timeout: float = 120.0,
    verbose: bool = False,
    log_path: str | None = None,
    prefer_gpu: bool = True,
) -> SmokeResult:
    """Bind, serve and infer a small model with PyTriton in the target interpreter.

    Raises SmokeUsageError (exit 2) for a bad `python` or `timeout`; KeyboardInterrupt after
    cleaning up on Ctrl-C or SIGTERM (exit 130). Otherwise returns the result (exit_code 0/1).
    """
    return run(python, env, SmokeOptions(timeout=timeout, verbose=verbose, log_path=log_path, prefer_gpu=prefer_gpu))


def resolve_python(python: str, env: Mapping[str, str]) -> str:
    found = python if os.sep in python else shutil.which(python, path=env.get("PATH"))
    if not found or not os.path.exists(found):
        raise SmokeUsageError(f"{python}: no such file or command")
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise SmokeUsageError(f"{found}: not an executable file")
    return os.path.abspath(found)  # the script runs in the run directory


def run(python: str, env: Mapping[str, str], options: SmokeOptions) -> SmokeResult:
    if not options.timeout or options.timeout <= 0:
        raise SmokeUsageError(f"--timeout must be a positive number of seconds, not {options.timeout}")
    executable = resolve_python(python, env)
    started = time.monotonic()
    preflight = faults.proxy_preflight({**env, **options.extra_env})
    if preflight is not None and preflight.status is Status.ERROR:
        # gRPC would go through a proxy nothing answers at: the run could only time out.
        return SmokeResult(passed=False, device="", device_reason="", timings=SmokeTimings(total_s=0.0),
                           findings=[preflight], log_path=None, python=executable)
    oom_before = faults.oom_evidence(os.getpid())
    cleaned = _sweep_abandoned_runs()
    rundir = _RunDir.create(env, options.extra_env)
    log_path = options.log_path or default_log_path()
    try:
        log = open(log_path, "w", encoding="utf-8", errors="replace")
    except OSError as exc:
        rundir.remove()
        raise SmokeUsageError(f"cannot write the log {log_path}: {exc.strerror or exc}") from None
    ports = options.ports or dict(zip(("http", "grpc", "metrics"), free_ports(3)))
    try:
        with log, child_subreaper(), procs.sigterm_as_interrupt():
            watch = _Watch(executable, rundir, options, ports, log)
            try:
                watch.start(cleaned)
                watch.follow(deadline=started + options.timeout)
            finally:
                with _signals_blocked():
                    watch.cleanup()
            failed = watch.streams.first("launch-failed")
            if failed:
                raise SmokeUsageError(f"{executable}: cannot run it ({failed.get('message')})")
            early = [preflight] if preflight is not None else []
            return _result(watch, executable, options, log_path, started, early, oom_before)
    finally:
        rundir.remove()


def _sweep_abandoned_runs() -> list[str]:
    try:
        return leftovers.sweep_abandoned_runs()
    except OSError:  # someone else's trouble must not fail this run
        return []


def _pytriton_home(value: str) -> str:
    """The directory PyTriton makes of PYTRITON_HOME (pytriton.constants does the same)."""
    return str(Path(os.path.expanduser(os.path.expandvars(value))).resolve().absolute())


@dataclass
class _RunDir:
    """The run's directory, its identity and the environment of its processes; recorded in the
    directory (see leftovers) so that whoever finds the run abandoned can clean up after it."""

    path: str
    token: str
    env: dict[str, str]
    user_home: str | None  # the user's PYTRITON_HOME, honoured; None: ours, inside `path`

    @property
    def model_name(self) -> str:
        return f"tdsmoke_{self.token[:6]}"

    @classmethod
    def create(cls, env: Mapping[str, str], extra_env: Mapping[str, str]) -> _RunDir:
        out = dict(env)
        out.update(extra_env)
        home = out.get("PYTRITON_HOME", "").strip()
        rundir = cls(_make_workdir(), uuid.uuid4().hex, out, _pytriton_home(home) if home else None)
        rundir._record()
        if rundir.user_home is None:
            out["PYTRITON_HOME"] = os.path.join(rundir.path, "h")
            os.makedirs(out["PYTRITON_HOME"])
        else:  # absolute: the script runs in the run directory, the user's PyTriton where they are
            out["PYTRITON_HOME"] = rundir.user_home
        out["TMPDIR"] = os.path.join(rundir.path, "tmp")  # the script's and the stub's temporary files
        os.makedirs(out["TMPDIR"])
        out["PYTHONUNBUFFERED"] = "1"
        out[MARKER_ENV] = rundir.token
        return rundir

    def _record(self) -> None:
        created = leftovers.missing_parents(self.user_home) if self.user_home else []
        leftovers.write_json(os.path.join(self.path, leftovers.RUN_FILE), {
            "token": self.token, "runner": leftovers.identity(os.getpid()), "model_name": self.model_name,
            "home": self.user_home, "home_created": created, "created": time.time()})

    def remove(self) -> None:
        """What the run's processes left (PyTriton cleans up after itself unless killed), then the directory."""
        leftovers.remove_files(self.path, leftovers.read_json(os.path.join(self.path, leftovers.RUN_FILE)),
                               leftovers.read_json(os.path.join(self.path, leftovers.SUPERVISOR_FILE)))


class _Watch:
    """One run of the model script under its supervisor: start it, follow its streams and
    processes, end it."""

    def __init__(self, python: str, rundir: _RunDir, options: SmokeOptions, ports: dict[str, int], log: TextIO) -> None:
        self.python = python
        self.rundir = rundir
        self.options = options
        self.ports = ports
        self.log = log
        graces = {"result": options.stop_grace, "error": options.error_grace,
                  "server-exit": options.server_exit_grace, "interrupted": options.error_grace}
        self.streams = RunStreams(log, options.verbose, graces, options.signature_grace)
        self.timed_out = False
        self.cutoff: tuple[int, int] | None = None
        self.survivors: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.tree: ProcessTree | None = None
        self.presence: ServerPresence | None = None
        self.events_fd = -1

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.streams.events

    def start(self, cleaned: list[str]) -> None:
        script = os.path.join(self.rundir.path, "tritondoctor_smoke_model.py")
        shutil.copyfile(model_script.__file__, script)
        read_fd, write_fd = os.pipe()
        try:
            # -E -s: the supervisor is tritondoctor's own Python and needs only its standard library.
            self.proc = subprocess.Popen(
                [sys.executable, "-E", "-s", supervisor.__file__], cwd=self.rundir.path,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,), start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            raise SmokeUsageError(f"cannot start the smoke test's supervisor ({exc.strerror or exc})") from None
        finally:
            os.close(write_fd)
        self.events_fd = read_fd
        self.tree = ProcessTree(self.proc, (MARKER_ENV, self.rundir.token))
        self.presence = ServerPresence(self.tree)
        config = self._config(self.proc.pid)
        self._header(config, cleaned)
        env = dict(self.rundir.env)
        env[model_script.FD_ENV] = str(write_fd)
        request = {"argv": [self.python, script, json.dumps(config)], "env": env, "workdir": self.rundir.path,
                   "token": self.rundir.token, "events_fd": write_fd, "parent": os.getpid()}
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            pass  # the supervisor died at once: following it finds that out

    def _config(self, parent: int) -> dict[str, Any]:
        return {
            "ports": self.ports,
            "prefer_gpu": self.options.prefer_gpu,
            "burst_requests": self.options.burst_requests,
            "burst_concurrency": self.options.burst_concurrency,
            "parent_pid": parent,
            "model_name": self.rundir.model_name,
            "request_timeout": max(5.0, min(30.0, self.options.timeout / 2)),
        }

    def _header(self, config: dict[str, Any], cleaned: list[str]) -> None:
        env = self.rundir.env
        self.log.write(f"# tritondoctor smoke  {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self.log.write(f"# python: {self.python}\n# ports: {json.dumps(self.ports)}\n")
        self.log.write(f"# LD_LIBRARY_PATH={env.get('LD_LIBRARY_PATH', '(unset)')}\n")
        self.log.write(f"# PYTRITON_HOME={env.get('PYTRITON_HOME')}"
                       + ("" if self.rundir.user_home else " (the smoke test's own)") + "\n")
        for path in cleaned:
            self.log.write(f"# removed what an interrupted earlier smoke run left: {path}\n")
        self.log.write(f"# config: {json.dumps(config)}\n")
        self.log.flush()

    # --- following the run --------------------------------------------------------------

    def script_done(self) -> bool:
        assert self.proc is not None
        return (self.streams.has_event("script-exit") or self.streams.has_event("launch-failed")
                or self.proc.poll() is not None)

    def follow(self, deadline: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None and self.presence is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout.fileno(), selectors.EVENT_READ, "out")
        selector.register(self.events_fd, selectors.EVENT_READ, "events")
        open_streams = 2
        exited_at: float | None = None
        last_poll = 0.0
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    self.timed_out = True
                    # What follows is our own interruption's doing, not a finding.
                    self.cutoff = (len(self.streams.events), len(self.streams.output))
                    return
                end_by = self.streams.end_by
                if end_by is not None and now >= end_by:
                    return
                if exited_at is None and self.script_done():
                    exited_at = now
                if exited_at is not None and (open_streams == 0 or now - exited_at > 1.0):
                    return
                limit = deadline if end_by is None else min(deadline, end_by)
                open_streams -= self._read(selector, max(0.0, min(0.1, limit - now)))
                if now - last_poll >= 0.1:
                    last_poll = now
                    self.presence.poll(now, self.streams.end_by is not None,
                                       lambda: self.streams.end_within(self.options.server_exit_grace))
        finally:
            selector.close()
            self.streams.flush_output()

    def _read(self, selector: selectors.BaseSelector, timeout: float) -> int:
        """Read what is ready; returns how many streams closed."""
        closed = 0
        for key, _mask in selector.select(timeout=timeout):
            data = os.read(key.fd, 65536)
            if not data:
                selector.unregister(key.fd)
                closed += 1
            elif key.data == "out":
                self.streams.on_output(data)
            else:
                self.streams.on_event_bytes(data)
        return closed

    # --- ending it -----------------------------------------------------------------------

    def cleanup(self) -> None:
        if self.proc is None or self.tree is None:
            return
        grace = 0.0 if self.script_done() else self.options.interrupt_grace
        survivors = self.tree.end_supervised(grace=grace)
        self.survivors = [describe(p) for p in survivors]
        if self.proc.stdout is not None:
            self.streams.drain(self.proc.stdout.fileno())
            self.proc.stdout.close()
        self.streams.drain(self.events_fd, events=True)
        os.close(self.events_fd)

    def observation(self, log_path: str) -> Observation:
        events, output = self.streams.events, self.streams.output
        if self.cutoff is not None:
            events, output = events[: self.cutoff[0]], output[: self.cutoff[1]]
        exit_event = self.streams.first("script-exit")
        assert self.presence is not None
        return Observation(
            log="".join(output),
            events=events,
            interpreter=Interpreter.from_event(self.streams.first("hello")),
            gpu_present=gpu_present(),
            timed_out=self.timed_out,
            timeout_s=self.options.timeout,
            server_vanished=self.presence.vanished,
            script_exit=exit_event.get("code") if exit_event else None,
            stub_libpython=dict(self.presence.stub_libpython),
            ports=dict(self.ports),
            log_path=log_path,
            shm_free_bytes=_shm_free_bytes(),
        )


def _shm_free_bytes() -> int | None:
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def gpu_present() -> bool:
    return model_script.nvidia_device_present()


def _result(watch: _Watch, python: str, options: SmokeOptions, log_path: str, started: float,
            early: list[Finding], oom_before: "faults.OomEvidence | None") -> SmokeResult:
    obs = watch.observation(log_path)
    oom = faults.oom_since(oom_before, faults.oom_evidence(os.getpid()))
    findings = early + dx.diagnose(obs, environ=watch.rundir.env, oom=oom)
    if watch.survivors:
        findings.append(Finding("smoke", Status.ERROR, "could not end: " + ", ".join(watch.survivors),
                                detail="These processes of the smoke test are still running.", area=dx.AREA))
    busy = [name for name, port in watch.ports.items() if not port_is_free(port)]
    if busy and not watch.survivors and not any(f.id == "ports" for f in findings):
        findings.append(Finding("ports", Status.WARN, "ports still taken after the smoke test: "
                                + ", ".join(f"{n} {watch.ports[n]}" for n in busy), area=dx.AREA))
    timings = _timings(watch.events)
    timings.total_s = round(time.monotonic() - started, 3)
    device = next((e for e in watch.events if e.get("ev") == "device"), {}) or {}
    result = next((e for e in watch.events if e.get("ev") == "result"), None)
    errors = [f for f in findings if f.status is Status.ERROR]
    passed = result is not None and not errors
    max_error = None
    if result:
        values = [c.get("max_error") for c in (result.get("checks") or {}).values()]
        values.append((result.get("burst") or {}).get("max_error"))
        numbers = [v for v in values if isinstance(v, (int, float))]
        max_error = max(numbers) if numbers else None
    hello = next((e for e in watch.events if e.get("ev") == "hello"), {}) or {}
    res = SmokeResult(
        passed=passed,
        device=str(device.get("device") or ""),
        device_reason=str(device.get("reason") or ""),
        timings=timings,
        findings=findings,
        log_path=log_path,
        python=python,
        ports=dict(watch.ports),
        interpreter={k: v for k, v in hello.items() if k not in ("ev", "t")},
        max_error=max_error,
        timed_out=watch.timed_out,
        leftovers=watch.survivors,
        model_status=_event_fields(watch.events, "model-status"),
        endpoints=_event_fields(watch.events, "endpoints"),
    )
    _append_summary(log_path, res)
    return res


def _event_fields(events: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    event = next((e for e in events if e.get("ev") == name), None)
    return None if event is None else {k: v for k, v in event.items() if k not in ("ev", "t")}


def _timings(events: list[dict[str, Any]]) -> SmokeTimings:
    t = SmokeTimings()
    for event in events:
        kind = event.get("ev")
        if kind == "phase":
            name = event.get("name")
            if name == "server-ready":
                t.server_ready_s = event.get("s")
            elif name == "model-ready":
                t.model_ready_s = event.get("s")
            elif name == "stopped":
                t.stop_s = event.get("s")
        elif kind == "infer":
            if event.get("protocol") == "http":
                t.first_infer_s = event.get("s")
            elif event.get("protocol") == "grpc":
                t.grpc_first_infer_s = event.get("s")
        elif kind == "burst":
            t.p50_ms = event.get("p50_ms")
            t.p99_ms = event.get("p99_ms")
            t.throughput_rps = event.get("throughput_rps")
            t.burst_requests = event.get("requests")
            t.burst_concurrency = event.get("concurrency")
            t.model_calls = event.get("model_calls")
            t.max_batch = event.get("max_batch")
    return t


def _append_summary(log_path: str, result: SmokeResult) -> None:
    try:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write("\n# ---- tritondoctor smoke summary ----\n")
            fh.write(f"# passed: {result.passed}\n")
            for finding in result.findings:
                fh.write(f"# [{finding.status.value}] {finding.id}: {finding.title}\n")
    except OSError:
        pass


def _make_workdir() -> str:
    """A short path: PyTriton puts zmq ipc sockets under PYTRITON_HOME, and a socket path may
    not exceed 107 bytes (workspace_XXXXXXXX/<model>_0_0-server.sock takes ~50 of them)."""
    base = tempfile.gettempdir()
    if len(base) > 40 and os.path.isdir("/tmp") and os.access("/tmp", os.W_OK):
        base = "/tmp"
    return tempfile.mkdtemp(prefix=leftovers.PREFIX, dir=base)


def default_log_path() -> str:
    """$XDG_CACHE_HOME/tritondoctor/smoke/smoke-<time>-<pid>.log, keeping the newest few."""
    directory = os.path.join(user_cache_base(), "tritondoctor", "smoke")
    name = f"smoke-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        os.makedirs(directory, exist_ok=True)
        old = sorted(f for f in os.listdir(directory) if f.startswith("smoke-") and f.endswith(".log"))
        for stale in old[: max(0, len(old) - (_LOG_KEEP - 1))]:
            os.unlink(os.path.join(directory, stale))
        return os.path.join(directory, name)
    except OSError:
        return os.path.join(tempfile.gettempdir(), f"tritondoctor-{name}")




@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold Ctrl-C while ending the process tree; it is delivered right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
