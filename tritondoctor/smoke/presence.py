"""What the runner learns by looking at the run's processes rather than its streams: whether
tritonserver is (still) there, and which libpython each Python backend stub mapped."""

from __future__ import annotations

from typing import Any, Callable

import psutil

from tritondoctor.smoke.procs import ProcessTree

# tritonserver gone without the script saying so: give the script this long to report it.
_REPORT_WINDOW_S = 1.0


class ServerPresence:
    def __init__(self, tree: ProcessTree) -> None:
        self.tree = tree
        self.stub_libpython: dict[str, str | None] = {}
        self.vanished = False
        self._seen_at: float | None = None
        self._gone_at: float | None = None
        self._stubs_read: set[int] = set()

    def poll(self, now: float, ending: bool, end_within: Callable[[], None]) -> None:
        """Look once; call `end_within` when the server vanished and nothing else is ending the run."""
        self.tree.refresh()
        servers = [p for p in self.tree.named("tritonserver") if running(p)]
        for stub in self.tree.named("triton_python_backend_stub"):
            if stub.pid not in self._stubs_read:
                self._record_stub_libpython(stub.pid)
        if servers:
            self._seen_at = self._seen_at or now
            self._gone_at = None
        elif self._seen_at is not None and not ending:
            # Gone without the script saying so (a PyTriton without the attributes the script's
            # watch reads): give the script a moment to report, then stop waiting.
            self._gone_at = self._gone_at or now
            if now - self._gone_at > _REPORT_WINDOW_S:
                self.vanished = True
                end_within()

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


def running(proc: Any) -> bool:
    try:
        return bool(proc.is_running()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def describe(proc: Any) -> str:
    try:
        return f"{proc.name()} (pid {proc.pid})"
    except psutil.Error:
        return f"pid {proc.pid}"


def _libpython_version(path: str) -> str | None:
    try:
        from tritondoctor.facts.libpython import libpython_version

        return libpython_version(path)
    except Exception:  # noqa: BLE001 - evidence only
        return None

