"""Start tritonserver in its own session, wait until it answers, and end everything it started.

The server is a session (and process-group) leader; the Python backend's stubs stay in its
session and inherit a marker variable, so `procs.ProcessTree` finds them even when orphaned.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, Mapping

from tritondoctor.smoke import diagnose as dx
from tritondoctor.smoke.procs import ProcessTree

MARKER_ENV = "TRITONDOCTOR_REPO_SMOKE"
POLL_S = 0.1
# After a line that already decides the run (the stub cannot start...), how long to keep waiting:
# such a load may hang instead of failing.
FATAL_GRACE_S = 3.0
STOP_GRACE_S = 15.0


@dataclass
class Server:
    proc: subprocess.Popen
    tree: ProcessTree
    log_path: str
    shm_prefix: str
    log: IO[bytes]
    leftovers: list[str] = field(default_factory=list)

    def text(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""


def new_shm_prefix() -> str:
    return f"tdrepo{uuid.uuid4().hex[:10]}_"


def start(cmd: list[str], env: Mapping[str, str], log_path: str, shm_prefix: str) -> Server:
    marker = (MARKER_ENV, uuid.uuid4().hex)
    full_env = dict(env)
    full_env[marker[0]] = marker[1]
    log = open(log_path, "wb")
    try:
        proc = subprocess.Popen(cmd, env=full_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError:
        log.close()
        raise
    return Server(proc, ProcessTree(proc, marker), log_path, shm_prefix, log)


def request(port: int, path: str, method: str = "GET", timeout: float = 2.0) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body or None); (0, None) when nothing answers."""
    data = b"{}" if method == "POST" else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def wait_live(server: Server, port: int, deadline: float) -> str:
    """"live", "exited" or "timeout" (which includes giving up shortly after a fatal line)."""
    fatal_at: float | None = None
    while True:
        if server.proc.poll() is not None:
            return "exited"
        if request(port, "/v2/health/live", timeout=1.0)[0] == 200:
            return "live"
        now = time.monotonic()
        if fatal_at is None and any(dx.is_fatal(line) for line in server.text().splitlines()):
            fatal_at = now
        if now >= deadline or (fatal_at is not None and now - fatal_at > FATAL_GRACE_S):
            return "timeout"
        server.tree.refresh()
        time.sleep(POLL_S)


def repository_index(port: int) -> list[dict[str, Any]]:
    status, body = request(port, "/v2/repository/index", method="POST", timeout=10.0)
    return body if status == 200 and isinstance(body, list) else []


def stop(server: Server, grace: float = STOP_GRACE_S) -> None:
    """SIGINT first (the server unloads its models and its stubs exit), then SIGKILL to the
    whole group and every marked process, reaped; then the shm segments of our prefix."""
    try:
        server.leftovers = [f"{p.name()} {p.pid}" for p in server.tree.end(grace)]
    except Exception:  # noqa: BLE001 - the group kill below is the last resort
        server.leftovers = []
    try:
        os.killpg(server.proc.pid, signal.SIGKILL)
    except OSError:
        pass
    if server.proc.poll() is None:
        try:
            server.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    server.log.close()
    if not server.leftovers:
        for path in glob.glob(f"/dev/shm/{server.shm_prefix}*"):
            try:
                os.unlink(path)
            except OSError:
                pass


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold Ctrl-C while ending the server; it is delivered right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


