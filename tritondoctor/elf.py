"""The parts of an ELF file the dynamic loader reads, through pyelftools, cached by file identity.

Never raises for a bad file: `read_elf` returns an `ElfError` value instead, because a corrupt
library on a search path is a finding, not a crash.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from typing import Any

DF_1_NODEFLIB = 0x800
VER_FLG_BASE = 0x1  # <elf.h>; pyelftools itself is imported only on a cache miss (~60 ms)
VER_FLG_WEAK = 0x2
CACHE_FORMAT = 3  # bump when ElfInfo changes shape


@dataclass(frozen=True)
class NeededVersion:
    name: str
    weak: bool = False


@dataclass(frozen=True)
class VersionNeed:
    """One entry of .gnu.version_r: versions this object needs from the file named `file`."""

    file: str
    versions: tuple[NeededVersion, ...]


@dataclass(frozen=True)
class ElfInfo:
    path: str
    elf_class: int  # 32 or 64
    little_endian: bool
    machine: str  # e.g. "EM_X86_64"
    osabi: str
    elf_type: str  # "ET_DYN", "ET_EXEC", ...
    interp: str | None
    soname: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...] | None  # None: no DT_RPATH (distinct from an empty one)
    runpath: tuple[str, ...] | None
    flags_1: int
    auxiliary: tuple[str, ...]
    filters: tuple[str, ...]
    version_needs: tuple[VersionNeed, ...]
    version_defs: tuple[str, ...]  # names defined by .gnu.version_d, the base (soname) entry excluded
    has_dynamic: bool = True
    # DT_NEEDED / DT_AUXILIARY / DT_FILTER in dynamic-section order, as ("needed"|"auxiliary"|
    # "filter", name): the loader walks them in this order, which decides load order.
    dependencies: tuple[tuple[str, str], ...] = ()

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    def compatible_with(self, other: "ElfInfo") -> bool:
        """Would the loader accept this file as a dependency of `other` (class, byte order, machine)?"""
        return (
            self.elf_class == other.elf_class
            and self.little_endian == other.little_endian
            and self.machine == other.machine
        )


@dataclass(frozen=True)
class ElfError:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _split_path_list(value: str) -> tuple[str, ...]:
    return tuple(value.split(":"))


def _parse(path: str, stream: Any) -> ElfInfo | ElfError:
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(stream)
    header = elf.header
    interp = None
    dynamic = None
    for segment in elf.iter_segments():
        kind = segment["p_type"]
        if kind == "PT_INTERP":
            interp = segment.get_interp_name()
        elif kind == "PT_DYNAMIC":
            dynamic = segment
    soname = None
    needed: list[str] = []
    rpath = runpath = None
    flags_1 = 0
    auxiliary: list[str] = []
    filters: list[str] = []
    dependencies: list[tuple[str, str]] = []
    if dynamic is not None:
        # pyelftools decodes NEEDED/SONAME/RPATH/RUNPATH itself; AUXILIARY/FILTER need the table.
        strings = dynamic._get_stringtable()
        for tag in dynamic.iter_tags():
            d_tag = tag.entry.d_tag
            if d_tag == "DT_NEEDED":
                needed.append(tag.needed)
                dependencies.append(("needed", tag.needed))
            elif d_tag == "DT_SONAME":
                soname = tag.soname
            elif d_tag == "DT_RPATH":
                rpath = _split_path_list(tag.rpath)
            elif d_tag == "DT_RUNPATH":
                runpath = _split_path_list(tag.runpath)
            elif d_tag == "DT_FLAGS_1":
                flags_1 = tag.entry.d_val
            elif d_tag == "DT_AUXILIARY":
                auxiliary.append(strings.get_string(tag.entry.d_val))
                dependencies.append(("auxiliary", auxiliary[-1]))
            elif d_tag == "DT_FILTER":
                filters.append(strings.get_string(tag.entry.d_val))
                dependencies.append(("filter", filters[-1]))
    version_needs: list[VersionNeed] = []
    version_defs: list[str] = []
    for section in elf.iter_sections():
        sh_type = section["sh_type"]
        if sh_type == "SHT_GNU_verneed":
            for verneed, auxiliaries in section.iter_versions():
                version_needs.append(
                    VersionNeed(
                        file=verneed.name,
                        versions=tuple(
                            NeededVersion(aux.name, bool(aux["vna_flags"] & VER_FLG_WEAK)) for aux in auxiliaries
                        ),
                    )
                )
        elif sh_type == "SHT_GNU_verdef":
            for verdef, auxiliaries in section.iter_versions():
                if verdef["vd_flags"] & VER_FLG_BASE:
                    continue
                first = next(iter(auxiliaries), None)
                if first is not None:
                    version_defs.append(first.name)
    return ElfInfo(
        path=path,
        elf_class=elf.elfclass,
        little_endian=elf.little_endian,
        machine=str(header["e_machine"]),
        osabi=str(header["e_ident"]["EI_OSABI"]),
        elf_type=str(header["e_type"]),
        interp=interp,
        soname=soname,
        needed=tuple(needed),
        rpath=rpath,
        runpath=runpath,
        flags_1=int(flags_1),
        auxiliary=tuple(auxiliary),
        filters=tuple(filters),
        version_needs=tuple(version_needs),
        version_defs=tuple(version_defs),
        has_dynamic=dynamic is not None,
        dependencies=tuple(dependencies),
    )


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class ElfCache:
    """Parsed ELF facts keyed by file identity (device, inode, size, mtime), in memory and on disk.

    The disk copy lives in $TRITONDOCTOR_CACHE_DIR or $XDG_CACHE_HOME/tritondoctor; set
    TRITONDOCTOR_CACHE_DIR to an empty string to disable it.
    """

    def __init__(self, directory: str | None) -> None:
        self._directory = directory
        self._memory: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._loaded = False
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> "ElfCache":
        configured = os.environ.get("TRITONDOCTOR_CACHE_DIR")
        if configured is not None:
            return cls(configured or None)
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(os.path.join(base, "tritondoctor"))

    @property
    def _file(self) -> str | None:
        return os.path.join(self._directory, f"elf-v{CACHE_FORMAT}.json") if self._directory else None

    def _load(self) -> None:
        self._loaded = True
        if not self._file:
            return
        try:
            with open(self._file, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, dict):
                self._memory.update(data)
        except (OSError, ValueError):
            pass

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if not self._loaded:
                self._load()
            return self._memory.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._memory[key] = value
            self._dirty = True

    def save(self) -> None:
        """Write the disk copy atomically; a cache that cannot be written is silently skipped."""
        with self._lock:
            if not self._dirty or not self._file:
                return
            try:
                os.makedirs(self._directory or ".", exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self._directory, prefix=".elf-cache-")
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(self._memory, fh, separators=(",", ":"))
                os.replace(tmp, self._file)
                self._dirty = False
            except OSError:
                pass


def _to_cacheable(info: ElfInfo | ElfError) -> dict[str, Any]:
    if isinstance(info, ElfError):
        return {"error": info.reason}
    data = asdict(info)
    del data["path"]
    return data


def _from_cacheable(path: str, data: dict[str, Any]) -> ElfInfo | ElfError:
    if "error" in data:
        return ElfError(path, data["error"])
    return ElfInfo(
        path=path,
        elf_class=data["elf_class"],
        little_endian=data["little_endian"],
        machine=data["machine"],
        osabi=data["osabi"],
        elf_type=data["elf_type"],
        interp=data["interp"],
        soname=data["soname"],
        needed=tuple(data["needed"]),
        rpath=tuple(data["rpath"]) if data["rpath"] is not None else None,
        runpath=tuple(data["runpath"]) if data["runpath"] is not None else None,
        flags_1=data["flags_1"],
        auxiliary=tuple(data["auxiliary"]),
        filters=tuple(data["filters"]),
        version_needs=tuple(
            VersionNeed(v["file"], tuple(NeededVersion(n["name"], n["weak"]) for n in v["versions"]))
            for v in data["version_needs"]
        ),
        version_defs=tuple(data["version_defs"]),
        has_dynamic=data["has_dynamic"],
        dependencies=tuple((kind, name) for kind, name in data["dependencies"]),
    )


_default_cache: ElfCache | None = None


def default_cache() -> ElfCache:
    global _default_cache
    if _default_cache is None:
        _default_cache = ElfCache.default()
    return _default_cache


def read_elf(path: str, cache: ElfCache | None = None) -> ElfInfo | ElfError:
    """Read the loader-relevant facts of `path`. Never raises."""
    cache = cache if cache is not None else default_cache()
    try:
        with open(path, "rb") as stream:
            st = os.fstat(stream.fileno())
            key = _identity(st)
            hit = cache.get(key)
            if hit is not None:
                return _from_cacheable(path, hit)
            magic = stream.read(4)
            if magic != b"\x7fELF":
                result: ElfInfo | ElfError = ElfError(path, "not an ELF file")
            else:
                stream.seek(0)
                try:
                    result = _parse(path, stream)
                # pyelftools reports damage through many exception types (ELFError, struct.error,
                # KeyError, ValueError, ...); for a damaged file every one of them means the same.
                except Exception as exc:  # noqa: BLE001
                    result = ElfError(path, f"corrupt or truncated ELF file ({exc.__class__.__name__}: {exc})"[:300])
    except IsADirectoryError:
        return ElfError(path, "is a directory")
    except OSError as exc:
        return ElfError(path, exc.strerror or str(exc))
    cache.put(key, _to_cacheable(result))
    return result
