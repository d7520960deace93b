"""The ports tritonserver listens on: free, or who holds them.

Each checked port is probed by binding 0.0.0.0:port exactly as tritonserver's listeners do
(SO_REUSEADDR, never listening, closed at once); only when a bind fails is
psutil.net_connections() asked who holds it (reading /proc/net/tcp alone costs ~10 ms on some
kernels, and psutil ~40 ms to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from tritondoctor.facts.inputs import EnvReads
from tritondoctor.facts.processes import process_name, read_cmdline

READS = EnvReads(files=("/proc/net/tcp", "/proc/net/tcp6"))


@dataclass(frozen=True)
class Listener:
    port: int
    address: str
    pid: int | None = None
    name: str | None = None
    cmdline: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortState:
    port: int
    listeners: tuple[Listener, ...] = ()  # who holds it (may be empty when the owner is hidden)
    bind_errno: int | None = None  # what binding 0.0.0.0:port as tritonserver does said

    @property
    def taken(self) -> bool:
        return self.bind_errno is not None


def bind_error(port: int, address: str = "0.0.0.0") -> int | None:
    """errno of binding `address:port` the way tritonserver's HTTP, gRPC and metrics listeners
    do (all addresses, SO_REUSEADDR, no SO_REUSEPORT), or None when it would succeed. The socket
    never listens and is closed at once, so nothing is left behind (no TIME_WAIT)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        return None
    except OSError as exc:
        return exc.errno
    finally:
        sock.close()


def _listening(errors: list[str]) -> list[Any]:
    try:
        import psutil  # ~40 ms to import: only when there is an owner to name

        return [c for c in psutil.net_connections(kind="tcp") if c.laddr and c.status == psutil.CONN_LISTEN]
    except Exception as exc:  # ImportError, psutil.AccessDenied, OSError
        errors.append(f"net_connections: {exc.__class__.__name__}: {exc}")
        return []


def _listeners(port: int, conns: list[Any]) -> tuple[Listener, ...]:
    found = []
    for conn in conns:
        if conn.laddr.port != port:
            continue
        name: str | None = None
        cmdline: tuple[str, ...] = ()
        if conn.pid:
            name, cmdline = process_name(conn.pid), read_cmdline(conn.pid)
        found.append(Listener(port=port, address=conn.laddr.ip, pid=conn.pid, name=name, cmdline=cmdline))
    return tuple(found)


def gather(wanted: tuple[int, ...], errors: list[str]) -> tuple[tuple[PortState, ...], tuple[int, ...]]:
    """The state of each wanted port, and (only when one is taken) every listening TCP port."""
    failed = {port: err for port in wanted if (err := bind_error(port)) is not None}
    if not failed:
        return tuple(PortState(port=p) for p in wanted), ()
    conns = _listening(errors)
    states = tuple(
        PortState(port=port, listeners=_listeners(port, conns), bind_errno=failed[port])
        if port in failed else PortState(port=port)
        for port in wanted
    )
    return states, tuple(sorted({c.laddr.port for c in conns}))


def held_by(states: tuple[PortState, ...]) -> Iterator[tuple[int, int]]:
    """(pid, port) for every listener whose process is known."""
    for state in states:
        for listener in state.listeners:
            if listener.pid:
                yield listener.pid, state.port
