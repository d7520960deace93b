"""Memory cgroups, v1 and v2: where a process's cgroup is, and what one cgroup directory says
(its limit, its OOM-kill counter). `check` reads its own process's limit (facts/hostlimits.py),
`smoke` the OOM kills of the server it ran (smoke/faults.py)."""

from __future__ import annotations

import os

V1_UNLIMITED = 1 << 62  # v1 reports "no limit" as a page-rounded 2**63-1
LIMIT_FILE = {2: "memory.max", 1: "memory.limit_in_bytes"}
EVENTS_FILE = {2: "memory.events", 1: "memory.oom_control"}  # both hold an `oom_kill N` line


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def cgroup_paths(text: str | None) -> tuple[str | None, str | None]:
    """(the v2 path, the v1 memory controller's path) from the text of /proc/<pid>/cgroup."""
    v2 = v1 = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def as_int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def limit_bytes(directory: str, version: int) -> int | None:
    """The directory's own memory limit; None for none ("max", v1's unlimited) or no file."""
    value = as_int(read_text(os.path.join(directory, LIMIT_FILE[version])))
    return value if value is not None and 0 <= value < V1_UNLIMITED else None


def counters(text: str | None) -> dict[str, int]:
    """`key value` lines (memory.events, memory.oom_control) as a table."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out
