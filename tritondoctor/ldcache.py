"""/etc/ld.so.cache, read as glibc's loader reads it (elf/dl-cache.c, sysdeps/generic/dl-cache.h).

Formats: the current "glibc-ld.so.cache1.1" (alone, or after the old "ld.so-1.7.0" table in
the compat layout). Entries whose glibc-hwcaps subdirectory is active win over plain entries;
entries for another architecture are ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache"
NEW_VERSION = b"1.1"

FLAG_ELF_LIBC6 = 0x0003
FLAG_X8664_LIB64 = 0x0300
FLAG_AARCH64_LIB64 = 0x0A00
FLAG_TYPE_MASK = 0x00FF
FLAG_REQUIRED_MASK = 0xFF00

# The flags a 64-bit library of this machine carries in the cache (sysdeps/*/dl-cache.h).
REQUIRED_FLAGS = {
    "x86_64": FLAG_ELF_LIBC6 | FLAG_X8664_LIB64,
    "aarch64": FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64,
}

HWCAP_EXTENSION = 1 << 62  # DL_CACHE_HWCAP_EXTENSION: low 32 bits index the hwcaps name table
EXTENSION_MAGIC = 0xEAA42174
EXTENSION_TAG_GLIBC_HWCAPS = 1


class LdCacheError(Exception):
    pass


@dataclass(frozen=True)
class CacheEntry:
    key: str
    value: str
    flags: int
    hwcap: int
    hwcaps_subdir: str | None  # e.g. "x86-64-v3" for a glibc-hwcaps entry


@dataclass
class LdCache:
    path: str
    entries: dict[str, list[CacheEntry]] = field(default_factory=dict)

    def lookup(self, name: str, machine: str, active_hwcaps: tuple[str, ...]) -> str | None:
        """The path the loader takes from the cache for `name`, or None."""
        required = REQUIRED_FLAGS.get(machine)
        best: CacheEntry | None = None
        best_rank = len(active_hwcaps) + 1
        for entry in self.entries.get(name, ()):
            if (entry.flags & FLAG_TYPE_MASK) != FLAG_ELF_LIBC6:
                continue
            if required is not None and entry.flags != required:
                continue
            if entry.hwcaps_subdir is not None:
                if entry.hwcaps_subdir not in active_hwcaps:
                    continue
                rank = active_hwcaps.index(entry.hwcaps_subdir)
            elif entry.hwcap & ~HWCAP_EXTENSION:
                # Legacy hwcap-bit entries (ldconfig no longer writes them); never preferred.
                continue
            else:
                rank = len(active_hwcaps)
            if rank < best_rank:
                best, best_rank = entry, rank
        return best.value if best else None


def _cstring(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if offset < 0 or offset >= len(data) or end < 0:
        raise LdCacheError(f"string offset {offset} outside the file")
    return data[offset:end].decode("utf-8", "surrogateescape")


def _hwcaps_names(data: bytes, new_start: int, extension_offset: int) -> list[str]:
    # Every offset in the new table is relative to its header (`new_start`).
    if not extension_offset or new_start + extension_offset + 8 > len(data):
        return []
    extension_offset += new_start
    magic, count = struct.unpack_from("<II", data, extension_offset)
    if magic != EXTENSION_MAGIC:
        return []
    names: list[str] = []
    for i in range(count):
        tag, _flags, offset, size = struct.unpack_from("<IIII", data, extension_offset + 8 + 16 * i)
        if tag != EXTENSION_TAG_GLIBC_HWCAPS:
            continue
        for j in range(size // 4):
            (string_offset,) = struct.unpack_from("<I", data, new_start + offset + 4 * j)
            names.append(_cstring(data, new_start + string_offset))
    return names


def parse(data: bytes, path: str = "/etc/ld.so.cache") -> LdCache:
    start = 0
    if data.startswith(OLD_MAGIC):
        (nlibs_old,) = struct.unpack_from("<I", data, 12)
        start = 16 + nlibs_old * 12
        start = (start + 7) & ~7  # the new table follows, aligned like struct cache_file_new
    if data[start : start + len(NEW_MAGIC)] != NEW_MAGIC or data[start + 17 : start + 20] != NEW_VERSION:
        raise LdCacheError("not a glibc-ld.so.cache1.1 file")
    nlibs, _len_strings, _flags, extension_offset = struct.unpack_from("<IIB3xI", data, start + 20)
    names = _hwcaps_names(data, start, extension_offset)
    cache = LdCache(path=path)
    base = start + 48
    for i in range(nlibs):
        flags, key, value, _osversion, hwcap = struct.unpack_from("<iIIIQ", data, base + 24 * i)
        subdir = None
        if hwcap & HWCAP_EXTENSION:
            index = hwcap & 0xFFFFFFFF
            subdir = names[index] if index < len(names) else f"#{index}"
        key_s = _cstring(data, start + key)
        entry = CacheEntry(key_s, _cstring(data, start + value), flags, hwcap, subdir)
        cache.entries.setdefault(key_s, []).append(entry)
    return cache


def load(path: str = "/etc/ld.so.cache") -> LdCache | None:
    """The parsed cache, or None when there is none (a loader without a cache skips that step)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    try:
        return parse(data, path)
    except (LdCacheError, struct.error):
        return None
