"""Keep track of every process a smoke run starts, and end and reap all of them.

The root runs in its own session: for `smoke`, the run's supervisor (smoke/supervisor.py), a
child subreaper that owns the tree (the model script, tritonserver started by PyTriton through
`sh`, the Python backend stub, the multiprocessing helpers); for the repository smoke, the
server itself. Members stay in that session and inherit a marker variable, so they are found
three ways: descendants seen while polling, the session id, and the marker in
/proc/<pid>/environ. `end` interrupts the root and then kills what is left; `end_supervised`
asks the supervisor to do that and kills only what it could not. The caller is a child subreaper
too: processes orphaned inside the tree are re-parented to it and can be reaped (on hosts whose
PID 1 does not reap orphans they would otherwise stay zombies forever).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import psutil

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def _prctl(option: int, value: int) -> int | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None
    if option == PR_GET_CHILD_SUBREAPER:
        out = ctypes.c_int(0)
        if libc.prctl(option, ctypes.byref(out), 0, 0, 0) != 0:
            return None
        return out.value
    return None if libc.prctl(option, value, 0, 0, 0) != 0 else value


@contextmanager
def child_subreaper() -> Iterator[bool]:
    """Make this process a child subreaper for the duration; yields whether that worked."""
    previous = _prctl(PR_GET_CHILD_SUBREAPER, 0)
    enabled = previous == 1 or _prctl(PR_SET_CHILD_SUBREAPER, 1) == 1
    try:
        yield enabled
    finally:
        if previous == 0 and enabled:
            _prctl(PR_SET_CHILD_SUBREAPER, 0)


def _key(proc: psutil.Process) -> tuple[int, float]:
    try:
        return proc.pid, proc.create_time()
    except psutil.Error:
        return proc.pid, 0.0


@dataclass
class ProcessTree:
    """The root (a Popen started with start_new_session=True; for `end_supervised`, the supervisor
    with its stdin a pipe) and all it spawns."""

    root: subprocess.Popen
    marker: tuple[str, str]  # (variable, value) put in the target's environment
    known: dict[tuple[int, float], psutil.Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sid = self.root.pid  # session leader: the session id is its pid
        try:
            self.known[_key(psutil.Process(self.root.pid))] = psutil.Process(self.root.pid)
        except psutil.Error:
            pass

    def refresh(self) -> list[psutil.Process]:
        """Add descendants of the root; return the processes seen for the first time."""
        new: list[psutil.Process] = []
        try:
            children = psutil.Process(self.root.pid).children(recursive=True)
        except psutil.Error:
            children = []
        for proc in children:
            key = _key(proc)
            if key not in self.known:
                self.known[key] = proc
                new.append(proc)
        return new

    def sweep(self) -> None:
        """Find members that are no longer below the root: by session id and by marker."""
        name, value = self.marker
        me = os.getpid()
        for proc in psutil.process_iter(["pid"]):
            if proc.pid == me or _key(proc) in self.known:
                continue
            try:
                if os.getsid(proc.pid) == self._sid or proc.environ().get(name) == value:
                    self.known[_key(proc)] = proc
            except (psutil.Error, OSError):
                continue

    def alive(self) -> list[psutil.Process]:
        out = []
        for proc in self.known.values():
            try:
                if proc.is_running():  # True for zombies too: they still need reaping
                    out.append(proc)
            except psutil.Error:
                continue
        return out

    def named(self, name: str) -> list[psutil.Process]:
        out = []
        for proc in self.known.values():
            try:
                if proc.name() == name:
                    out.append(proc)
            except psutil.Error:
                continue
        return out

    def shm_segments(self) -> set[str]:
        """/dev/shm files mapped by live members (to unlink if a forced kill leaves them)."""
        segments: set[str] = set()
        for proc in self.alive():
            try:
                with open(f"/proc/{proc.pid}/maps", encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        path = line.rstrip("\n").split(None, 5)[-1] if line.count(" ") >= 5 else ""
                        if path.startswith("/dev/shm/"):
                            segments.add(path.removesuffix(" (deleted)"))
            except OSError:
                continue
        return segments

    def end(self, grace: float, kill_wait: float = 5.0) -> list[psutil.Process]:
        """SIGINT to the root (PyTriton then stops the server itself), up to `grace` seconds, then
        SIGKILL for every member still there, and reap. Returns what could not be ended."""
        self.refresh()
        self.sweep()
        if self.root.poll() is None and grace > 0:
            try:
                self.root.send_signal(signal.SIGINT)
            except OSError:
                pass
            try:
                self.root.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self.sweep()
        shm = self.shm_segments() | set(glob.glob(f"/dev/shm/pytrtion{self.root.pid}-*"))
        survivors = self._kill_and_reap(kill_wait)
        if self.root.poll() is None:
            try:
                self.root.kill()
                self.root.wait(timeout=kill_wait)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if not survivors:
            for path in shm:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        return survivors

    def end_supervised(self, grace: float, kill_wait: float = 5.0) -> list[psutil.Process]:
        """Ask the supervisor (the root) to end the run: SIGINT to the script, up to `grace`
        seconds, then SIGKILL for the whole tree. Then, as a backstop, SIGKILL whatever is still
        found and reap. Returns what could not be ended."""
        self.refresh()
        self.sweep()
        self._send_stop(grace)
        try:
            self.root.wait(timeout=grace + kill_wait + 1.0)
        except subprocess.TimeoutExpired:
            pass
        self.sweep()
        return self._kill_and_reap(kill_wait)

    def _send_stop(self, grace: float) -> None:
        control = self.root.stdin
        if control is None:
            return
        try:
            control.write(f"stop {grace:g}\n".encode())
            control.flush()
        except (OSError, ValueError):
            pass
        try:
            control.close()
        except OSError:
            pass

    def _kill_and_reap(self, wait: float) -> list[psutil.Process]:
        deadline = time.monotonic() + wait
        # Repeat: a member dying can reveal another (its orphans become visible by sweep).
        while True:
            members = [p for p in self.alive() if p.pid != self.root.pid]
            for proc in members:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            if self.root.poll() is None:
                try:
                    self.root.kill()
                except OSError:
                    pass
            # wait_procs reaps those that are our children (including orphans re-parented to us).
            psutil.wait_procs(members, timeout=max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                self.root.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self.sweep()
            remaining = [p for p in self.alive() if p.pid != self.root.pid]
            if not remaining or time.monotonic() >= deadline:
                return remaining


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind `port` now (SO_REUSEADDR, as servers do)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports that are free on `host` right now (held open together while picking)."""
    import socket

    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """In the main thread, SIGTERM and SIGHUP unwind like Ctrl-C so the cleanup runs (when the
    caller has no signal policy of its own: the CLI's raises Interrupted already)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
