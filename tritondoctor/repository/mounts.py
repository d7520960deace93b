"""Which mount a path lies on and whether that mount allows execution (/proc/self/mountinfo)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tritondoctor.repository.types import MountFacts

MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class Mount:
    point: str
    options: frozenset[str]  # per-mount options (field 6): noexec lives here


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def read_mounts(path: str = MOUNTINFO) -> tuple[Mount, ...]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return ()
    mounts = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6:
            mounts.append(Mount(_unescape(fields[4]), frozenset(fields[5].split(","))))
    return tuple(mounts)


def mount_of(path: str, mounts: tuple[Mount, ...]) -> Mount | None:
    """The mount that holds `path`: the longest mount point above it, the last mounted on a tie."""
    real = os.path.realpath(path)
    best: Mount | None = None
    for mount in mounts:
        point = mount.point.rstrip("/") or "/"
        inside = real == point or real.startswith(point + "/") or point == "/"
        if inside and (best is None or len(point) >= len(best.point.rstrip("/") or "/")):
            best = mount
    return best


def mount_facts(path: str, mounts: tuple[Mount, ...], want_free: bool = False) -> MountFacts:
    exists = os.path.exists(path)
    mount = mount_of(path, mounts)
    free = None
    if want_free and exists:
        try:
            st = os.statvfs(path)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = None
    return MountFacts(
        path=path,
        mount_point=mount.point if mount else "",
        noexec=bool(mount and "noexec" in mount.options),
        free_bytes=free,
        exists=exists,
    )
