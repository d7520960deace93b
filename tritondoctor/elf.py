"""The parts of an ELF file the dynamic loader reads, through pyelftools, cached by file identity.

Never raises for a bad file: `read_elf` returns an `ElfError` value instead, because a corrupt
library on a search path is a finding, not a crash.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from tritondoctor.cache import USER_CACHE_DIR, JsonCache, UserCacheDir

DF_1_NODEFLIB = 0x800
VER_FLG_BASE = 0x1  # <elf.h>; pyelftools itself is imported only on a cache miss (~60 ms)
VER_FLG_WEAK = 0x2
MAX_CACHED_FILES = 1000  # a check touches ~110 files; the file loads in about 10 ms at this size
CACHE_FORMAT = 4  # bump when ElfInfo changes shape or meaning (4: read through segments only)


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

    def compatible_with(self, other: ElfInfo) -> bool:
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


_MAX_VERSION_ENTRIES = 1 << 16  # a corrupt vn_next / vd_next chain must not loop forever


class _Image:
    """The file as the loader sees it: addresses map to file offsets through PT_LOAD, strings
    come from DT_STRTAB. Section headers are never read, as ld.so never reads them (a library
    truncated after its last segment, or with its section table stripped, still loads)."""

    def __init__(self, stream: Any, loads: list[tuple[int, int, int]], strtab: int | None, strsz: int) -> None:
        self.stream = stream
        self.loads = loads  # (p_vaddr, p_filesz, p_offset)
        self.strtab = strtab
        self.strsz = strsz

    def offset(self, vaddr: int) -> int:
        for start, size, offset in self.loads:
            if start <= vaddr < start + size:
                return offset + vaddr - start
        raise ValueError(f"address {vaddr:#x} lies in no PT_LOAD segment")

    def string(self, index: int) -> str:
        if self.strtab is None:
            raise ValueError("no DT_STRTAB")
        if not 0 <= index < self.strsz:
            raise ValueError(f"string offset {index} outside DT_STRSZ {self.strsz}")
        self.stream.seek(self.strtab + index)
        data: bytes = self.stream.read(min(4096, self.strsz - index))
        end = data.find(b"\0")
        while end < 0 and len(data) < self.strsz - index:
            more = self.stream.read(min(4096, self.strsz - index - len(data)))
            if not more:
                break
            data += more
            end = data.find(b"\0")
        if end < 0:
            raise ValueError(f"unterminated string at offset {index}")
        return data[:end].decode("latin-1")  # as pyelftools decodes


_Load = tuple[int, int, int]  # (p_vaddr, p_filesz, p_offset) of one PT_LOAD


@dataclass
class _Segments:
    """What the program headers give: PT_INTERP's string, PT_DYNAMIC's header, PT_LOAD's map."""

    interp: str | None = None
    dynamic: Any = None
    loads: list[_Load] = field(default_factory=list)


@dataclass
class _Dynamic:
    """The dynamic-section entries that name things, decoded through DT_STRTAB."""

    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: tuple[str, ...] | None = None
    runpath: tuple[str, ...] | None = None
    flags_1: int = 0
    auxiliary: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    dependencies: list[tuple[str, str]] = field(default_factory=list)


def _read_segments(elf: Any, stream: Any) -> _Segments:
    segments = _Segments()
    for i in range(elf.num_segments()):
        program_header = elf._get_segment_header(i)
        kind = program_header["p_type"]
        if kind == "PT_INTERP":
            stream.seek(program_header["p_offset"])
            segments.interp = stream.read(program_header["p_filesz"]).split(b"\0", 1)[0].decode("latin-1")
        elif kind == "PT_DYNAMIC":
            segments.dynamic = program_header
        elif kind == "PT_LOAD":
            segments.loads.append((program_header["p_vaddr"], program_header["p_filesz"], program_header["p_offset"]))
    return segments


def _read_dynamic_tags(structs: Any, stream: Any, dynamic_header: Any) -> list[tuple[str, int]]:
    """(d_tag, d_val) of PT_DYNAMIC in file order, up to DT_NULL."""
    from elftools.common.utils import struct_parse

    tags: list[tuple[str, int]] = []
    if dynamic_header is None:
        return tags
    size = structs.Elf_Dyn.sizeof()
    position, end = dynamic_header["p_offset"], dynamic_header["p_offset"] + dynamic_header["p_filesz"]
    while position + size <= end:
        entry = struct_parse(structs.Elf_Dyn, stream, position)
        if entry["d_tag"] == "DT_NULL":
            break
        tags.append((str(entry["d_tag"]), int(entry["d_val"])))
        position += size
    return tags


_DEPENDENCY_TAGS = {"DT_NEEDED": "needed", "DT_AUXILIARY": "auxiliary", "DT_FILTER": "filter"}


def _decode_dynamic(image: _Image, tags: list[tuple[str, int]]) -> _Dynamic:
    dynamic = _Dynamic()
    lists = {"needed": dynamic.needed, "auxiliary": dynamic.auxiliary, "filter": dynamic.filters}
    for d_tag, value in tags:
        kind = _DEPENDENCY_TAGS.get(d_tag)
        if kind is not None:
            name = image.string(value)
            lists[kind].append(name)
            dynamic.dependencies.append((kind, name))
        elif d_tag == "DT_SONAME":
            dynamic.soname = image.string(value)
        elif d_tag == "DT_RPATH":
            dynamic.rpath = _split_path_list(image.string(value))
        elif d_tag == "DT_RUNPATH":
            dynamic.runpath = _split_path_list(image.string(value))
        elif d_tag == "DT_FLAGS_1":
            dynamic.flags_1 = value
    return dynamic


# Symbol versions through DT_VERNEED / DT_VERDEF, chained by vn_next / vd_next as
# _dl_check_map_versions walks them.


def _read_version_needs(image: _Image, structs: Any, position: int) -> list[VersionNeed]:
    from elftools.common.utils import struct_parse

    version_needs: list[VersionNeed] = []
    for _ in range(_MAX_VERSION_ENTRIES):
        need = struct_parse(structs.Elf_Verneed, image.stream, position)
        versions = _read_needed_versions(image, structs, position + need["vn_aux"])
        version_needs.append(VersionNeed(file=image.string(need["vn_file"]), versions=versions))
        if not need["vn_next"]:
            return version_needs
        position += need["vn_next"]
    raise ValueError("version needs do not end")


def _read_needed_versions(image: _Image, structs: Any, position: int) -> tuple[NeededVersion, ...]:
    from elftools.common.utils import struct_parse

    versions: list[NeededVersion] = []
    for _ in range(_MAX_VERSION_ENTRIES):
        aux = struct_parse(structs.Elf_Vernaux, image.stream, position)
        versions.append(NeededVersion(image.string(aux["vna_name"]), bool(aux["vna_flags"] & VER_FLG_WEAK)))
        if not aux["vna_next"]:
            return tuple(versions)
        position += aux["vna_next"]
    raise ValueError("version needs do not end")


def _read_version_defs(image: _Image, structs: Any, position: int) -> list[str]:
    from elftools.common.utils import struct_parse

    version_defs: list[str] = []
    for _ in range(_MAX_VERSION_ENTRIES):
        definition = struct_parse(structs.Elf_Verdef, image.stream, position)
        if not definition["vd_flags"] & VER_FLG_BASE and definition["vd_cnt"]:
            first = struct_parse(structs.Elf_Verdaux, image.stream, position + definition["vd_aux"])
            version_defs.append(image.string(first["vda_name"]))
        if not definition["vd_next"]:
            return version_defs
        position += definition["vd_next"]
    raise ValueError("version definitions do not end")


def _parse(path: str, stream: Any) -> ElfInfo | ElfError:
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(stream)
    structs = elf.structs
    segments = _read_segments(elf, stream)
    tags = _read_dynamic_tags(structs, stream, segments.dynamic)
    values = dict(tags)  # the last of each tag wins, as in glibc's l_info
    image = _Image(stream, segments.loads, None, values.get("DT_STRSZ", 0))
    if "DT_STRTAB" in values:
        image.strtab = image.offset(values["DT_STRTAB"])
    dynamic = _decode_dynamic(image, tags)
    version_needs: list[VersionNeed] = []
    if "DT_VERNEED" in values:
        version_needs = _read_version_needs(image, structs, image.offset(values["DT_VERNEED"]))
    version_defs: list[str] = []
    if "DT_VERDEF" in values:
        version_defs = _read_version_defs(image, structs, image.offset(values["DT_VERDEF"]))
    return _elf_info(path, elf, segments, dynamic, version_needs, version_defs)


def _elf_info(
    path: str,
    elf: Any,
    segments: _Segments,
    dynamic: _Dynamic,
    version_needs: list[VersionNeed],
    version_defs: list[str],
) -> ElfInfo:
    header = elf.header
    dynamic_header = segments.dynamic
    return ElfInfo(
        path=path,
        elf_class=elf.elfclass,
        little_endian=elf.little_endian,
        machine=str(header["e_machine"]),
        osabi=str(header["e_ident"]["EI_OSABI"]),
        elf_type=str(header["e_type"]),
        interp=segments.interp,
        soname=dynamic.soname,
        needed=tuple(dynamic.needed),
        rpath=dynamic.rpath,
        runpath=dynamic.runpath,
        flags_1=int(dynamic.flags_1),
        auxiliary=tuple(dynamic.auxiliary),
        filters=tuple(dynamic.filters),
        version_needs=tuple(version_needs),
        version_defs=tuple(version_defs),
        # An empty PT_DYNAMIC (separate debug info) counts as none, as in _dl_map_object_from_fd.
        has_dynamic=dynamic_header is not None and dynamic_header["p_filesz"] > 0,
        dependencies=tuple(dynamic.dependencies),
    )


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


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


def elf_cache(directory: str | None | UserCacheDir) -> JsonCache:
    """Parsed ELF facts keyed by file identity (device, inode, size, mtime); None: memory only."""
    return JsonCache(directory, f"elf-v{CACHE_FORMAT}.json", MAX_CACHED_FILES)


_default_cache = elf_cache(USER_CACHE_DIR)


def default_cache() -> JsonCache:
    return _default_cache


def read_elf(path: str, cache: JsonCache | None = None) -> ElfInfo | ElfError:
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
