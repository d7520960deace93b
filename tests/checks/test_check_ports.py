"""Fast tier: the `ports` check (HTTP, gRPC and metrics ports free to bind)."""

from __future__ import annotations

import errno

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import ports as check

from tritondoctor.facts.runtime import Listener, PortState, ServerProcess


def _taken(*states: PortState, **runtime: object) -> sf.Snapshot:
    return sf.patch(sf.base(), "runtime", ports=sf.ports(*states), **runtime)


def _held(port: int = 8000, pid: int | None = 4242, name: str = "python", cmdline: tuple[str, ...] = ("python", "serve.py"),
          err: int = errno.EADDRINUSE) -> PortState:
    return PortState(port, (Listener(port, "0.0.0.0", pid, name, cmdline),), err)


def _server(ppid: int, alive: bool) -> ServerProcess:
    return ServerProcess(pid=4242, name="tritonserver", status="sleeping", cmdline=("tritonserver",), ppid=ppid,
                         parent_alive=alive, parent_name="python", parent_cmdline=("python", "app.py"))


def test_skip_without_port_facts() -> None:
    sf.one(check, sf.base(runtime=None), Status.SKIP)
    found = sf.one(check, sf.patch(sf.base(), "runtime", ports=(), errors=("net_connections: denied",)), Status.SKIP)
    assert found.detail == "net_connections: denied"


def test_ok() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == "ports 8000, 8001, 8002 are free"
    custom = sf.patch(sf.base(), "runtime", ports=(PortState(9000),))
    assert sf.one(check, custom, Status.OK).title == "ports 9000 are free (as asked)"


def test_in_use_by_a_visible_process() -> None:
    found = sf.one(check, _taken(_held(), listening_ports=(8000, 9000)), Status.ERROR)
    assert found.title == "port 8000 (HTTP) is in use by pid 4242 (python serve.py)"
    assert found.fix is not None and found.fix.id == "ports" and found.fix.commands[0] == "kill 4242"
    assert "http_port=9010, grpc_port=9011, metrics_port=9012" in found.fix.commands[1]


def test_in_use_by_a_hidden_process() -> None:
    hidden = sf.one(check, _taken(_held(8001, pid=None)), Status.ERROR)
    assert "a process this user cannot see (listening on 0.0.0.0)" in hidden.title
    unknown = sf.one(check, _taken(PortState(8002, (), errno.EADDRINUSE)), Status.ERROR)
    assert unknown.title == "port 8002 (metrics) is in use (bound by a socket whose owner is not visible here)"
    assert unknown.fix is not None and unknown.fix.commands[0].startswith("sudo ss -ltnp 'sport = :8002'")


def test_privileged_and_other_errors() -> None:
    snap = sf.patch(sf.base(), "runtime", ports=(PortState(80, (), errno.EACCES), PortState(8000, (), errno.EADDRNOTAVAIL)))
    found = sf.run(check, snap)
    assert found[0].title == "port 80 needs privileges to bind (ports below 1024 are root's)"
    assert found[1].title == "port 8000 (HTTP) cannot be bound: EADDRNOTAVAIL"


def test_held_by_a_leftover_tritonserver() -> None:
    snap = _taken(_held(name="tritonserver", cmdline=("tritonserver",)), servers=(_server(1, False),))
    found = sf.one(check, snap, Status.ERROR)
    assert "an earlier PyTriton run still running (see `stale-servers`)" in found.detail


def test_held_by_a_live_server_of_the_user() -> None:
    snap = _taken(_held(name="tritonserver", cmdline=("tritonserver",)), servers=(_server(4000, True),))
    found = sf.one(check, snap, Status.WARN)
    assert found.title == "port 8000 (HTTP) is held by a running server started by pid 4000 (python app.py)"
    assert found.fix is not None and found.fix.id == "ports" and found.fix.commands[0].startswith("kill -INT 4000")


def test_free_ports_skips_busy_blocks() -> None:
    assert check.free_ports({9001}) == [9010, 9011, 9012]
    assert check.free_ports(set(), count=2, start=65000) == []
