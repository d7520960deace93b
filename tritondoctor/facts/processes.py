"""Triton processes already running here (stale servers), from one pass over /proc.

Processes are scanned once, one read of /proc/<pid>/stat each (psutil.process_iter costs ~5x
that); command lines are read only for Triton processes and their parents.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Iterable

from tritondoctor.facts.inputs import EnvReads

READS = EnvReads(files=("/proc",))

SERVER_NAMES = ("tritonserver", "triton_python_backend_stub")

# pid -> (comm, state letter, ppid)
ProcessTable = dict[int, tuple[str, str, int]]


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    name: str
    status: str  # from /proc/<pid>/stat: "running", "sleeping", "zombie", ...
    cmdline: tuple[str, ...] = ()
    ppid: int | None = None
    parent_alive: bool = False
    parent_name: str | None = None
    parent_cmdline: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()  # TCP ports it listens on

    @property
    def zombie(self) -> bool:
        return self.status == "zombie"

    @property
    def orphaned(self) -> bool:
        """Its starter is gone: re-parented to init (or a subreaper) or to nothing."""
        return not self.zombie and (self.ppid in (None, 0, 1) or not self.parent_alive)


def read_stat(pid: int | str, proc_root: str = "/proc") -> tuple[str, str, int] | None:
    """(comm, state letter, ppid) from /proc/<pid>/stat: one read per process."""
    try:
        with open(f"{proc_root}/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    left, right = raw.find(b"("), raw.rfind(b")")
    if left < 0 or right < 0:
        return None
    fields = raw[right + 2:].split()
    try:
        return raw[left + 1:right].decode("utf-8", "replace"), fields[0].decode(), int(fields[1])
    except (IndexError, ValueError):
        return None


def read_cmdline(pid: int, proc_root: str = "/proc") -> tuple[str, ...]:
    try:
        with open(f"{proc_root}/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return ()
    return tuple(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)


def process_name(pid: int) -> str | None:
    stat = read_stat(pid)
    return _full_name(pid, stat[0]) if stat else None


def _full_name(pid: int, comm: str) -> str:
    # comm is cut at 15 bytes ("triton_python_b"): take the executable's name from argv[0]
    # (a zombie has none left: the stub is the one Triton process with that prefix).
    if len(comm) >= 15:
        argv = read_cmdline(pid)
        if argv and os.path.basename(argv[0]).startswith(comm):
            return os.path.basename(argv[0])
        if comm == "triton_python_b":
            return "triton_python_backend_stub"
    return comm


_STATES = {"R": "running", "S": "sleeping", "D": "disk-sleep", "Z": "zombie", "T": "stopped",
           "t": "tracing-stop", "X": "dead", "I": "idle"}


def _is_server_name(name: str | None) -> bool:
    if not name:
        return False
    return name in SERVER_NAMES or name.startswith("triton_python_b")


def scan_processes(proc_root: str = "/proc") -> ProcessTable:
    """pid -> (comm, state letter, ppid) for every process: one pass over /proc."""
    table: ProcessTable = {}
    try:
        names = os.listdir(proc_root)
    except OSError:
        return table
    for name in names:
        if name.isdigit():
            stat = read_stat(name, proc_root)
            if stat is not None:
                table[int(name)] = stat
    return table


def alive_pids(table: ProcessTable) -> set[int]:
    return {pid for pid, (_comm, state, _ppid) in table.items() if state != "Z"}


def servers(table: ProcessTable) -> tuple[ServerProcess, ...]:
    found = []
    for pid, (comm, state, ppid) in table.items():
        if not _is_server_name(comm):
            continue
        parent = table.get(ppid) if ppid else None
        found.append(ServerProcess(
            pid=pid,
            name=_full_name(pid, comm),
            status=_STATES.get(state, state),
            cmdline=read_cmdline(pid),
            ppid=ppid,
            parent_alive=parent is not None and parent[1] != "Z",
            parent_name=_full_name(ppid, parent[0]) if parent else None,
            parent_cmdline=read_cmdline(ppid) if parent else (),
        ))
    return tuple(sorted(found, key=lambda s: s.pid))


def with_ports(found: tuple[ServerProcess, ...], held: Iterable[tuple[int, int]]) -> tuple[ServerProcess, ...]:
    """`found` with the ports each listens on, from (pid, port) pairs."""
    by_pid: dict[int, list[int]] = {}
    for pid, port in held:
        by_pid.setdefault(pid, []).append(port)
    return tuple(dataclasses.replace(s, ports=tuple(by_pid.get(s.pid, ()))) for s in found)
