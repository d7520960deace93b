"""Can PyTriton make its workspace under PYTRITON_HOME, run tritonserver from it, and bind its
AF_UNIX sockets there?

PyTriton 0.7.0 creates `$PYTRITON_HOME/workspace_XXXXXXXX` (mkdir -p of PYTRITON_HOME first),
copies `pytriton/tritonserver` (less the unused stubs) into it and executes it from there, and
binds `<model>-data.sock`, `<model>-config.sock` and `<model>_0_<i>-server.sock` in it. A socket
path must fit sockaddr_un.sun_path: ZeroMQ (the `-server.sock` ipc:// endpoints) refuses 108
bytes or more.
"""

from __future__ import annotations

from typing import Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.facts.runtime import AF_UNIX_MAX, WorkspaceFacts, human_bytes
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.snapshot import Snapshot

ID = "workspace"
AREA = "Runtime resources"
ORDER = 70

# Below this many characters for a model name, warn: model names like "text_classifier_v2"
# (18) should fit.
SHORT_NAME_BUDGET = 24


def _move(ws: WorkspaceFacts, why: str) -> FixHint:
    target = ws.fallback_home or "/tmp/pytriton"
    return FixHint("pytriton-home", f"point PYTRITON_HOME at a short, writable, exec-allowed directory ({why})",
                   (f"export PYTRITON_HOME={target}",
                    "# or per server: Triton(workspace=\"/short/new/dir\")  (the directory must not exist yet)"))


def _evidence(ws: WorkspaceFacts) -> dict:
    return {"home": ws.home, "configured_by": ws.configured_by, "existing": ws.existing, "blocker": ws.blocker,
            "writable": ws.writable, "write_error": ws.write_error, "read_only_fs": ws.read_only_fs, "noexec": ws.noexec,
            "mountpoint": ws.mountpoint, "fstype": ws.fstype, "mount_options": list(ws.mount_options),
            "free_bytes": ws.free_bytes, "needed_bytes": ws.needed_bytes, "longest_socket": ws.longest_socket,
            "socket_name_budget": ws.socket_name_budget, "running_as_root": ws.running_as_root}


def run(snap: Snapshot) -> list[Finding]:
    runtime = snap.runtime
    ws = runtime.workspace if runtime else None
    if ws is None:
        return [Finding(ID, Status.SKIP, "workspace facts were not gathered",
                        detail="; ".join(runtime.errors) if runtime else "")]
    evidence = _evidence(ws)
    label = f"PYTRITON_HOME {ws.home}" + {"PYTRITON_HOME": "", "XDG_CACHE_HOME": " (from XDG_CACHE_HOME)"}.get(
        ws.configured_by, " (default)")
    findings: list[Finding] = []
    if ws.blocker:
        findings.append(Finding(ID, Status.ERROR, f"{label} cannot be created: {ws.blocker} is a file, not a directory",
                                detail="PyTriton's PYTRITON_HOME.mkdir(parents=True) fails with FileExistsError or "
                                       "NotADirectoryError before tritonserver is started.",
                                evidence=evidence, fix=_move(ws, "this one is blocked by a file")))
    elif not ws.writable:
        why = "a read-only file system" if ws.read_only_fs else (ws.write_error or "no write permission")
        root = (" Running as root does not help: the file system refuses root too." if ws.running_as_root else "")
        findings.append(Finding(ID, Status.ERROR, f"{label} is not writable ({why} at {ws.existing})",
                                detail="PyTriton creates its workspace there and copies tritonserver into it." + root,
                                evidence=evidence, fix=_move(ws, "this one is not writable")))
    elif ws.noexec:
        findings.append(Finding(ID, Status.ERROR,
                                f"{label} is on a noexec mount ({ws.mountpoint}): the tritonserver copied there cannot run",
                                detail="PyTriton 0.7.0 runs tritonserver and the python-backend stub from the workspace "
                                       "copy, so exec fails with 'Permission denied'.",
                                evidence=evidence, fix=_move(ws, f"{ws.mountpoint} is mounted noexec")))
    elif ws.needed_bytes and ws.free_bytes is not None and ws.free_bytes < ws.needed_bytes:
        findings.append(Finding(ID, Status.ERROR, f"{label} has {human_bytes(ws.free_bytes)} free; each PyTriton "
                                f"server copies {human_bytes(ws.needed_bytes)} there",
                                evidence=evidence, fix=_move(ws, "this disk is full")))
    if ws.socket_name_budget < 1:
        findings.append(Finding(ID, Status.ERROR,
                                f"{label} is too long for PyTriton's sockets: even a one-letter model needs "
                                f"{len(ws.longest_socket.encode())} bytes, the limit is {AF_UNIX_MAX}",
                                detail=f"Longest socket path: {ws.longest_socket}. Binding it fails (ZeroMQ: 'File name "
                                       "too long'; asyncio: 'AF_UNIX path too long').",
                                evidence=evidence, fix=_move(ws, "the path is too long for AF_UNIX sockets")))
    elif ws.socket_name_budget < SHORT_NAME_BUDGET:
        findings.append(Finding(ID, Status.WARN,
                                f"{label} leaves room for model names of at most {ws.socket_name_budget} characters: "
                                "longer ones exceed the AF_UNIX path limit",
                                detail=f"PyTriton binds <workspace>/<model>_0_<i>-server.sock; for model 'm' that is "
                                       f"{ws.longest_socket} ({len(ws.longest_socket.encode())} of {AF_UNIX_MAX} bytes).",
                                evidence=evidence, fix=_move(ws, "a shorter path leaves room for model names")))
    if not findings:
        free = f", {human_bytes(ws.free_bytes)} free" if ws.free_bytes is not None else ""
        findings.append(Finding(ID, Status.OK,
                                f"{label}: writable, exec allowed{free}; model names up to "
                                f"{ws.socket_name_budget} characters fit PyTriton's socket paths",
                                detail=f"Each server copies {human_bytes(ws.needed_bytes)} into a workspace there."
                                if ws.needed_bytes else "",
                                evidence=evidence))
    return findings


SIGNATURES = (
    sig(r'ipc path "([^"]+)" is longer than (\d+) characters', 20, fast_fail=True,
        cause="PYTRITON_HOME is so long that PyTriton's zmq socket paths exceed the Unix socket limit"),
    sig(r"AF_UNIX path too long", 20, fast_fail=True,
        cause="PYTRITON_HOME is so long that PyTriton's zmq socket paths exceed the Unix socket limit"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    path, limit = (matches[0].groups + ("", ""))[:2]
    size = f" ({len(path)} > {limit} characters)" if path and limit else ""
    title = f"PyTriton's socket path is too long for a Unix socket{size}"
    detail = "PyTriton puts its zmq sockets under PYTRITON_HOME; a long home makes every model fail."
    fix = FixHint("pytriton-home", "point PYTRITON_HOME at a short, writable directory", ("export PYTRITON_HOME=/tmp/pytriton",))
    return Finding(ID, Status.ERROR, title, detail, log_evidence(matches), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, from_log=from_log, rows=(20,),
                  summary="PYTRITON_HOME writable, short enough for Unix sockets")
