"""Is there room in /dev/shm for the python backend, and is any of it held by dead runs?

How much is needed: each python-backend model instance (every PyTriton model instance is one)
creates one shared-memory region at start, of `shm-default-byte-size`, and grows it by
`shm-growth-byte-size` as request and response tensors pass through it. python_backend's own
defaults are 64 MiB and 64 MiB (src/python_be.cc; its load error says "Each Python backend model
instance requires at least 64MBs of shared memory"); PyTriton 0.7.0 overrides them with 4 MiB and
1 MiB (INITIAL_BACKEND_SHM_SIZE / GROWTH_BACKEND_SHM_SIZE in pytriton/triton.py, read from the
installed file). PyTriton's tensor store also puts every in-flight tensor in /dev/shm, in
segments rounded up to a power of two (pytriton/proxy/data.py). So:
- error below one region: not even the first model instance can start;
- warning below 64 MiB free: python_backend's per-instance default, which is also Docker's
  default /dev/shm; below it a handful of instances, or one batch of large tensors, exhausts it.
"""

from __future__ import annotations

from typing import Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.facts.runtime import RuntimeFacts, ShmFacts, ShmSegment, human_bytes
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.snapshot import Snapshot

ID = "shm"
AREA = "Runtime resources"
ORDER = 73

HEADROOM = 64 * 1024 * 1024


def _grow_fix(kind: str | None) -> FixHint:
    if kind == "kubernetes":
        return FixHint("shm-size", "mount a memory-backed emptyDir at /dev/shm in the pod spec", (
            "# volumes: [{name: dshm, emptyDir: {medium: Memory, sizeLimit: 1Gi}}]",
            "# containers[].volumeMounts: [{name: dshm, mountPath: /dev/shm}]",
        ))
    if kind in ("docker", "podman", "lxc", "container"):
        tool = "podman" if kind == "podman" else "docker"
        return FixHint("shm-size", "restart the container with a larger /dev/shm (or the host's IPC namespace)", (
            f"{tool} run --shm-size=1g ...",
            f"# or: {tool} run --ipc=host ...",
        ))
    return FixHint("shm-size", "enlarge the /dev/shm tmpfs", ("sudo mount -o remount,size=1G /dev/shm",))


def _explain(shm: ShmFacts) -> str:
    growth = f", growing by {human_bytes(shm.growth_bytes)}" if shm.growth_bytes else ""
    return (f"Each python-backend model instance starts with a {human_bytes(shm.region_bytes)} region{growth} "
            f"(from {shm.region_source}); PyTriton's tensor store adds every in-flight tensor, rounded up to a power "
            f"of two. Below {human_bytes(HEADROOM)} free (python_backend's own per-instance default and Docker's "
            "default /dev/shm), a few instances or one large batch fill it.")


def _space(snap: Snapshot, runtime: RuntimeFacts, shm: ShmFacts) -> Finding:
    evidence = {"path": shm.path, "fstype": shm.fstype, "total": shm.total, "free": shm.free,
                "region_bytes": shm.region_bytes, "growth_bytes": shm.growth_bytes, "region_source": shm.region_source,
                "container": snap.system.container}
    if not shm.exists:
        return Finding(ID, Status.ERROR, f"{shm.path} does not exist: the python backend cannot create shared memory",
                       detail=_explain(shm), evidence=evidence,
                       fix=FixHint("shm-mount", "mount a tmpfs at /dev/shm",
                                   ("sudo mkdir -p /dev/shm && sudo mount -t tmpfs -o size=1g tmpfs /dev/shm",)))
    if not shm.writable:
        return Finding(ID, Status.ERROR, f"{shm.path} is not writable: the python backend cannot create shared memory",
                       detail=_explain(shm), evidence=evidence,
                       fix=FixHint("shm-mount", "make /dev/shm a writable tmpfs (mode 1777)",
                                   ("sudo chmod 1777 /dev/shm", "# read-only? sudo mount -o remount,rw /dev/shm")))
    free = shm.free or 0
    size = f"{human_bytes(shm.free)} free of {human_bytes(shm.total)}"
    if free < shm.region_bytes:
        return Finding(ID, Status.ERROR, f"{shm.path} has {size}: not enough for one python-backend instance "
                       f"({human_bytes(shm.region_bytes)})",
                       detail=_explain(shm) + " The load fails with 'Unable to initialize shared memory key ... "
                              "No space left on device'.",
                       evidence=evidence, fix=_grow_fix(snap.system.container))
    if free < HEADROOM:
        return Finding(ID, Status.WARN, f"{shm.path} has only {size}: room for "
                       f"{free // shm.region_bytes} python-backend instance(s) and little for tensors",
                       detail=_explain(shm), evidence=evidence, fix=_grow_fix(snap.system.container))
    return Finding(ID, Status.OK, f"{shm.path}: {size}", detail=_explain(shm), evidence=evidence)


def _stale(segment: ShmSegment, servers_running: bool) -> bool:
    if segment.kind == "pytriton":
        return segment.creator_alive is False
    return not servers_running  # plain Triton's regions carry no pid: stale when no tritonserver runs


def _leftovers(runtime: RuntimeFacts, shm: ShmFacts) -> Finding | None:
    servers_running = any(s.name == "tritonserver" and not s.zombie for s in runtime.servers)
    stale = [s for s in shm.segments if _stale(s, servers_running)]
    if not stale:
        return None
    total = sum(s.size for s in stale)
    names = [f"{shm.path}/{s.name}" for s in stale]
    commands = tuple("rm -f " + " ".join(names[i:i + 4]) for i in range(0, len(names), 4))
    creators = sorted({s.creator_pid for s in stale if s.creator_pid})
    return Finding(
        ID, Status.WARN,
        f"{len(stale)} shared-memory segment(s) left by dead PyTriton/Triton runs hold {human_bytes(total)} of {shm.path}",
        detail=("Named after PyTriton processes that no longer exist (pids " + ", ".join(map(str, creators)) + ")"
                if creators else "python_backend regions while no tritonserver runs")
               + ". A server killed with SIGKILL never removes them. If /dev/shm is shared with other containers "
                 "(--ipc=host), their servers are invisible from here: remove only what is theirs to lose.",
        evidence={"segments": [{"name": s.name, "size": s.size, "creator_pid": s.creator_pid} for s in stale]},
        fix=FixHint("shm-cleanup", "remove the leftover segments", commands),
    )


def run(snap: Snapshot) -> list[Finding]:
    runtime = snap.runtime
    if runtime is None or runtime.shm is None:
        return [Finding(ID, Status.SKIP, "shared-memory facts were not gathered",
                        detail="; ".join(runtime.errors) if runtime else "")]
    findings = [_space(snap, runtime, runtime.shm)]
    leftovers = _leftovers(runtime, runtime.shm)
    if leftovers:
        findings.append(leftovers)
    return findings


SIGNATURES = (
    sig(r"Unable to initialize shared memory key '([^']*)'.*?No space left on device", 10, fast_fail=True,
        cause="/dev/shm is too small for the Python backend's shared-memory region"),
    sig(r"Unable to initialize shared memory key '([^']*)'.*?File exists", 11, fast_fail=True,
        cause="a segment of an earlier, killed server is still in /dev/shm"),
    sig(r"Stub process '([^']+)' is not healthy", 12, fast_fail=True,
        cause="the stub stopped answering; in a container this is usually a small /dev/shm"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    evidence = log_evidence(matches)
    if any("File exists" in m.line for m in matches):
        title = "a shared-memory segment of an earlier, killed server is still there (File exists)"
        fix = FixHint("shm-cleanup", "remove the leftover segments (only those of servers that are gone)",
                      ("tritondoctor check", "ls -la /dev/shm"))
        return Finding(ID, Status.ERROR, title, "", evidence, fix, SMOKE_AREA)
    free = obs.shm_free_bytes // (1024 * 1024) if obs.shm_free_bytes is not None else None
    if any("No space left" in m.line for m in matches):
        title = "/dev/shm is too small for the Python backend (No space left on device)"
    else:
        title = "the Python backend stub stopped answering (not healthy): in a container this is usually a small /dev/shm"
    title += f"; {free} MiB free" if free is not None else ""
    fix = FixHint("shm-size", "give the container more shared memory (each Python model instance needs some)",
                  ("df -h /dev/shm", "# docker: docker run --shm-size=1g ... (or --ipc=host)"))
    return Finding(ID, Status.ERROR, title, "", evidence, fix, SMOKE_AREA)




CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, from_log=from_log, rows=(10, 11, 12),
                  summary="/dev/shm size and leftover segments")
