"""The user's LD_LIBRARY_PATH: entries that are empty, missing, repeated, belong to another conda
environment, or hold other copies of libraries the target environment ships.

Only the user's own value (`snap.environ`) is judged: the `nvidia_pytriton.libs` entry PyTriton
appends for tritonserver is not the user's doing. Whether an entry *actually* supplies a library
comes from the snapshot's resolutions of the PyTriton binaries, so a warning becomes an error
only when it changes what tritonserver, the python backend or the stub load.
"""

from __future__ import annotations

import re

from tritondoctor.checks._envpath import (
    LD_VAR,
    Supplied,
    export_without,
    hooks_fix,
    plural,
    sources_of,
    supplied_by_entry,
    where,
)

from tritondoctor.checkspec import CheckSpec
from tritondoctor.facts.conda import CondaFacts, LibraryCopy, PathEntry
from tritondoctor.facts.shellvars import ShellAction
from tritondoctor.findings import Finding, Status
from tritondoctor.snapshot import Snapshot

ID = "ld-library-path"
AREA = "Environment variables"
ORDER = 50

CWD_RISK = (
    "The loader reads an empty entry (a leading, trailing or doubled ':') as the current directory, "
    "and resolves a relative entry against it: every program started with this environment looks for "
    "shared libraries in whatever directory it is started from. That is a security risk (anyone who can "
    "write a lib*.so into that directory runs code as you: library hijacking) and makes what loads "
    "depend on where you start."
)


def run(snap: Snapshot) -> list[Finding]:
    value = snap.environ.get(LD_VAR)
    if value is None:
        return [Finding(ID, Status.OK, "LD_LIBRARY_PATH is not set")]
    facts = snap.conda
    if facts is None:
        return [Finding(ID, Status.SKIP, "LD_LIBRARY_PATH was not inspected (no environment facts)")]
    supplied = supplied_by_entry(snap)
    findings = [
        *_current_directory(snap, facts, value, supplied),
        *_missing(snap, facts, value),
        *_duplicates(snap, facts, value),
    ]
    for entry in facts.entries:
        if entry.duplicate_of is not None:
            continue
        finding = _foreign(snap, facts, entry, value, supplied) or _shadowing(snap, facts, entry, value, supplied)
        if finding is not None:
            findings.append(finding)
    if not findings:
        n = len(facts.entries)
        findings.append(Finding(
            ID, Status.OK,
            f"LD_LIBRARY_PATH ({n} {plural(n, 'entry', 'entries')}) has no empty, missing, repeated or "
            f"foreign-environment entry",
            evidence={"ld_library_path": value, "entries": [e.to_json() for e in facts.entries]},
        ))
    return findings


def _current_directory(
    snap: Snapshot, facts: CondaFacts, value: str, supplied: dict[str, list[Supplied]]
) -> list[Finding]:
    if value == "":
        # glibc ignores an empty LD_LIBRARY_PATH, but PyTriton turns it into ":<its libs>".
        loaded = supplied.get("", [])
        evidence = {"ld_library_path": value, "cwd": snap.cwd, "loaded_from_cwd": [s.to_json() for s in loaded]}
        title = ("LD_LIBRARY_PATH is set but empty: PyTriton appends ':nvidia_pytriton.libs' to it, which adds "
                 "the current directory to tritonserver's library search path")
        return [Finding(
            ID, Status.ERROR if loaded else Status.WARN,
            title + (f", and {_loads(loaded)} from {snap.cwd}" if loaded else ""),
            detail="An empty variable is harmless to the loader, but PyTriton 0.7.0 adds its own entry after a "
                   "':' whenever the variable exists. " + CWD_RISK,
            evidence=evidence,
            fix=hooks_fix(snap, "unset the empty LD_LIBRARY_PATH", now=[f"unset {LD_VAR}"]),
        )]
    risky = [e for e in facts.entries if e.kind in ("empty", "relative")]
    if not risky:
        return []
    loaded = [s for e in risky for s in supplied.get(e.directory, [])]
    described = ", ".join(
        f"an empty entry at position {e.index + 1}" if e.kind == "empty" else f"the relative entry {e.raw!r}"
        for e in risky
    )
    sources = _unguarded_sources(facts, risky)
    edits = [
        f"{where(a)}: write ${{{LD_VAR}:+:${LD_VAR}}} instead of :${LD_VAR} (`{a.text}`)"
        if a.kind == "prepend"
        else f"{where(a)}: write ${{{LD_VAR}:+${LD_VAR}:}} instead of ${LD_VAR}: (`{a.text}`)"
        for a in sources
    ]
    reads = "reads as" if all(e.kind == "empty" for e in risky) else "resolves against"
    title = f"LD_LIBRARY_PATH has {described}, which the loader {reads} the current directory"
    if loaded:
        title = f"{_loads(loaded)} from the current directory {snap.cwd}, through {described} in LD_LIBRARY_PATH"
    return [Finding(
        ID, Status.ERROR if loaded else Status.WARN, title,
        detail=CWD_RISK + (" Likely source: " + "; ".join(where(a) for a in sources) +
                           " (prepends without the ${LD_LIBRARY_PATH:+...} guard, so an unset variable "
                           "leaves a trailing ':')." if sources else ""),
        evidence={
            "ld_library_path": value,
            "cwd": snap.cwd,
            "entries": [e.to_json() for e in risky],
            "loaded_from_cwd": [s.to_json() for s in loaded],
            "sources": [a.to_json() for a in sources],
        },
        fix=hooks_fix(snap, "drop the empty/relative entries from LD_LIBRARY_PATH",
                      now=[_export(facts, value, [e.index for e in risky])], edits=edits),
    )]


def _unguarded_sources(facts: CondaFacts, risky: list[PathEntry]) -> list[ShellAction]:
    """Statements that prepend (append) `$LD_LIBRARY_PATH` without `${...:+}`: with the variable
    unset they leave a trailing (leading) empty entry."""
    last = len(facts.entries) - 1
    trailing = any(e.kind == "empty" and e.index == last for e in risky)
    leading = any(e.kind == "empty" and e.index == 0 for e in risky)
    actions = list(facts.rc_actions) + [
        a for h in facts.hooks for s in h.activate for a in s.ld_library_path
    ]
    guarded = re.compile(r"\$\{%s:\+" % LD_VAR)
    return [
        a for a in actions
        if not guarded.search(a.text)
        and ((trailing and a.kind in ("prepend", "wrap")) or (leading and a.kind in ("append", "wrap")))
    ]


def _missing(snap: Snapshot, facts: CondaFacts, value: str) -> list[Finding]:
    missing = [e for e in facts.entries if e.duplicate_of is None and (e.kind == "unexpanded" or e.is_dir is False)]
    if not missing:
        return []

    def why(e: PathEntry) -> str:
        if e.kind == "unexpanded":
            return f"{e.raw} (a shell variable that was never expanded: single quotes?)"
        return f"{e.raw} (not a directory)" if e.exists else e.raw

    names = ", ".join(why(e) for e in missing)
    edits = [f"{where(a)}: `{a.text}`" for e in missing for a in sources_of(e, facts, snap.environ)]
    return [Finding(
        ID, Status.WARN,
        f"LD_LIBRARY_PATH names {len(missing)} {plural(len(missing), 'directory', 'directories')} that "
        f"{plural(len(missing), 'does', 'do')} not exist: {names}",
        detail="The loader skips them, so nothing resolves differently today, but the setting is stale: whatever "
               "was meant to be found there (a removed environment? an upgraded CUDA toolkit?) is not.",
        evidence={"ld_library_path": value, "entries": [e.to_json() for e in missing]},
        fix=hooks_fix(snap, "drop the directories that do not exist from LD_LIBRARY_PATH",
                      now=[_export(facts, value, [e.index for e in missing])], edits=edits),
    )]


def _duplicates(snap: Snapshot, facts: CondaFacts, value: str) -> list[Finding]:
    repeated = [e for e in facts.entries if e.duplicate_of is not None and e.kind != "empty"]
    if not repeated:
        return []
    by_first: dict[int, int] = {}  # index of the first occurrence -> number of occurrences
    for e in repeated:
        assert e.duplicate_of is not None
        by_first[e.duplicate_of] = by_first.get(e.duplicate_of, 1) + 1
    first = {e.index: e for e in facts.entries}
    listed = ", ".join(f"{first[i].raw} ({n} times)" for i, n in by_first.items())
    sources = [a for i in by_first for a in sources_of(first[i], facts, snap.environ)]
    rc_sources = [a for a in sources if a in facts.rc_actions]
    return [Finding(
        ID, Status.WARN,
        f"LD_LIBRARY_PATH repeats {listed}" + (f": {where(rc_sources[0])} adds it each time it is sourced"
                                               if rc_sources else ""),
        detail="Harmless to the loader (the first copy wins), but a sign that a start-up file or hook prepends "
               "to LD_LIBRARY_PATH every time it runs (a re-sourced ~/.bashrc, a nested shell), so the value "
               "depends on how many times that happened.",
        evidence={"ld_library_path": value, "repeated": [e.to_json() for e in repeated],
                  "sources": [a.to_json() for a in sources]},
        fix=hooks_fix(snap, "keep each LD_LIBRARY_PATH entry once", now=[_export(facts, value, [])],
                      edits=[f"{where(a)}: `{a.text}` (move it to the environment's activation hooks)"
                             for a in rc_sources]),
    )]


def _foreign(
    snap: Snapshot, facts: CondaFacts, entry: PathEntry, value: str, supplied: dict[str, list[Supplied]]
) -> Finding | None:
    if not entry.foreign_conda or facts.target_prefix is None:
        return None
    which = ("the conda base environment" if entry.owner == "base" else "another conda environment") + \
        f" ({entry.conda_prefix})"
    loaded = supplied.get(entry.directory, [])
    shadow_names = {c.name for c in entry.shadows}
    shadowing = [s for s in loaded if s.name in shadow_names]
    sources = sources_of(entry, facts, snap.environ)
    target = facts.target_prefix
    if shadowing:
        status = Status.ERROR
        title = (f"LD_LIBRARY_PATH entry {entry.raw} belongs to {which}: {_loads(shadowing)} from it instead "
                 f"of the target environment's own")
    else:
        status = Status.WARN
        title = f"LD_LIBRARY_PATH entry {entry.raw} belongs to {which}, not to the target environment {target}"
        if loaded:
            title += f"; {_loads(loaded)} from it"
    detail = (f"Libraries in {entry.directory} were built for {entry.conda_prefix}; every program of {target} "
              f"that searches LD_LIBRARY_PATH before its own RUNPATH will load them instead.")
    if entry.shadows:
        detail += f" It holds other copies of {_names(entry.shadows)}, which {target} ships itself."
    if loaded and not shadowing:
        detail += (f" PyTriton's binaries currently take {', '.join(sorted({s.name for s in loaded}))} from it: "
                   f"install those into {target} before dropping the entry.")
    if sources:
        detail += " Put there by: " + "; ".join(f"{where(a)} (`{a.text}`)" for a in sources) + "."
    return Finding(
        ID, status, title,
        detail=detail,
        evidence={
            "entry": entry.to_json(),
            "target_prefix": target,
            "base_prefix": facts.base_prefix,
            "loaded": [s.to_json() for s in loaded],
            "shadowing": [s.to_json() for s in shadowing],
            "sources": [a.to_json() for a in sources],
        },
        fix=hooks_fix(snap, f"take {entry.directory} off LD_LIBRARY_PATH; keep library settings in {target}'s own "
                            "activation hooks", now=[_export(facts, value, _indices_of(facts, entry))],
                      edits=[f"delete {where(a)}: `{a.text}`" for a in sources if a in facts.rc_actions]),
    )


def _shadowing(
    snap: Snapshot, facts: CondaFacts, entry: PathEntry, value: str, supplied: dict[str, list[Supplied]]
) -> Finding | None:
    if not entry.shadows:
        return None
    loaded = supplied.get(entry.directory, [])
    shadow_by_name = {c.name: c for c in entry.shadows}
    shadowing = [s for s in loaded if s.name in shadow_by_name]
    target = facts.target_prefix
    if shadowing:
        first = shadowing[0]
        title = (f"{_loads(shadowing)} from LD_LIBRARY_PATH entry {entry.raw}, not the target environment's own "
                 f"{shadow_by_name[first.name].target_path}")
        status = Status.ERROR
    else:
        title = (f"LD_LIBRARY_PATH entry {entry.raw} holds other copies of libraries the target environment "
                 f"ships ({_names(entry.shadows)})")
        status = Status.WARN
    sources = sources_of(entry, facts, snap.environ)
    return Finding(
        ID, status, title,
        detail=(f"An entry of LD_LIBRARY_PATH is searched before the RUNPATH of every library, so these copies win "
                f"over {target}'s own for any program that does not carry an RPATH to them."
                + (" Put there by: " + "; ".join(where(a) for a in sources) + "." if sources else "")),
        evidence={
            "entry": entry.to_json(),
            "target_prefix": target,
            "loaded": [s.to_json() for s in loaded],
            "shadowing": [s.to_json() for s in shadowing],
            "sources": [a.to_json() for a in sources],
        },
        fix=hooks_fix(snap, f"take {entry.directory} off LD_LIBRARY_PATH (or put it after the environment's own "
                            "library directory)", now=[_export(facts, value, _indices_of(facts, entry))],
                      edits=[f"delete {where(a)}: `{a.text}`" for a in sources if a in facts.rc_actions]),
    )


def _export(facts: CondaFacts, value: str, drop: list[int]) -> str:
    """The command that repairs this shell: drops `drop` and, with them, every entry whose removal
    is always safe (empty, relative, unexpanded, missing, repeated), so that whichever finding's
    command is run, the value comes out clean of those."""
    always = [
        e.index for e in facts.entries
        if e.kind in ("empty", "relative", "unexpanded") or e.is_dir is False or e.duplicate_of is not None
    ]
    return export_without(value, [*drop, *always])


def _indices_of(facts: CondaFacts, entry: PathEntry) -> list[int]:
    return [e.index for e in facts.entries if e.index == entry.index or e.duplicate_of == entry.index]


def _loads(supplied: list[Supplied]) -> str:
    """"stub loads libpython3.11.so.1.0; tritonserver and stub load libstdc++.so.6"."""
    by_binaries: dict[tuple[str, ...], list[str]] = {}
    for s in supplied:
        by_binaries.setdefault(s.binaries, []).append(s.name)
    parts = []
    for binaries, names in by_binaries.items():
        who = binaries[0] if len(binaries) == 1 else ", ".join(binaries[:-1]) + " and " + binaries[-1]
        parts.append(f"{who} {'loads' if len(binaries) == 1 else 'load'} {', '.join(sorted(set(names)))}")
    return "; ".join(parts)


def _names(copies: tuple[LibraryCopy, ...]) -> str:
    names = [c.name for c in copies]
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


CHECK = CheckSpec(ID, AREA, run,
                  summary="empty entries, missing directories, other/base conda envs, duplicates, shadowing entries")
