"""The smoke test's model, run *inside the target interpreter* (never imports tritondoctor).

It binds a small `@batch` model with PyTriton, serves it on loopback ports chosen by the runner,
infers through HTTP and gRPC with PyTriton's ModelClient, checks the numbers against a local
computation, runs a short concurrent burst (dynamic batching on) and stops the server.

It talks to the runner with JSON lines on the file descriptor named by TRITONDOCTOR_SMOKE_FD
(the server's own log goes to stdout/stderr, which the runner captures separately).

Only the standard library, numpy, pytriton (and torch, when present and a GPU is wanted) are
imported, and the syntax must stay valid for every Python that PyTriton supports (3.8+).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

FD_ENV = "TRITONDOCTOR_SMOKE_FD"
HOOK_ENV = "TRITONDOCTOR_SMOKE_TEST_HOOK"  # test-only fault injection, see _apply_hooks
MODEL_NAME = "tritondoctor_smoke"  # the runner passes a unique one per run
IN_FEATURES = 8
OUT_FEATURES = 4
MAX_BATCH = 16
ATOL = 1e-4
RTOL = 1e-4

_T0 = time.perf_counter()


class Channel:
    """JSON lines to the runner; every event carries `t`, seconds since this script started."""

    def __init__(self, fd: Optional[int]) -> None:
        self._lock = threading.Lock()
        self._stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8") if fd is not None else None

    def emit(self, event: str, **fields: Any) -> None:
        record = {"ev": event, "t": round(time.perf_counter() - _T0, 4)}
        record.update(fields)
        line = json.dumps(record, default=str)
        with self._lock:
            if self._stream is None:
                print("TRITONDOCTOR_SMOKE " + line, flush=True)
                return
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # the runner has gone; nothing left to tell
                pass


# --- device choice -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceFacts:
    """What decides cuda versus cpu; gathered by `gather_device_facts`, judged by `choose_device`."""

    prefer_gpu: bool
    nvidia_device: bool  # /dev/nvidiactl or /proc/driver/nvidia exists
    torch_version: Optional[str] = None  # installed distribution version, None when absent
    torch_import_error: Optional[str] = None
    torch_cuda: Optional[str] = None  # torch.version.cuda; None for a CPU-only build
    cuda_available: bool = False
    gpu_name: Optional[str] = None


def choose_device(facts: DeviceFacts) -> Tuple[str, str]:
    """("cuda" or "cpu", the reason in plain words)."""
    if not facts.prefer_gpu:
        return "cpu", "CPU requested; using a NumPy model"
    if facts.torch_version is None:
        return "cpu", "torch is not installed; using a NumPy model on the CPU"
    torch_name = "torch " + facts.torch_version
    if not facts.nvidia_device:
        return "cpu", "%s is installed but this host has no NVIDIA GPU (no /dev/nvidiactl); using a NumPy model" % torch_name
    if facts.torch_import_error:
        return "cpu", "%s failed to import (%s); using a NumPy model" % (torch_name, facts.torch_import_error)
    if not facts.torch_cuda:
        return "cpu", "%s is a CPU-only build; using a NumPy model" % torch_name
    if not facts.cuda_available:
        return "cpu", "%s (CUDA %s) sees no usable GPU (torch.cuda.is_available() is False); using a NumPy model" % (
            torch_name,
            facts.torch_cuda,
        )
    return "cuda", "%s (CUDA %s) on %s" % (torch_name, facts.torch_cuda, facts.gpu_name or "GPU 0")


def nvidia_device_present() -> bool:
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


def gather_device_facts(prefer_gpu: bool) -> DeviceFacts:
    nvidia = nvidia_device_present()
    version = None
    try:
        from importlib import metadata

        version = metadata.version("torch")
    except Exception:  # noqa: BLE001 - absent or unreadable metadata both mean "no torch"
        version = None
    # Importing torch costs seconds: only when it could actually be used.
    if not prefer_gpu or version is None or not nvidia:
        return DeviceFacts(prefer_gpu=prefer_gpu, nvidia_device=nvidia, torch_version=version)
    try:
        import torch  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001
        return DeviceFacts(prefer_gpu, nvidia, version, torch_import_error=_one_line(exc))
    cuda = getattr(torch.version, "cuda", None)
    available = bool(cuda) and bool(torch.cuda.is_available())
    name = torch.cuda.get_device_name(0) if available else None
    return DeviceFacts(prefer_gpu, nvidia, version, None, cuda, available, name)


# --- the model -----------------------------------------------------------------------------


class SmokeModel:
    """y = x @ W.T + b with fixed weights; `reference` recomputes it in float64 with NumPy."""

    def __init__(self, device: str, hang: bool = False) -> None:
        import numpy as np

        self.np = np
        rng = np.random.default_rng(20240607)
        self.weight = rng.standard_normal((OUT_FEATURES, IN_FEATURES)).astype(np.float32)
        self.bias = rng.standard_normal((OUT_FEATURES,)).astype(np.float32)
        self.device = device
        self.hang = hang
        self.calls = 0
        self.rows = 0
        self.max_batch = 0
        self._lock = threading.Lock()
        self._torch_linear = None
        if device == "cuda":
            import torch

            torch.backends.cuda.matmul.allow_tf32 = False
            linear = torch.nn.Linear(IN_FEATURES, OUT_FEATURES)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(self.weight))
                linear.bias.copy_(torch.from_numpy(self.bias))
            self._torch_linear = linear.to("cuda").eval()

    def compute(self, x: Any) -> Any:
        with self._lock:
            self.calls += 1
            self.rows += int(x.shape[0])
            self.max_batch = max(self.max_batch, int(x.shape[0]))
        if self.hang:
            while True:
                time.sleep(1)
        if self._torch_linear is not None:
            import torch

            with torch.inference_mode():
                y = self._torch_linear(torch.from_numpy(x).to("cuda"))
            return y.cpu().numpy()
        return x @ self.weight.T + self.bias

    def reference(self, x: Any) -> Any:
        np = self.np
        return x.astype(np.float64) @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)


def check_output(model: SmokeModel, x: Any, result: Dict[str, Any]) -> Tuple[bool, float]:
    np = model.np
    y = result.get("y")
    if y is None:
        return False, float("inf")
    expected = model.reference(x)
    if y.shape != expected.shape:
        return False, float("inf")
    error = float(np.max(np.abs(y.astype(np.float64) - expected)))
    return bool(np.allclose(y, expected, atol=ATOL, rtol=RTOL)), error


# --- server watch --------------------------------------------------------------------------


class ServerWatch(threading.Thread):
    """Notices tritonserver's exit at once (PyTriton would sit in its 120 s readiness wait).

    Reads PyTriton 0.7's private `Triton._triton_server._tritonserver_running_cmd` (an `sh`
    RunningCommand); with another layout it silently does nothing and the runner's own process
    watch takes over.
    """

    def __init__(self, triton: Any, channel: Channel) -> None:
        super().__init__(name="tritondoctor-server-watch", daemon=True)
        self._triton = triton
        self._channel = channel
        self.expected_exit = threading.Event()
        self.exited = threading.Event()

    def run(self) -> None:
        announced = False
        while not self.expected_exit.is_set():
            server = getattr(self._triton, "_triton_server", None)
            command = getattr(server, "_tritonserver_running_cmd", None)
            process = getattr(command, "process", None)
            if process is None:
                time.sleep(0.05)
                continue
            if not announced:
                self._channel.emit("server", pid=getattr(process, "pid", None))
                announced = True
            try:
                alive = command is not None and command.is_alive()
            except Exception:  # noqa: BLE001 - sh raises for a failed command in some versions
                alive = False
            if not alive:
                if self.expected_exit.is_set():
                    return
                code = getattr(process, "exit_code", None)
                self._channel.emit("server-exit", code=code, signal=_signal_name(code))
                self.exited.set()
                # Unblock the main thread wherever PyTriton has it waiting; it then stops cleanly.
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)


def _signal_name(code: Optional[int]) -> Optional[str]:
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return "signal %d" % -code


# --- the run -------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return ("%s: %s" % (type(exc).__name__, first)).strip().rstrip(":")


def _error(channel: Channel, phase: str, exc: BaseException, message: Optional[str] = None) -> None:
    channel.emit(
        "error",
        phase=phase,
        type=type(exc).__name__,
        module=getattr(exc, "name", None) if isinstance(exc, ImportError) else None,
        message=message or _one_line(exc),
        detail=str(exc)[-8000:],
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:],
    )


def interpreter_facts() -> Dict[str, Any]:
    import sysconfig

    prefix, base = sys.prefix, getattr(sys, "base_prefix", sys.prefix)
    kind = "conda" if os.path.isdir(os.path.join(prefix, "conda-meta")) else ("venv" if prefix != base else "system")
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")
    own = os.path.join(libdir, soname) if libdir and soname else None
    pytriton_version = None
    try:
        from importlib import metadata

        pytriton_version = metadata.version("nvidia-pytriton")
    except Exception:  # noqa: BLE001
        pass
    return {
        "python": sys.executable,
        "version": "%d.%d.%d" % sys.version_info[:3],
        "minor": "%d.%d" % sys.version_info[:2],
        "prefix": prefix,
        "env_kind": kind,
        "libdir": libdir,
        "instsoname": soname,
        "enable_shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
        "own_libpython": os.path.realpath(own) if own and os.path.exists(own) else None,
        "pytriton": pytriton_version,
        "pid": os.getpid(),
    }


def _apply_hooks(hook: str) -> Dict[str, Any]:
    """Test-only fault injection. `stub=X.Y`: give the server the stub built for Python X.Y."""
    applied: Dict[str, Any] = {}
    if hook.startswith("stub="):
        import pathlib

        import pytriton.triton as triton_module

        minor = hook.split("=", 1)[1]
        original = triton_module.get_stub_path

        def wrong_stub(_version: str) -> pathlib.Path:
            return original(minor)

        triton_module.get_stub_path = wrong_stub
        applied["stub"] = minor
    return applied


def _infer_once(url: str, name: str, model: SmokeModel, x: Any, timeout: float) -> Tuple[float, bool, float]:
    from pytriton.client import ModelClient

    started = time.perf_counter()
    with ModelClient(url, name, init_timeout_s=timeout, inference_timeout_s=timeout) as client:
        result = client.infer_batch(x=x)
    elapsed = time.perf_counter() - started
    ok, error = check_output(model, x, result)
    return elapsed, ok, error


def _burst(url: str, name: str, model: SmokeModel, requests: int, concurrency: int, timeout: float) -> Dict[str, Any]:
    """`requests` single-row requests from `concurrency` threads, each with its own client."""
    from pytriton.client import ModelClient

    np = model.np
    rng = np.random.default_rng(7)
    per_thread = max(1, requests // concurrency)
    inputs = [rng.standard_normal((per_thread, 1, IN_FEATURES)).astype(np.float32) for _ in range(concurrency)]
    latencies: List[float] = []
    failures: List[str] = []
    worst = [0.0]
    lock = threading.Lock()
    ready = threading.Barrier(concurrency + 1)
    go = threading.Event()

    def worker(batch: Any) -> None:
        try:
            with ModelClient(url, name, init_timeout_s=timeout, inference_timeout_s=timeout) as client:
                client.infer_batch(x=batch[0])  # warm the connection and model config before timing
                ready.wait(timeout)
                go.wait(timeout)
                for row in batch:
                    started = time.perf_counter()
                    result = client.infer_batch(x=row)
                    latency = time.perf_counter() - started
                    ok, error = check_output(model, row, result)
                    with lock:
                        latencies.append(latency)
                        worst[0] = max(worst[0], error)
                        if not ok:
                            failures.append("wrong numbers (max error %.3g)" % error)
        except Exception as exc:  # noqa: BLE001 - reported as a failed burst, not a crash
            with lock:
                failures.append(_one_line(exc))
            ready.abort()

    threads = [threading.Thread(target=worker, args=(batch,), daemon=True) for batch in inputs]
    for thread in threads:
        thread.start()
    try:
        ready.wait(timeout)
    except threading.BrokenBarrierError:
        pass
    calls_before = model.calls
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join(timeout)
    wall = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> Optional[float]:
        if not ordered:
            return None
        return round(1000.0 * ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 3)

    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "wall_s": round(wall, 4),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "throughput_rps": round(len(latencies) / wall, 1) if wall > 0 and latencies else None,
        "model_calls": model.calls - calls_before,
        "max_batch": model.max_batch,
        "max_error": worst[0],
        "failures": failures[:5],
        "failed": len(failures),
    }


# --- the model's own readiness and the endpoints the server restricts ------------------------

ACCESS_HEADER = "triton-access-token"  # pytriton.triton.TRITON_ACCESS_HEADER in 0.7.0
GRPC_PREFIX = "triton-grpc-protocol-"  # Triton reads restricted-protocol headers with this prefix over gRPC


def _http(url: str, method: str = "GET", headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None,
          timeout: float = 5.0) -> Tuple[Optional[int], str]:
    """(HTTP status or None when nothing answered, the answer's first 2000 characters). Never
    through a proxy: urllib would honour http_proxy even for 127.0.0.1."""
    from urllib.error import HTTPError, URLError
    from urllib.request import ProxyHandler, Request, build_opener

    request = Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with build_opener(ProxyHandler({})).open(request, timeout=timeout) as answer:
            return answer.status, answer.read(2000).decode("utf-8", "replace")
    except HTTPError as exc:
        return exc.code, exc.read(2000).decode("utf-8", "replace")
    except (URLError, OSError) as exc:
        return None, _one_line(exc)


def _answer_text(text: str) -> str:
    """Triton's JSON error ({"error": "..."}) as its message; other text as it came."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    return str(data.get("error", text) if isinstance(data, dict) else text).strip()[:300]


def model_status(port: int, name: str, wait_s: float, timeout: float) -> Dict[str, Any]:
    """GET /v2/models/<name>/ready until 200 or `wait_s` passes (server readiness says nothing
    of a model's: catalog row 38)."""
    from urllib.parse import quote

    url = "http://127.0.0.1:%d/v2/models/%s/ready" % (port, quote(name, safe=""))
    started = time.perf_counter()
    while True:
        status, text = _http(url, timeout=timeout)
        waited = time.perf_counter() - started
        if status == 200 or waited >= wait_s:
            break
        time.sleep(0.1)
    return {"model": name, "ready": status == 200, "status": status, "answer": _answer_text(text),
            "waited_s": round(waited, 4), "request": "GET /v2/models/%s/ready" % name}


def access_token(triton: Any) -> Tuple[Optional[str], str]:
    """PyTriton's token for its restricted endpoints, or None and why there is nothing to check."""
    getter = getattr(triton, "get_access_token", None)
    if getter is None:
        return None, "this PyTriton restricts no endpoint (it has no Triton.get_access_token)"
    token = getter()
    if not token:
        return None, "this run restricts no endpoint (a TritonSecurityConfig without restricted endpoints)"
    return token, ""


def restricted_endpoints(triton: Any) -> List[str]:
    config = getattr(triton, "_security_config", None)  # private in 0.7.0; only evidence
    return [str(e) for e in (getattr(config, "restricted_endpoints", None) or [])]


def _http_index(port: int, token: Optional[str], timeout: float) -> Dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers[ACCESS_HEADER] = token
    url = "http://127.0.0.1:%d/v2/repository/index" % port
    status, text = _http(url, "POST", headers, b"{}", timeout)
    return {"allowed": status == 200, "status": status, "message": "" if status == 200 else _answer_text(text)}


def _grpc_index(port: int, token: Optional[str], timeout: float) -> Dict[str, Any]:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    # No proxy for this probe: a proxy in the environment is judged by the inference checks.
    client = grpcclient.InferenceServerClient("127.0.0.1:%d" % port, channel_args=[("grpc.enable_http_proxy", 0)])
    headers = {GRPC_PREFIX + ACCESS_HEADER: token} if token is not None else None
    try:
        client.get_model_repository_index(headers=headers, client_timeout=timeout)
        return {"allowed": True, "status": "OK", "message": ""}
    except InferenceServerException as exc:
        return {"allowed": False, "status": exc.status(), "message": str(exc.message())[:300]}
    finally:
        client.close()


_PROBES = (
    ("http", "POST /v2/repository/index", _http_index),
    ("grpc", "RepositoryIndex", _grpc_index),
)


def check_restricted(triton: Any, ports: Dict[str, int], timeout: float, stale_token: bool = False) -> Dict[str, Any]:
    """One restricted endpoint per protocol, asked without the token and with it. `stale_token`
    (test hook): send a token of another start, as a client that kept an old one would."""
    token, why = access_token(triton)
    if token is None:
        return {"skipped": why}
    sent = secrets_token() if stale_token else token
    checks = []
    for protocol, call, probe in _PROBES:
        record: Dict[str, Any] = {"protocol": protocol, "call": call}
        try:
            record["without"] = probe(ports[protocol], None, timeout)
            record["with"] = probe(ports[protocol], sent, timeout)
        except Exception as exc:  # noqa: BLE001 - a probe that cannot run is reported, never fatal
            record["error"] = _one_line(exc)
        checks.append(record)
    return {"restricted": restricted_endpoints(triton), "header": ACCESS_HEADER, "checks": checks,
            "stale_token": stale_token}


def secrets_token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


def unload_model(triton: Any, port: int, name: str, timeout: float) -> Optional[int]:
    """Test hook `unready-model`: unload the bound model through the server's repository API
    (with PyTriton's token), leaving a served name that is not ready."""
    token, _ = access_token(triton)
    headers = {ACCESS_HEADER: token} if token else {}
    url = "http://127.0.0.1:%d/v2/repository/models/%s/unload" % (port, name)
    status, _text = _http(url, "POST", headers, b"{}", timeout)
    return status


WORKSPACE_FILE = "workspace"  # in the working directory: the runner's record of PyTriton's workspace


class ScriptError(Exception):
    """A step failed; `phase` names it for the runner and `cause` is what was raised."""

    def __init__(self, phase: str, cause: BaseException, message: Optional[str] = None) -> None:
        super().__init__(message or _one_line(cause))
        self.phase = phase
        self.cause = cause
        self.message = message


def _import_pytriton() -> Any:
    try:
        import numpy  # noqa: F401
        import pytriton.decorators  # noqa: F401
        import pytriton.model_config  # noqa: F401
        import pytriton.triton as triton_module
    except ImportError as exc:
        raise ScriptError("import", exc)
    return triton_module


def _make_triton(config: Dict[str, Any]) -> Any:
    """Triton() creates PyTriton's workspace under PYTRITON_HOME: name that step when it fails."""
    from pytriton.triton import Triton, TritonConfig

    ports = config["ports"]
    triton_config = TritonConfig(
        http_address="127.0.0.1",
        http_port=ports["http"],
        grpc_address="127.0.0.1",
        grpc_port=ports["grpc"],
        metrics_address="127.0.0.1",
        metrics_port=ports["metrics"],
    )
    try:
        triton = Triton(config=triton_config)
    except OSError as exc:
        home = os.environ.get("PYTRITON_HOME", "~/.cache/pytriton")
        detail = exc.strerror or _one_line(exc)
        raise ScriptError("workspace", exc, "PyTriton cannot create its workspace in PYTRITON_HOME %s: %s" % (home, detail))
    except Exception as exc:  # noqa: BLE001 - reported to the runner like any failed step
        raise ScriptError("server-start", exc)
    workspace = getattr(getattr(triton, "_workspace", None), "path", None)
    if workspace is not None:
        try:
            with open(WORKSPACE_FILE, "w") as fh:
                fh.write(str(workspace))
        except OSError:
            pass
    return triton


def _bind(triton: Any, model: SmokeModel, name: str, queue_delay_us: int) -> None:
    import numpy as np
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    @batch
    def infer(x: Any) -> Dict[str, Any]:
        return {"y": model.compute(x)}

    triton.bind(
        model_name=name,
        infer_func=infer,
        inputs=[Tensor(name="x", dtype=np.float32, shape=(IN_FEATURES,))],
        outputs=[Tensor(name="y", dtype=np.float32, shape=(OUT_FEATURES,))],
        config=ModelConfig(max_batch_size=MAX_BATCH, batcher=DynamicBatcher(max_queue_delay_microseconds=queue_delay_us)),
        strict=True,
    )


class Run:
    """One pass through the steps; `phase` is the step in progress when something fails."""

    def __init__(self, config: Dict[str, Any], channel: Channel, model: SmokeModel, hook: str = "") -> None:
        self.config = config
        self.channel = channel
        self.model = model
        self.hook = hook
        self.phase = "server-start"
        self.name = str(config.get("model_name") or MODEL_NAME)
        self.timeout = float(config.get("request_timeout", 30.0))

    def serve(self, triton: Any) -> None:
        started = time.perf_counter()
        triton.run()  # what `with Triton()` does on entry: start tritonserver, wait until ready
        self.channel.emit("phase", name="server-ready", s=round(time.perf_counter() - started, 4))
        self.phase = "model-load"
        loading = time.perf_counter()
        _bind(triton, self.model, self.name, int(self.config.get("queue_delay_us", 500)))
        self.channel.emit("phase", name="model-ready", s=round(time.perf_counter() - loading, 4))
        self.confirm_ready(triton)

    def confirm_ready(self, triton: Any) -> None:
        """The model's own readiness after bind; a model that is not ready ends the run (its
        requests could only wait and fail)."""
        self.phase = "model-status"
        port = self.config["ports"]["http"]
        if self.hook == "unready-model":
            self.channel.emit("hook", unloaded=self.name, status=unload_model(triton, port, self.name, self.timeout))
        status = model_status(port, self.name, float(self.config.get("ready_wait_s", 3.0)), self.timeout)
        self.channel.emit("model-status", **status)
        if not status["ready"]:
            raise RuntimeError("model %s is not ready: %s answered %s %s" % (
                self.name, status["request"], status["status"], status["answer"]))

    def check_endpoints(self, triton: Any) -> None:
        """After the inference checks: PyTriton's restricted endpoints, without and with its token."""
        self.phase = "endpoints"
        result = check_restricted(triton, self.config["ports"], self.timeout, stale_token=self.hook == "stale-token")
        self.channel.emit("endpoints", **result)

    def check(self, triton: Any) -> None:
        np = self.model.np
        ports = self.config["ports"]
        self.phase = "infer"
        x = np.random.default_rng(1).standard_normal((3, IN_FEATURES)).astype(np.float32)
        checks = {}
        for protocol in ("http", "grpc"):
            url = "%s://127.0.0.1:%d" % (protocol, ports[protocol])
            elapsed, ok, error = _infer_once(url, self.name, self.model, x, self.timeout)
            checks[protocol] = {"ok": ok, "s": round(elapsed, 4), "max_error": error, "url": url}
            self.channel.emit("infer", protocol=protocol, ok=ok, s=round(elapsed, 4), max_error=error)
        self.phase = "burst"
        burst = _burst(
            "http://127.0.0.1:%d" % ports["http"],
            self.name,
            self.model,
            int(self.config.get("burst_requests", 128)),
            int(self.config.get("burst_concurrency", 8)),
            self.timeout,
        )
        self.channel.emit("burst", **burst)
        self.check_endpoints(triton)
        self.channel.emit("result", checks=checks, burst=burst)


def _serve_and_check(triton: Any, run: Run, watch: ServerWatch) -> int:
    """Serve, infer and burst; stop the server in every case. Returns the exit code."""
    channel = run.channel
    try:
        run.serve(triton)
        run.check(triton)
        code = 0
    except KeyboardInterrupt:
        watch.expected_exit.set()
        if not watch.exited.is_set():
            channel.emit("interrupted", phase=run.phase)
        code = 130
    except Exception as exc:  # noqa: BLE001 - reported to the runner; the raw traceback goes to its log
        watch.expected_exit.set()  # before anything stops the server: this exit is ours
        if not watch.exited.is_set():
            _error(channel, run.phase, exc)
        traceback.print_exc()
        code = 1
    watch.expected_exit.set()
    return _stop(triton, channel, code)


def _stop(triton: Any, channel: Channel, code: int) -> int:
    stopping = time.perf_counter()
    try:
        triton.stop()
    except BaseException as exc:  # noqa: BLE001 - best effort; the runner ends whatever is left
        channel.emit("stop-failed", message=_one_line(exc))
        return code or 1
    channel.emit("phase", name="stopped", s=round(time.perf_counter() - stopping, 4))
    return code


def run(config: Dict[str, Any], channel: Channel) -> int:
    hook = os.environ.get(HOOK_ENV, "")
    channel.emit("hello", **interpreter_facts())
    facts = gather_device_facts(bool(config.get("prefer_gpu", True)))
    device, reason = choose_device(facts)
    channel.emit("device", device=device, reason=reason, torch=facts.torch_version)
    try:
        _import_pytriton()
        channel.emit("phase", name="imported")
        applied = _apply_hooks(hook) if hook else {}
        if applied:
            channel.emit("hook", **applied)
        model = SmokeModel(device, hang=hook == "hang-infer")
        triton = _make_triton(config)
    except ScriptError as exc:
        _error(channel, exc.phase, exc.cause, exc.message)
        return 1
    watch = ServerWatch(triton, channel)
    watch.start()
    return _serve_and_check(triton, Run(config, channel, model, hook), watch)


def _die_with_parent(parent: int) -> None:
    """If the supervisor dies, get SIGTERM (handled like Ctrl-C) instead of living on unsupervised."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - only a safety net
        return
    if parent and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: List[str]) -> int:
    config = json.loads(argv[1]) if len(argv) > 1 else {}
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    fd = os.environ.get(FD_ENV)
    channel = Channel(int(fd) if fd else None)
    _die_with_parent(int(config.get("parent_pid", 0)))
    try:
        code = run(config, channel)
    except KeyboardInterrupt:
        channel.emit("interrupted", phase="setup")
        code = 130
    channel.emit("bye", code=code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
