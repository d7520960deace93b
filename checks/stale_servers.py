"""Are there tritonserver / python-backend stub processes left from earlier runs?

PyTriton 0.7.0 starts tritonserver as a child with PR_SET_PDEATHSIG=SIGTERM
(pytriton/server/triton_server.py), so a server normally dies with its Python process. One that
survives (SIGTERM ignored while it waits up to --exit-timeout-secs, a stub stuck in a model's
finalize, a parent killed with SIGKILL from a notebook) is re-parented and keeps its ports and
shared memory; a server whose parent never waits for it stays a zombie.
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec
from tritondoctor.facts.runtime import ServerProcess
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "stale-servers"
AREA = "Runtime resources"
ORDER = 72


def _cmd(argv: tuple[str, ...], limit: int = 100) -> str:
    text = " ".join(argv) or "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _evidence(proc: ServerProcess) -> dict:
    return {"pid": proc.pid, "name": proc.name, "status": proc.status, "cmdline": list(proc.cmdline),
            "ppid": proc.ppid, "parent_alive": proc.parent_alive, "parent_name": proc.parent_name,
            "parent_cmdline": list(proc.parent_cmdline), "ports": list(proc.ports)}


def _finding(proc: ServerProcess, stubs: list[ServerProcess]) -> Finding:
    evidence = _evidence(proc)
    if stubs:
        evidence["stubs"] = [s.pid for s in stubs]
    holds = f", holding port{'s' * (len(proc.ports) != 1)} {', '.join(map(str, proc.ports))}" if proc.ports else ""
    if proc.zombie:
        what = ("a python-backend stub that exited: one model instance failed or crashed (the tritonserver log "
                "says why)" if proc.name != "tritonserver" else "a tritonserver that exited")
        return Finding(
            ID, Status.WARN,
            f"defunct {proc.name} (pid {proc.pid}): its parent pid {proc.ppid} ({proc.parent_name or '?'}) never reaped it",
            detail=f"A zombie holds no port or memory; it is {what}, under a process that is still running: "
                   f"{_cmd(proc.parent_cmdline)}. It disappears when that process exits.",
            evidence=evidence,
            fix=FixHint("stale-server", "stop (or restart) the parent process that started it",
                        (f"kill {proc.ppid}  # {proc.parent_name or 'parent'}: only if that process may go",)))
    if proc.orphaned:
        pids = " ".join(str(p) for p in [proc.pid] + [s.pid for s in stubs])
        return Finding(
            ID, Status.WARN,
            f"{proc.name} pid {proc.pid} is left running without the process that started it{holds}",
            detail=f"Command: {_cmd(proc.cmdline)}. Its parent is gone (now pid {proc.ppid}); it keeps its ports and "
                   "/dev/shm regions until stopped.",
            evidence=evidence,
            fix=FixHint("stale-server", "stop it (SIGINT lets tritonserver shut down cleanly)",
                        (f"kill -INT {pids}", f"# still there after 30 s: kill -9 {pids}")))
    parent = f"pid {proc.ppid} ({_cmd(proc.parent_cmdline, 60)})"
    return Finding(ID, Status.OK, f"{proc.name} pid {proc.pid} is running, started by {parent}{holds}",
                   detail="Another PyTriton/Triton is running; a second one needs other ports (see `ports`).",
                   evidence=evidence)


def run(snap: Snapshot) -> list[Finding]:
    runtime = snap.runtime
    if runtime is None:
        return [Finding(ID, Status.SKIP, "process facts were not gathered")]
    servers = [p for p in runtime.servers if p.name == "tritonserver"]
    server_pids = {p.pid for p in servers}
    stubs = [p for p in runtime.servers if p.name != "tritonserver"]
    findings = [_finding(p, [s for s in stubs if s.ppid == p.pid]) for p in servers]
    # stubs whose tritonserver is gone (or a zombie) are stale on their own
    findings += [_finding(s, []) for s in stubs if s.ppid not in server_pids or s.zombie]
    if not findings:
        return [Finding(ID, Status.OK, "no tritonserver or python-backend stub process is running")]
    return findings


CHECK = CheckSpec(ID, AREA, run,
                  summary="tritonserver / stub processes left by earlier runs")
