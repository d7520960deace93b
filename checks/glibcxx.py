"""Symbol versions the PyTriton binaries need but the chosen libraries lack (rows 6, 7).

`version `GLIBCXX_3.4.30' not found` means an older libstdc++.so.6 (typically conda's
libstdcxx-ng < 12) was found first; the binaries of nvidia-pytriton 0.7.0 need GLIBCXX_3.4.30
and CXXABI_1.3.13 (GCC 12). GLIBC_* misses mean the operating system itself is too old.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.findings import Finding, FixHint, Status, SymbolVersionNeed
from tritondoctor.gcc_abi import (
    conda_spec,
    is_libstdcxx_version,
    minimum_gcc,
    version_key,
)
from tritondoctor.loader import Library, ResolvedTree
from tritondoctor.observation import Observation
from tritondoctor.snapshot import Snapshot

ID = "glibcxx"
AREA = "Shared libraries"
ORDER = 30


def _library_at(trees: list[ResolvedTree], path: str) -> Library | None:
    for tree in trees:
        for lib in tree.libraries:
            if lib.path == path:
                return lib
    return None


def run(snap: Snapshot) -> list[Finding]:
    if not snap.resolutions:
        return [Finding(ID, Status.SKIP, "no PyTriton binaries to inspect")]
    trees = list(snap.resolutions.values())
    # provider file -> missing version -> requiring files
    misses: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for tree in trees:
        for error in tree.version_errors:
            misses[error.file][error.version].add(error.required_by)
    if not misses:
        checked = sorted({lib.path for t in trees for lib in t.libraries if lib.name.startswith("libstdc++") and lib.path})
        return [Finding(ID, Status.OK, "every GLIBCXX / CXXABI / GLIBC version the PyTriton binaries need is provided",
                        evidence={"libstdcxx": checked})]
    findings: list[Finding] = []
    for provider, versions in sorted(misses.items()):
        lib = _library_at(trees, provider)
        missing = sorted(versions, key=lambda v: (version_key(v) or (v, ())))
        required_by = sorted({r for rs in versions.values() for r in rs})
        how = lib.how if lib else "unknown"
        evidence = {
            "provider": provider,
            "missing": missing,
            "required_by": required_by,
            "how": how,
            "via": lib.via if lib else None,
            "search_dir": lib.search_dir if lib else None,
            "messages": [f"{provider}: version `{v}' not found (required by {r})" for v in missing for r in sorted(versions[v])],
        }
        libstdcxx = [v for v in missing if is_libstdcxx_version(v)]
        glibc = [v for v in missing if v.startswith("GLIBC_")]
        if libstdcxx:
            gcc = minimum_gcc(libstdcxx)
            evidence["min_gcc"] = gcc
            spec = conda_spec(gcc) if gcc else None
            evidence["conda_spec"] = f"libstdcxx-ng>={spec}" if spec else None
            need = f"a libstdc++ from GCC >= {gcc}" if gcc else "a libstdc++ newer than any GCC release known to tritondoctor"
            title = (f"{provider} lacks {', '.join(libstdcxx)} (needed by {len(required_by)} PyTriton "
                     f"{'file' if len(required_by) == 1 else 'files'}); it was found through {how}")
            commands = ["tritondoctor fix"]
            if spec:
                commands.append(f'# or: conda install -n <env> -c conda-forge "libstdcxx-ng>={spec}"')
            if lib and lib.via == "ld_library_path":
                commands.append(f"# or take {lib.search_dir} off LD_LIBRARY_PATH so a newer libstdc++.so.6 is found")
            findings.append(Finding(
                ID, Status.ERROR, title,
                detail=f"The binaries need {need}. An older libstdc++.so.6 found earlier on the search path shadows the newer one.",
                evidence=evidence,
                fix=FixHint("libstdcxx", f"provide {need} ahead of {provider}", tuple(commands)),
                need=SymbolVersionNeed("libstdc++.so.6", tuple(libstdcxx), provider),
            ))
        if glibc:
            findings.append(Finding(
                ID, Status.ERROR, f"{provider} lacks {', '.join(glibc)}: this system's C library is too old for PyTriton",
                detail="glibc cannot be upgraded inside a Python environment; nvidia-pytriton >= 0.3 needs glibc 2.35 "
                       "(Ubuntu 22.04 or newer, or such a container).",
                evidence=evidence,
                fix=FixHint("newer-os", "run on an OS or container with glibc >= 2.35",
                            ("docker run --rm -it ubuntu:22.04  # or any image with glibc >= 2.35",)),
            ))
        other = [v for v in missing if v not in libstdcxx and v not in glibc]
        if other:
            findings.append(Finding(
                ID, Status.ERROR, f"{provider} lacks {', '.join(other)} (found through {how})",
                evidence=evidence,
                fix=FixHint("libs", "put a newer build of this library first on the search path", ()),
            ))
    return findings


SIGNATURES = (
    sig(r"(\S*libstdc\+\+\.so[.\d]*)?:? ?version [`'‘]((?:GLIBCXX|CXXABI)_[\d.]+)['’] not found", 6, 7, fast_fail=True,
        cause="an older libstdc++.so.6 (often a conda env's libstdcxx-ng < 12) is found before the system's newer one"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    first = matches[0]
    library, version = (first.groups + ("", ""))[:2]
    title = f"libstdc++ is too old: {version} not found" + (f" in {library}" if library else "")
    commands = ["tritondoctor check"]
    if obs.interpreter.env_kind == "conda":
        commands.insert(0, "conda install -c conda-forge 'libstdcxx-ng>=12'")
    fix = FixHint("libstdcxx", "load a libstdc++ at least as new as the one tritonserver was built with", tuple(commands))
    detail = ("A library earlier on the loader path (often a conda env's or an LD_LIBRARY_PATH entry) shadows the "
              "system's newer libstdc++.")
    return Finding(ID, Status.ERROR, title, detail, log_evidence(matches), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, loader=True, signatures=SIGNATURES, from_log=from_log, rows=(6, 7),
                  summary="every missing GLIBCXX / CXXABI / GLIBC version in the closure; who shadows the good libstdc++")
