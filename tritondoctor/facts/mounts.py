"""The mount table, read from /proc/self/mounts directly (psutil.disk_partitions(all=True) reads
the same file, but importing psutil alone costs ~35-50 ms)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MOUNTS_FILE = "/proc/self/mounts"


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    opts: str


def _unescape(field: str) -> str:
    # /proc/self/mounts escapes space, tab, newline and backslash as octal: \040 \011 \012 \134
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mounts(path: str = MOUNTS_FILE) -> list[Mount]:
    """The mount table, in mount order."""
    mounts = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 4:
                    mounts.append(Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2], parts[3]))
    except OSError:
        pass
    return mounts


def mount_for(path: str, mounts: list[Any]) -> Any:
    """The mount `path` lies on (the longest matching mountpoint, the last mounted)."""
    best = None
    for part in mounts:
        mp = part.mountpoint
        if path == mp or path.startswith(mp.rstrip("/") + "/") or mp == "/":
            if best is None or len(mp) >= len(best.mountpoint):
                best = part  # later entries of the same mountpoint are mounted over earlier ones
    return best
