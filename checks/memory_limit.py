"""Is this process's cgroup (a container's) memory limit too small to start PyTriton? (row 34)

Measured here (2026-12-06, CPU host, nvidia-pytriton 0.7.0, one float32 model, one inference):
peak RSS (VmHWM) of the PyTriton process 79 MiB, tritonserver 38 MiB, the stub 45 MiB and the
model proxy's helper processes 10 + 13 + 38 MiB: 223 MiB together. Below that the OOM killer
ends a start with "exit code -9" and no error; a real model needs its own memory on top.
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.facts.runtime import human_bytes
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "memory-limit"
AREA = "Runtime resources"
ORDER = 75

MEASURED_PEAK = 223 * 1024 * 1024
ERROR_BELOW = 256 * 1024 * 1024  # the measured peak with a little headroom
WARN_BELOW = 1024 * 1024 * 1024  # room for a real model and its tensors


def run(snap: Snapshot) -> list[Finding]:
    memory = snap.host.memory if snap.host else None
    if memory is None:
        return [Finding(ID, Status.SKIP, "cgroup facts were not gathered")]
    evidence = {"limit_bytes": memory.limit_bytes, "file": memory.file, "cgroup_version": memory.version,
                "oom_kills": memory.oom_kills, "measured_peak_bytes": MEASURED_PEAK}
    kills = f"; the OOM killer already struck {memory.oom_kills} time(s) in it" if memory.oom_kills else ""
    if memory.limit_bytes is None:
        return [Finding(ID, Status.OK, "no memory limit on this process's cgroup" + kills, evidence=evidence)]
    limit = human_bytes(memory.limit_bytes)
    fix = FixHint("memory-limit", "raise the memory limit of the container / cgroup",
                  ("# docker: docker run --memory=4g ...; kubernetes: resources.limits.memory",
                   f"cat {memory.file}", "dmesg | grep -i oom  # or memory.events (v2) / memory.oom_control (v1)"))
    detail = (f"Starting PyTriton with one small model peaked at {human_bytes(MEASURED_PEAK)} here (PyTriton, "
              "tritonserver, the stub and the model proxy); over the limit the OOM killer ends the model script with "
              "exit code -9, or the load hangs after 'Starting Python backend stub', with no error.")
    if memory.limit_bytes < ERROR_BELOW:
        return [Finding(ID, Status.ERROR, f"the memory limit {limit} ({memory.file}) is below what PyTriton needs to "
                        f"start" + kills, detail=detail, evidence=evidence, fix=fix)]
    if memory.limit_bytes < WARN_BELOW:
        return [Finding(ID, Status.WARN, f"the memory limit {limit} ({memory.file}) leaves little for a model" + kills,
                        detail=detail, evidence=evidence, fix=fix)]
    return [Finding(ID, Status.WARN if memory.oom_kills else Status.OK, f"memory limit {limit} ({memory.file})" + kills,
                    evidence=evidence, fix=fix if memory.oom_kills else None)]


SIGNATURES = (
    sig(r"exit(?:ed with)? code -9\b", 34,
        cause="a process was killed with SIGKILL, most often by the OOM killer at a container / cgroup memory limit"),
    # The system-wide kernel line and the memory cgroup's own ("Memory cgroup out of memory: ...").
    sig(r"[Oo]ut of memory: Killed process \d+ \((tritonserver|triton_python_b\w*|python\S*)\)", 34,
        cause="the kernel's OOM killer ended a PyTriton process (a memory limit too small)"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(34,),
                  summary="this process's cgroup memory limit against PyTriton's measured start-up peak")
