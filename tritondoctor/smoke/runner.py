"""Run the smoke model in the target interpreter and watch it from tritondoctor's own process.

The model script runs as `python <copy of model_script.py> <config json>` in a temporary
directory that also holds PYTRITON_HOME and TMPDIR, in its own session, with the caller's
environment. It reports phases and results as JSON lines on a pipe; its stdout/stderr (which
carry tritonserver's and the stub's log) go to the log file. The run ends when the script is
done, soon after it reports a failure, when the server dies, at the overall timeout, or on
Ctrl-C; then every process it started is ended and reaped and the directory removed.
"""

from __future__ import annotations

import codecs
import glob
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
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping, TextIO

from tritondoctor.cache import user_cache_base
from tritondoctor.findings import Finding, Status, worst
from tritondoctor.smoke import diagnose as dx
from tritondoctor.smoke import model_script
from tritondoctor.smoke.procs import ProcessTree, child_subreaper, free_ports, port_is_free

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

MARKER_ENV = "TRITONDOCTOR_SMOKE_RUN"
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
    return found


def run(python: str, env: Mapping[str, str], options: SmokeOptions) -> SmokeResult:
    if not options.timeout or options.timeout <= 0:
        raise SmokeUsageError(f"--timeout must be a positive number of seconds, not {options.timeout}")
    executable = resolve_python(python, env)
    started = time.monotonic()
    workdir = _make_workdir()
    log_path = options.log_path or default_log_path()
    try:
        log = open(log_path, "w", encoding="utf-8", errors="replace")
    except OSError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise SmokeUsageError(f"cannot write the log {log_path}: {exc.strerror or exc}") from None
    ports = options.ports or dict(zip(("http", "grpc", "metrics"), free_ports(3)))
    watch: _Watch | None = None
    try:
        with log, child_subreaper(), _sigterm_as_interrupt():
            watch = _Watch(executable, env, options, workdir, ports, log)
            try:
                watch.start()
                watch.follow(deadline=started + options.timeout)
            finally:
                with _signals_blocked():
                    watch.cleanup()
            return _result(watch, executable, options, log_path, started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Watch:
    """One run of the model script: start it, follow its pipes and processes, end it."""

    def __init__(self, python: str, env: Mapping[str, str], options: SmokeOptions, workdir: str,
                 ports: dict[str, int], log: TextIO) -> None:
        self.python = python
        self.options = options
        self.workdir = workdir
        self.ports = ports
        self.log = log
        self.token = uuid.uuid4().hex
        self.events: list[dict[str, Any]] = []
        self.output: list[str] = []
        self.output_size = 0
        self.timed_out = False
        self.server_vanished = False
        self.end_by: float | None = None  # set once the outcome is known: stop following then
        self.cutoff: tuple[int, int] | None = None
        self.model_name = f"tdsmoke_{self.token[:6]}"
        self.stub_libpython: dict[str, str | None] = {}
        self.survivors: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.tree: ProcessTree | None = None
        self._env = self._environment(env)
        self._line_partial = ""
        self._log_line_open = False
        self._event_partial = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._server_seen_at: float | None = None
        self._server_gone_at: float | None = None
        self._stubs_read: set[int] = set()

    def _environment(self, env: Mapping[str, str]) -> dict[str, str]:
        home = os.path.join(self.workdir, "h")
        tmp = os.path.join(self.workdir, "tmp")
        os.makedirs(home)
        os.makedirs(tmp)
        out = dict(env)
        out.update(self.options.extra_env)
        out["PYTRITON_HOME"] = home
        out["TMPDIR"] = tmp  # Python's temporary files in the script and the stub stay in our directory
        out["PYTHONUNBUFFERED"] = "1"
        out[MARKER_ENV] = self.token
        return out

    def start(self) -> None:
        script = os.path.join(self.workdir, "tritondoctor_smoke_model.py")
        shutil.copyfile(model_script.__file__, script)
        config = {
            "ports": self.ports,
            "prefer_gpu": self.options.prefer_gpu,
            "burst_requests": self.options.burst_requests,
            "burst_concurrency": self.options.burst_concurrency,
            "parent_pid": os.getpid(),
            "model_name": self.model_name,
            "request_timeout": max(5.0, min(30.0, self.options.timeout / 2)),
        }
        read_fd, write_fd = os.pipe()
        self._env[model_script.FD_ENV] = str(write_fd)
        self._header(config)
        try:
            self.proc = subprocess.Popen(
                [self.python, script, json.dumps(config)],
                env=self._env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            raise SmokeUsageError(f"{self.python}: cannot run it ({exc.strerror or exc})") from None
        finally:
            os.close(write_fd)
        self.events_fd = read_fd
        self.tree = ProcessTree(self.proc, (MARKER_ENV, self.token))

    def _header(self, config: dict[str, Any]) -> None:
        self.log.write(f"# tritondoctor smoke  {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self.log.write(f"# python: {self.python}\n# ports: {json.dumps(self.ports)}\n")
        self.log.write(f"# LD_LIBRARY_PATH={self._env.get('LD_LIBRARY_PATH', '(unset)')}\n")
        self.log.write(f"# config: {json.dumps(config)}\n")
        self.log.flush()

    # --- following the run --------------------------------------------------------------

    def follow(self, deadline: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
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
                    self.cutoff = (len(self.events), len(self.output))
                    return
                if self.end_by is not None and now >= self.end_by:
                    return
                if exited_at is None and self.proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and (open_streams == 0 or now - exited_at > 1.0):
                    return
                limit = deadline if self.end_by is None else min(deadline, self.end_by)
                for key, _mask in selector.select(timeout=max(0.0, min(0.1, limit - now))):
                    data = os.read(key.fd, 65536)
                    if not data:
                        selector.unregister(key.fd)
                        open_streams -= 1
                    elif key.data == "out":
                        self._on_output(data)
                    else:
                        self._on_event_bytes(data)
                if now - last_poll >= 0.1:
                    last_poll = now
                    self._poll_processes(now)
        finally:
            selector.close()
            self._flush_output()

    def _on_output(self, data: bytes) -> None:
        self._take_text(self._decoder.decode(data))

    def _take_text(self, text: str) -> None:
        if not text:
            return
        self._log_line_open = not text.endswith("\n")
        self.log.write(text)
        self.log.flush()
        # Keep at most ~8 MB in memory for the diagnosis; the file has everything.
        if self.output_size < 8 * 1024 * 1024:
            self.output.append(text)
            self.output_size += len(text)
        if self.options.verbose:
            sys.stderr.write(text)
            sys.stderr.flush()
        *lines, self._line_partial = (self._line_partial + text).split("\n")
        if len(self._line_partial) > 65536:  # a runaway line: judge what there is
            lines.append(self._line_partial)
            self._line_partial = ""
        for line in lines:
            if dx.is_fatal(line) and not self._has_event("result"):
                self._end_within(self.options.signature_grace)

    def _has_event(self, name: str) -> bool:
        return any(e.get("ev") == name for e in self.events)

    def _end_within(self, seconds: float) -> None:
        at = time.monotonic() + seconds
        self.end_by = at if self.end_by is None else min(self.end_by, at)

    def _flush_output(self) -> None:
        self._take_text(self._decoder.decode(b"", final=True))

    def _on_event_bytes(self, data: bytes) -> None:
        self._event_partial += data
        *lines, self._event_partial = self._event_partial.split(b"\n")
        for raw in lines:
            try:
                event = json.loads(raw.decode("utf-8", errors="replace"))
            except ValueError:
                continue
            if isinstance(event, dict):
                self._on_event(event)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.log.write(("\n" if self._log_line_open else "") + f"[smoke] {json.dumps(event)[:2000]}\n")
        self._log_line_open = False
        self.log.flush()
        grace = {"result": self.options.stop_grace, "error": self.options.error_grace,
                 "server-exit": self.options.server_exit_grace, "interrupted": self.options.error_grace}
        kind = event.get("ev")
        if kind in grace:
            self._end_within(grace[kind])

    def _poll_processes(self, now: float) -> None:
        assert self.tree is not None
        self.tree.refresh()
        servers = [p for p in self.tree.named("tritonserver") if _running(p)]
        for stub in self.tree.named("triton_python_backend_stub"):
            if stub.pid not in self._stubs_read:
                self._record_stub_libpython(stub.pid)
        if servers:
            self._server_seen_at = self._server_seen_at or now
            self._server_gone_at = None
        elif self._server_seen_at is not None and self.end_by is None:
            # Gone without the script saying so (a PyTriton without the attributes the script's
            # watch reads): give the script a second to report, then stop waiting.
            self._server_gone_at = self._server_gone_at or now
            if now - self._server_gone_at > 1.0:
                self.server_vanished = True
                self._end_within(self.options.server_exit_grace)

    def _record_stub_libpython(self, pid: int) -> None:
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
                paths = {line.split(None, 5)[-1].strip() for line in fh if "libpython" in line}
        except OSError:
            return
        for path in paths:
            if path.startswith("/") and path not in self.stub_libpython:
                self.stub_libpython[path] = _libpython_version(path)
        if paths:  # mapped by the loader before main(): read once it shows
            self._stubs_read.add(pid)

    # --- ending it -----------------------------------------------------------------------

    def cleanup(self) -> None:
        if self.proc is None or self.tree is None:
            return
        if self.proc.poll() is None:
            grace = self.options.interrupt_grace
        else:
            grace = 0.0
        survivors = self.tree.end(grace=grace)
        self.survivors = [f"{_describe(p)}" for p in survivors]
        if not survivors:
            remove_model_folders(self.model_name)
        if self.proc.stdout is not None:
            self._drain(self.proc.stdout.fileno())
            self.proc.stdout.close()
        self._drain(self.events_fd, events=True)
        os.close(self.events_fd)

    def _drain(self, fd: int, events: bool = False) -> None:
        os.set_blocking(fd, False)
        while True:
            try:
                data = os.read(fd, 65536)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            if events:
                self._on_event_bytes(data)
            else:
                self._on_output(data)

    def observation(self, log_path: str) -> dx.Observation:
        hello = next((e for e in self.events if e.get("ev") == "hello"), None)
        events, output = (self.events, self.output) if self.cutoff is None else (
            self.events[: self.cutoff[0]], self.output[: self.cutoff[1]])
        return dx.Observation(
            log="".join(output),
            events=events,
            interpreter=dx.Interpreter.from_event(hello),
            gpu_present=gpu_present(),
            timed_out=self.timed_out,
            timeout_s=self.options.timeout,
            server_vanished=self.server_vanished,
            script_exit=self.proc.returncode if self.proc else None,
            stub_libpython=dict(self.stub_libpython),
            ports=dict(self.ports),
            log_path=log_path,
        )


def _running(proc: Any) -> bool:
    try:
        import psutil

        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except Exception:  # noqa: BLE001 - gone
        return False


def _describe(proc: Any) -> str:
    try:
        return f"{proc.name()} (pid {proc.pid})"
    except Exception:  # noqa: BLE001
        return f"pid {proc.pid}"


def _libpython_version(path: str) -> str | None:
    try:
        from tritondoctor.facts.libpython import libpython_version

        return libpython_version(path)
    except Exception:  # noqa: BLE001 - evidence only
        return None


def remove_model_folders(model_name: str) -> list[str]:
    """tritonserver unpacks a model loaded with inline files into /tmp/folderXXXXXX (the path is
    fixed in the server; TMPDIR does not move it) and removes it on unload, which a killed server
    never does. Remove ours, recognised by the run's unique model name."""
    removed = []
    wanted = f'name: "{model_name}"'
    for directory in glob.glob("/tmp/folder??????"):
        try:
            with open(os.path.join(directory, "config.pbtxt"), encoding="utf-8", errors="replace") as fh:
                first = fh.readline().strip()
        except OSError:
            continue
        if first == wanted:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def gpu_present() -> bool:
    return model_script.nvidia_device_present()


def _result(watch: _Watch, python: str, options: SmokeOptions, log_path: str, started: float) -> SmokeResult:
    obs = watch.observation(log_path)
    findings = dx.diagnose(obs)
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
    )
    _append_summary(log_path, res)
    return res


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
    return tempfile.mkdtemp(prefix="tdsmoke-", dir=base)


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
def _sigterm_as_interrupt() -> Iterator[None]:
    """In the main thread, let SIGTERM (and SIGHUP) unwind like Ctrl-C so cleanup still runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM.value, signal.SIGHUP.value):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
