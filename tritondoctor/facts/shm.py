"""/dev/shm: room for the python backend's shared-memory regions, and segments left behind.

The python backend's regions are named `<prefix><n or uuid>` in /dev/shm, the prefix being
`pytrtion<pid>-<8 hex>` (sic, PyTriton 0.7.0's Triton._shm_prefix) with PyTriton and
`triton_python_backend_shm_region_` with plain Triton; PyTriton asks for `shm-default-byte-size`
INITIAL_BACKEND_SHM_SIZE (4 MiB) and `shm-growth-byte-size` GROWTH_BACKEND_SHM_SIZE (1 MiB),
read here from the installed triton.py.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tritondoctor.facts.inputs import EnvReads
from tritondoctor.facts.mounts import mount_for

if TYPE_CHECKING:
    from tritondoctor.facts.pytriton import PyTritonInstall

SHM_DIR = "/dev/shm"
READS = EnvReads(files=(SHM_DIR,))
PYTHON_BACKEND_SHM_PREFIX = "triton_python_backend_shm_region_"
PYTRITON_SHM_RE = re.compile(r"^pytrtion(\d+)-[0-9a-f]{8}")
# python_backend's BackendState defaults (src/python_be.cc): 64 MiB regions, 64 MiB growth.
PYTHON_BACKEND_DEFAULT_SHM = 64 * 1024 * 1024


@dataclass(frozen=True)
class ShmSegment:
    name: str
    size: int
    kind: str  # "pytriton" or "python_backend"
    creator_pid: int | None = None  # the PyTriton process whose prefix it carries
    creator_alive: bool | None = None


@dataclass(frozen=True)
class ShmFacts:
    path: str
    exists: bool
    fstype: str | None = None
    total: int | None = None
    free: int | None = None
    writable: bool = False
    segments: tuple[ShmSegment, ...] = ()
    region_bytes: int = PYTHON_BACKEND_DEFAULT_SHM  # first region of each python-backend instance
    growth_bytes: int | None = None
    region_source: str = "python_backend default (src/python_be.cc)"

    def for_install(self, install: "PyTritonInstall | None") -> "ShmFacts":
        """The same /dev/shm, with the region sizes of another install (Snapshot.derive)."""
        return dataclasses.replace(self, **_region_fields(install))


def region_config(install: "PyTritonInstall | None") -> tuple[int, int | None, str]:
    if install is not None:
        path = os.path.join(install.package_dir, "triton.py")
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            initial = re.search(r"^INITIAL_BACKEND_SHM_SIZE\s*=\s*(\d+)", text, re.M)
            growth = re.search(r"^GROWTH_BACKEND_SHM_SIZE\s*=\s*(\d+)", text, re.M)
            if initial:
                return (int(initial.group(1)), int(growth.group(1)) if growth else None,
                        f"INITIAL_BACKEND_SHM_SIZE in {path}")
        except OSError:
            pass
        return PYTHON_BACKEND_DEFAULT_SHM, PYTHON_BACKEND_DEFAULT_SHM, (
            f"python_backend default (nvidia-pytriton {install.version} sets no shm-default-byte-size)")
    return PYTHON_BACKEND_DEFAULT_SHM, PYTHON_BACKEND_DEFAULT_SHM, "python_backend default (src/python_be.cc)"


def _region_fields(install: "PyTritonInstall | None") -> dict[str, Any]:
    region, growth, source = region_config(install)
    return dict(region_bytes=region, growth_bytes=growth, region_source=source)


def _segment(entry: os.DirEntry, alive: set[int]) -> ShmSegment | None:  # type: ignore[type-arg]
    kind, creator = None, None
    match = PYTRITON_SHM_RE.match(entry.name)
    if match:
        kind, creator = "pytriton", int(match.group(1))
    elif entry.name.startswith(PYTHON_BACKEND_SHM_PREFIX):
        kind = "python_backend"
    if kind is None:
        return None
    try:
        size = entry.stat(follow_symlinks=False).st_size
    except OSError:
        size = 0
    return ShmSegment(entry.name, size, kind, creator, (creator in alive) if creator else None)


def _segments(path: str, alive: set[int]) -> tuple[ShmSegment, ...]:
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    found = [s for s in (_segment(e, alive) for e in entries) if s is not None]
    return tuple(sorted(found, key=lambda s: s.name))


def gather(path: str, mounts: list[Any], alive: set[int], install: "PyTritonInstall | None") -> ShmFacts:
    """/dev/shm at `path`; `alive` are the pids of live processes (who created which segment)."""
    base: dict[str, Any] = dict(path=path, **_region_fields(install))
    if not os.path.isdir(path):
        return ShmFacts(exists=False, **base)
    total: int | None = None
    free: int | None = None
    read_only = False
    try:
        st = os.statvfs(path)
        total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        read_only = bool(st.f_flag & os.ST_RDONLY)
    except OSError:
        pass
    mount = mount_for(path, mounts)
    return ShmFacts(
        exists=True,
        fstype=mount.fstype if mount else None,
        total=total,
        free=free,
        writable=os.access(path, os.W_OK | os.X_OK) and not read_only,
        segments=_segments(path, alive),
        **base,
    )
