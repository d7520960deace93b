"""Libraries that do not resolve at all, other than libpython (which has its own check)."""

from __future__ import annotations

from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "libs"
AREA = "Shared libraries"
ORDER = 40


def run(snap: Snapshot) -> list[Finding]:
    if not snap.resolutions:
        return [Finding(ID, Status.SKIP, "no PyTriton binaries to inspect")]
    findings: list[Finding] = []
    total = 0
    for key, tree in snap.resolutions.items():
        total += len(tree.libraries)
        for error in tree.errors:
            if "cannot open shared object file" not in error:
                findings.append(Finding(ID, Status.ERROR, error, evidence={"binary": tree.file}))
        for lib in tree.missing:
            if lib.name.startswith("libpython"):
                continue
            rejected = [f"{r.path}: {r.reason}" for r in lib.rejected]
            findings.append(Finding(
                ID, Status.ERROR,
                f"{lib.name} is not found (needed by {', '.join(lib.needed_by)})",
                detail=("Candidates were rejected: " + "; ".join(rejected)) if rejected else
                       "No directory on the search path holds it.",
                evidence={"binary": tree.file, "name": lib.name, "needed_by": lib.needed_by, "rejected": rejected},
                fix=FixHint("libs", f"install the package that provides {lib.name}, or put its directory on LD_LIBRARY_PATH",
                            (f"# find it: ldconfig -p | grep {lib.name}",)),
            ))
        for warning in tree.warnings:
            findings.append(Finding(ID, Status.WARN, warning, evidence={"binary": tree.file}))
    if not findings:
        findings.append(Finding(ID, Status.OK, f"all {total} libraries of the PyTriton binaries resolve",
                                evidence={k: len(t.libraries) for k, t in snap.resolutions.items()}))
    return findings
