"""Which libpython the stub loads versus the interpreter's own, with versions read from the files.

The version of a libpython file is read without loading it: from the exported `Py_Version`
constant (PY_VERSION_HEX, CPython >= 3.11), else from the PY_VERSION string in its data
(the linker may tail-merge it into a longer string such as ".../versions/3.11.7", so the match
is anchored on the terminating NUL and restricted to the expected major.minor).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

from tritondoctor.elf import default_cache
from tritondoctor.facts.inputs import NOTHING
from tritondoctor.facts.target import TargetPython
from tritondoctor.loader import Library, ResolvedTree

# A function of the target and the stub's resolution only (`environ` is accepted, not read).
READS = NOTHING

_RELEASE_LEVELS = {0xA: "a", 0xB: "b", 0xC: "rc", 0xF: ""}


@dataclass(frozen=True)
class LibpythonFacts:
    needed: str | None  # the libpython soname the stub asks for
    resolved: Library | None  # what the loader model gives the stub for it
    resolved_version: str | None
    own_path: str | None  # the target interpreter's own libpython (realpath)
    own_version: str | None
    own_dir: str | None  # the directory that holds it, to put on the loader path
    libdir_exists: bool  # sysconfig LIBDIR exists (uv's old "/install/lib" did not)
    same_file: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "needed": self.needed,
            "resolved": self.resolved.path if self.resolved else None,
            "resolved_version": self.resolved_version,
            "how": self.resolved.how if self.resolved else None,
            "own": self.own_path,
            "own_version": self.own_version,
            "libdir": self.own_dir,
        }


def _hex_version(value: int) -> str:
    major, minor, micro = (value >> 24) & 0xFF, (value >> 16) & 0xFF, (value >> 8) & 0xFF
    level, serial = (value >> 4) & 0xF, value & 0xF
    suffix = f"{_RELEASE_LEVELS.get(level, '?')}{serial}" if level != 0xF else ""
    return f"{major}.{minor}.{micro}{suffix}"


def _version_from_symbol(path: str) -> str | None:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        table = elf.get_section_by_name(".gnu.hash") or elf.get_section_by_name(".hash")
        symbol = table.get_symbol("Py_Version") if table is not None else None  # type: ignore[attr-defined]
        if symbol is None or symbol["st_size"] not in (4, 8):  # `const unsigned long Py_Version`
            return None
        address = symbol["st_value"]
        for segment in elf.iter_segments():
            if segment["p_type"] == "PT_LOAD" and segment["p_vaddr"] <= address < segment["p_vaddr"] + segment["p_filesz"]:
                fh.seek(segment["p_offset"] + address - segment["p_vaddr"])
                raw = fh.read(symbol["st_size"])
                return _hex_version(int.from_bytes(raw, "little" if elf.little_endian else "big"))
    return None


def _version_from_strings(path: str, major_minor: str | None) -> str | None:
    with open(path, "rb") as fh:
        data = fh.read()
    prefix = re.escape(major_minor.encode()) if major_minor else rb"3\.\d+"
    pattern = re.compile(rb"(?<![0-9.])(" + prefix + rb"\.\d+(?:(?:a|b|rc)\d+)?\+?)\x00")
    counts = Counter(m.group(1).decode() for m in pattern.finditer(data))
    return counts.most_common(1)[0][0] if counts else None


def libpython_version(path: str, major_minor: str | None = None) -> str | None:
    """CPython version of a libpython file, read statically; cached by file identity."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    cache = default_cache()
    key = f"pyver:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    hit = cache.get(key)
    if hit is not None:
        return hit.get("version")
    try:
        version = _version_from_symbol(path) or _version_from_strings(path, major_minor)
    except Exception:  # noqa: BLE001 - a damaged file simply has no readable version
        version = None
    cache.put(key, {"version": version})
    return version


def _minor_of(soname: str) -> str | None:
    match = re.match(r"libpython(\d+)(?:-[0-9a-f]+)?\.?(\d+)", soname)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def find_own_libpython(target: TargetPython) -> tuple[str | None, bool]:
    """The interpreter's own shared libpython, and whether sysconfig's LIBDIR exists at all."""
    libdir_exists = bool(target.libdir) and os.path.isdir(target.libdir or "")
    names = [n for n in (target.instsoname, f"libpython{target.minor}{target.abiflags}.so.1.0") if n]
    exe_prefix = os.path.dirname(os.path.dirname(os.path.realpath(target.executable)))
    dirs = [d for d in (target.libdir, os.path.join(target.base_prefix, "lib"), os.path.join(exe_prefix, "lib")) if d]
    for directory in dirs:
        for name in names:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return os.path.realpath(candidate), libdir_exists
    return None, libdir_exists


def gather(target: TargetPython | None, stub_tree: ResolvedTree | None, environ: Mapping[str, str]) -> LibpythonFacts | None:
    if target is None:
        return None
    needed = None
    resolved = None
    if stub_tree is not None and stub_tree.libraries is not None:
        main = stub_tree.edges.get(next(iter(stub_tree.edges), ""), [])
        for _kind, name, lib in main:
            if name.startswith("libpython"):
                needed, resolved = name, lib
                break
    own_path, libdir_exists = find_own_libpython(target) if target.enable_shared else (None, bool(target.libdir) and os.path.isdir(target.libdir or ""))
    own_real = own_path
    resolved_real = os.path.realpath(resolved.path) if resolved and resolved.path else None
    same = bool(own_real and resolved_real and os.path.exists(own_real) and os.path.samefile(own_real, resolved_real))
    expected_minor = _minor_of(needed) if needed else target.minor
    return LibpythonFacts(
        needed=needed,
        resolved=resolved,
        resolved_version=libpython_version(resolved_real, expected_minor) if resolved_real else None,
        own_path=own_real,
        own_version=target.version_string if own_real else None,
        own_dir=os.path.dirname(own_real) if own_real else None,
        libdir_exists=libdir_exists,
        same_file=same,
    )
