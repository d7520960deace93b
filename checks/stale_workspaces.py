"""Workspaces left under PYTRITON_HOME by killed PyTriton runs (catalog row 29).

Each start copies ~22 MB of Triton into `$PYTRITON_HOME/workspace_*`; a killed run leaves it.
Hundreds of them fill a home quota (Errno 28 / 122) and then the next copy fails half-way
(PermissionError on workspace_*/tritonserver/bin/tritonserver, a TimeoutError on the sockets).
Live workspaces (a running process uses them) are counted apart and never offered for removal.
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.facts.runtime import human_bytes
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.remedies import fix_command
from tritondoctor.snapshot import Snapshot

ID = "stale-workspaces"
AREA = "Runtime resources"
ORDER = 70


def run(snap: Snapshot) -> list[Finding]:
    scan = snap.workspaces
    if scan is None or scan.error:
        return [Finding(ID, Status.SKIP, "PYTRITON_HOME's workspaces were not scanned",
                        detail=scan.error if scan and scan.error else "")]
    stale, live = scan.stale, scan.live
    evidence = {"home": scan.home,
                "stale": [{"path": w.path, "size": w.size, "age_s": round(w.age_s)} for w in stale],
                "live": [{"path": w.path, "why": w.why_live, "pids": list(w.held_by)} for w in live]}
    live_note = f"; {len(live)} live one(s) in use" if live else ""
    if not stale:
        return [Finding(ID, Status.OK, f"no stale PyTriton workspace under {scan.home}{live_note}", evidence=evidence)]
    total = sum(w.size for w in stale)
    commands = (fix_command(), "# or by hand, only these (no process uses them): rm -rf "
                + " ".join(w.path for w in stale[:3]) + (" ..." if len(stale) > 3 else ""))
    return [Finding(
        ID, Status.WARN,
        f"{len(stale)} stale PyTriton workspace(s) under {scan.home} hold {human_bytes(total)}{live_note}",
        detail="Left by PyTriton runs that were killed before they could clean up (each start copies Triton there). "
               "They fill the disk or quota; the next start then fails copying tritonserver (Errno 28 / 122, "
               "PermissionError on workspace_*/tritonserver/bin/tritonserver). A server running in another container "
               "that shares this directory is invisible from here.",
        evidence=evidence, fix=FixHint("workspace-cleanup", "remove the stale workspaces (never a live one)", commands))]


SIGNATURES = (
    sig(r"PermissionError: .*workspace_\w+/tritonserver/bin/tritonserver", 29, fast_fail=True,
        cause="PyTriton could not run the tritonserver it copied into its workspace: a PYTRITON_HOME that is full, "
              "noexec, or filled by workspaces of killed runs"),
    sig(r"\[Errno (?:28|122)\] (?:No space left on device|Disk quota exceeded).*workspace_", 29, fast_fail=True,
        cause="PYTRITON_HOME is full: each PyTriton start copies ~22 MB of Triton there and killed runs leave theirs"),
    sig(r"TimeoutError.*-config\.sock", 29,
        cause="PyTriton's model proxy never connected to its config socket in the workspace (a full or broken "
              "PYTRITON_HOME)"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(29,),
                  summary="workspace_* under PYTRITON_HOME left by killed runs (live ones told apart)")
