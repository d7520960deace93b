"""Are the HTTP, gRPC and metrics ports free for tritonserver to bind on all addresses?"""

from __future__ import annotations

import errno
from typing import Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.facts.processes import ServerProcess
from tritondoctor.facts.runtime import Listener, PortState
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.snapshot import DEFAULT_PORTS, Snapshot

ID = "ports"
AREA = "Runtime resources"
ORDER = 71

# PyTriton's TritonConfig defaults (pytriton/constants.py): DEFAULT_HTTP_PORT etc.
ROLES = {8000: ("HTTP", "http_port"), 8001: ("gRPC", "grpc_port"), 8002: ("metrics", "metrics_port")}


def free_ports(taken: set[int], count: int = 3, start: int = 9000) -> list[int]:
    """`count` consecutive ports from `start` up that nothing listens on."""
    base = start
    while base < 65000:
        block = list(range(base, base + count))
        if not taken.intersection(block):
            return block
        base += 10
    return []


def _owner_text(listener: Listener) -> str:
    if listener.pid is None:
        return f"a process this user cannot see (listening on {listener.address})"
    cmd = " ".join(listener.cmdline) if listener.cmdline else listener.name or "?"
    if len(cmd) > 120:
        cmd = cmd[:117] + "..."
    return f"pid {listener.pid} ({cmd})"


def _finding(snap: Snapshot, state: PortState, suggestion: list[int]) -> Finding:
    role, kwarg = ROLES.get(state.port, ("", ""))
    label = f"port {state.port}" + (f" ({role})" if role else "")
    pids = sorted({lst.pid for lst in state.listeners if lst.pid})
    evidence = {
        "port": state.port,
        "errno": state.bind_errno,
        "error": errno.errorcode.get(state.bind_errno or 0, str(state.bind_errno)),
        "listeners": [{"address": lst.address, "pid": lst.pid, "name": lst.name, "cmdline": list(lst.cmdline)}
                      for lst in state.listeners],
    }
    config = (f"TritonConfig(http_port={suggestion[0]}, grpc_port={suggestion[1]}, metrics_port={suggestion[2]})"
              if len(suggestion) == 3 else "TritonConfig(http_port=..., grpc_port=..., metrics_port=...)")
    other_ports = f"# or give PyTriton other ports: Triton(config={config})"
    if state.bind_errno == errno.EACCES:
        return Finding(ID, Status.ERROR, f"{label} needs privileges to bind (ports below 1024 are root's)",
                       evidence=evidence,
                       fix=FixHint("ports", "use a port of 1024 or above", (other_ports.removeprefix("# or "),)))
    if state.listeners:
        owners = "; ".join(_owner_text(lst) for lst in state.listeners)
        title = f"{label} is in use by {owners}"
    elif state.bind_errno == errno.EADDRINUSE:
        title = f"{label} is in use (bound by a socket whose owner is not visible here)"
    else:
        title = f"{label} cannot be bound: {errno.errorcode.get(state.bind_errno or 0, state.bind_errno)}"
    server = any((lst.name or "").startswith("tritonserver") for lst in state.listeners)
    detail = ("tritonserver binds 0.0.0.0:%d and exits with 'failed to start ... Address already in use' "
              "(PyTriton then reports the server as not starting)." % state.port)
    if server:
        detail += " The holder is a tritonserver: an earlier PyTriton run still running (see `stale-servers`)."
    commands = [f"kill {pid}" for pid in pids] or [f"sudo ss -ltnp 'sport = :{state.port}'  # find who holds it"]
    commands.append(other_ports)
    if kwarg and len(suggestion) == 3:
        commands.append(f"# ({kwarg} is the {role} port; {', '.join(map(str, suggestion))} are free now)")
    return Finding(ID, Status.ERROR, title, detail=detail, evidence=evidence,
                   fix=FixHint("ports", "stop the process holding the port, or run PyTriton on other ports",
                               tuple(commands)))


def _live_owner(snap: Snapshot, state: PortState) -> "ServerProcess | None":
    """The running server holding the port whose starter is alive: the user's own PyTriton (or
    Triton) server, not a leftover."""
    runtime = snap.runtime
    pids = {lst.pid for lst in state.listeners if lst.pid}
    for server in (runtime.servers if runtime else ()):
        if server.pid in pids and not server.orphaned and not server.zombie:
            return server
    return None


def _in_use_by_live_server(state: PortState, server: "ServerProcess") -> Finding:
    role, _ = ROLES.get(state.port, ("", ""))
    label = f"port {state.port}" + (f" ({role})" if role else "")
    starter = " ".join(server.parent_cmdline) or server.parent_name or f"pid {server.ppid}"
    if len(starter) > 120:
        starter = starter[:117] + "..."
    return Finding(
        ID, Status.WARN,
        f"{label} is held by a running server started by pid {server.ppid} ({starter})",
        detail=(f"{server.name} (pid {server.pid}) listens on it and its parent is alive: that is a server in use, "
                "not a leftover. A second PyTriton on the same ports would fail to bind."),
        evidence={"port": state.port, "server_pid": server.pid, "owner_pid": server.ppid, "owner": starter},
        fix=FixHint("ports", "stop that server from where it was started (never kill its tritonserver child), "
                             "or give the new one other ports",
                    (f"kill -INT {server.ppid}  # the owner: {starter}",
                     "# or: Triton(config=TritonConfig(http_port=..., grpc_port=..., metrics_port=...))")),
    )


def run(snap: Snapshot) -> list[Finding]:
    runtime = snap.runtime
    if runtime is None or not runtime.ports:
        return [Finding(ID, Status.SKIP, "port facts were not gathered",
                        detail="; ".join(runtime.errors) if runtime else "")]
    taken = [s for s in runtime.ports if s.taken]
    if not taken:
        ports = ", ".join(str(s.port) for s in runtime.ports)
        note = "" if tuple(s.port for s in runtime.ports) == DEFAULT_PORTS else " (as asked)"
        return [Finding(ID, Status.OK, f"ports {ports} are free{note}",
                        evidence={"ports": [s.port for s in runtime.ports]})]
    busy = set(runtime.listening_ports) | {s.port for s in taken}
    suggestion = free_ports(busy)
    findings = []
    for state in taken:
        owner = _live_owner(snap, state)
        findings.append(_in_use_by_live_server(state, owner) if owner else _finding(snap, state, suggestion))
    return findings


SIGNATURES = (
    sig(r"Socket '([^']+)' already in use", 13, fast_fail=True, cause="another process holds one of the server's ports"),
    sig(r"[Aa]ddress already in use", 13, fast_fail=True, cause="another process holds one of the server's ports"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    sockets = sorted({m.groups[0] for m in matches if m.groups and m.groups[0]})
    port = sockets[0].rsplit(":", 1)[-1] if sockets else ""
    title = "a server port is already in use" + (f": {', '.join(sockets)}" if sockets else "")
    commands = (f"ss -ltnp 'sport = :{port}'",) if port else ("ss -ltnp",)
    fix = FixHint("ports", "stop the process that holds the port, or give PyTriton other ports "
                           "(TritonConfig(http_port=..., grpc_port=..., metrics_port=...))", commands)
    return Finding(ID, Status.ERROR, title, "", log_evidence(matches, ports=obs.ports), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, from_log=from_log, rows=(13,),
                  summary="the HTTP, gRPC and metrics ports are free to bind")
