"""Libraries that do not resolve at all, other than libpython (which has its own check)."""

from __future__ import annotations

from typing import Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.snapshot import Snapshot

ID = "libs"
AREA = "Shared libraries"
ORDER = 40


def run(snap: Snapshot) -> list[Finding]:
    if not snap.resolutions:
        return [Finding(ID, Status.SKIP, "no PyTriton binaries to inspect")]
    findings: list[Finding] = []
    total = 0
    missing: dict[str, dict[str, list[str]]] = {}  # name -> {"needed_by": [...], "rejected": [...]}
    for tree in snap.resolutions.values():
        total += len(tree.libraries)
        for error in tree.errors:
            if "cannot open shared object file" not in error:
                findings.append(Finding(ID, Status.ERROR, error, evidence={"binary": tree.file}))
        for lib in tree.missing:
            if lib.name.startswith("libpython"):
                continue
            entry = missing.setdefault(lib.name, {"needed_by": [], "rejected": []})
            entry["needed_by"] += [n for n in lib.needed_by if n not in entry["needed_by"]]
            entry["rejected"] += [f"{r.path}: {r.reason}" for r in lib.rejected if f"{r.path}: {r.reason}" not in entry["rejected"]]
        for warning in tree.warnings:
            findings.append(Finding(ID, Status.WARN, warning, evidence={"binary": tree.file}))
    for name, entry in missing.items():
        findings.append(Finding(
            ID, Status.ERROR,
            f"{name} is not found (needed by {', '.join(entry['needed_by'])})",
            detail=("Candidates were rejected: " + "; ".join(entry["rejected"])) if entry["rejected"] else
                   "No directory on the search path holds it.",
            evidence={"name": name, **entry},
            fix=FixHint("libs", f"install the package that provides {name}, or put its directory on LD_LIBRARY_PATH",
                        (f"# find it: ldconfig -p | grep {name}",)),
        ))
    if not findings:
        findings.append(Finding(ID, Status.OK, f"all {total} libraries of the PyTriton binaries resolve",
                                evidence={k: len(t.libraries) for k, t in snap.resolutions.items()}))
    return findings


SIGNATURES = (
    sig(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", fast_fail=True,
        cause="a library the server, backend or stub links is on no directory the loader searches"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    names = sorted({m.groups[0] for m in matches if m.groups})
    title = "a shared library could not be found: " + ", ".join(names)
    fix = FixHint("libs", "find which directory should provide it and put that on the loader path", ("tritondoctor check",))
    return Finding(ID, Status.ERROR, title, "", log_evidence(matches), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, loader=True, signatures=SIGNATURES, from_log=from_log,
                  summary="any other library that does not resolve")
