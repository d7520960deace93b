"""A static model of glibc's dynamic loader (elf/dl-load.c, elf/dl-deps.c, elf/dl-version.c).

Given a file and an environment it answers what `ld.so` would load, from where and why, and
which symbol versions would be missing, without executing anything. The order of the search
for a name without a slash, as in `_dl_map_object`:

1. an object already loaded under that name or soname (or, once found, the same file);
2. DT_RPATH of the requesting object, then of the object that loaded it, and on up to the
   executable, only when the requesting object has no DT_RUNPATH (DT_RPATH is ignored
   altogether in an object that has DT_RUNPATH);
3. LD_LIBRARY_PATH (':' and ';' separate entries; an empty entry is the current directory);
4. DT_RUNPATH of the requesting object only;
5. /etc/ld.so.cache, then 6. the system directories: both skipped for an object with
   DF_1_NODEFLIB (the cache only for entries under a system directory).

Every directory is tried with its glibc-hwcaps subdirectories first (and, before glibc 2.37,
the legacy hwcaps subdirectories); candidates of the wrong class or machine are skipped.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tritondoctor.elf import ElfError, ElfInfo, VersionNeed, read_elf
from tritondoctor.ldenv import LoaderEnv

ELF_MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}
E_MACHINE_NUMBERS = {"x86_64": 62, "aarch64": 183}
DF_1_PIE = 0x08000000
VDSO_NAMES = ("linux-vdso.so.1", "linux-vdso64.so.1", "linux-vdso32.so.1", "linux-gate.so.1")

# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    path: str
    reason: str


@dataclass
class Library:
    """One object in the closure (or a name that did not resolve: path None)."""

    name: str
    path: str | None
    needed_by: list[str] = field(default_factory=list)
    how: str = ""
    via: str = ""  # main, preload, loaded, direct, rpath, ld_library_path, runpath, cache, default
    search_dir: str | None = None  # the directory entry that gave it
    rejected: list[Rejected] = field(default_factory=list)
    optional: bool = False  # an auxiliary filter: missing is not an error
    info: ElfInfo | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "needed_by": list(self.needed_by),
            "how": self.how,
            "via": self.via,
            "search_dir": self.search_dir,
            "rejected": [{"path": r.path, "reason": r.reason} for r in self.rejected],
        }


@dataclass(frozen=True)
class VersionError:
    version: str
    file: str  # the object that lacks the version
    required_by: str
    library: str = ""  # the name the requiring object asked for (its .gnu.version_r file)

    def message(self) -> str:
        return f"{self.file}: version `{self.version}' not found (required by {self.required_by})"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "file": self.file, "required_by": self.required_by}


@dataclass
class ResolvedTree:
    file: str
    libraries: list[Library] = field(default_factory=list)
    version_errors: list[VersionError] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # requester path -> [(kind, requested name, resolved Library)] in dynamic-section order
    edges: dict[str, list[tuple[str, str, Library]]] = field(default_factory=dict)

    def find(self, name: str) -> Library | None:
        for lib in self.libraries:
            if lib.name == name:
                return lib
        for lib in self.libraries:
            if lib.info is not None and lib.info.soname == name:
                return lib
        return None

    @property
    def missing(self) -> list[Library]:
        return [lib for lib in self.libraries if lib.path is None and not lib.optional]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.version_errors and not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "libraries": [lib.to_json() for lib in self.libraries],
            "version_errors": [e.to_json() for e in self.version_errors],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------------------------


@dataclass
class _Object:
    """A loaded object (glibc's struct link_map, the parts that matter here)."""

    library: Library
    info: ElfInfo | None
    path: str  # l_name: the path it was opened by, not normalised
    origin: str | None  # what $ORIGIN expands to for this object
    names: set[str]  # l_libname: names it was requested by (+ soname once matched by it)
    identity: tuple[int, int] | None
    loader: _Object | None


class _LoadFailure(Exception):
    """The loader signals an error for a candidate file (open_verify, _dl_map_object_from_fd):
    unlike a missing file or one of another class, this ends the whole load."""

    def __init__(self, path: str, reason: str, after_open: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path  # the file the loader fails on
        self.reason = reason
        # ld.so names the candidate path in errors of open_verify, the requested name in those
        # of _dl_map_object_from_fd (after the file was opened and verified).
        self.after_open = after_open
        self.objname = path


class _EndOfList(Exception):
    """open_path stops searching the current list of directories (the next source is tried)."""


_EHDR_SIZE = 64  # sizeof (Elf64_Ehdr)
_PHDR_SIZE = 56  # sizeof (Elf64_Phdr)
_ELFOSABI_SYSV, _ELFOSABI_GNU = 0, 3
_LIBC_ABI_MAX = 4  # x86_64 / aarch64 Linux: DEFAULT, UNIQUE, IFUNC, ABSOLUTE (libc-abis)


SKIP, END_OF_LIST, FATAL = "skip", "end-of-list", "fatal"


def open_verify(path: str, machine: str) -> tuple[str, str] | None:
    """glibc's open_verify (elf/dl-load.c) for a 64-bit little-endian loader, on the file itself.

    None: the loader takes the file. Otherwise (kind, why):
    SKIP: it passes over the file and searches on (absent or unreadable, another ELF class or
    machine; `why` is "" for a file that is simply absent);
    END_OF_LIST: the open failed with an errno other than ENOENT / EACCES (a symlink loop, say):
    open_path gives up on the rest of that search list and the next source is tried;
    FATAL: it signals `why` and the whole load fails, whatever later directories hold.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return SKIP, ""
        return (SKIP if exc.errno == errno.EACCES else END_OF_LIST), f"cannot open: {exc.strerror}"
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return SKIP, "not a regular file"  # not modelled further: ld.so would block or fail to open it
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        return (SKIP if exc.errno in (errno.ENOENT, errno.EACCES) else END_OF_LIST), f"cannot open: {exc.strerror}"
    try:
        header = b""
        try:
            while len(header) < _EHDR_SIZE:
                chunk = os.read(fd, _EHDR_SIZE - len(header))
                if not chunk:
                    break
                header += chunk
        except OSError as exc:  # a directory: EISDIR
            return FATAL, f"cannot read file data: {exc.strerror}"
    finally:
        os.close(fd)
    if len(header) < _EHDR_SIZE:
        return FATAL, "file too short"
    if header[:4] != b"\x7fELF":
        return FATAL, "invalid ELF header"
    if header[4] != 2:
        return SKIP, f"wrong ELF class: ELFCLASS{32 if header[4] == 1 else header[4]}"
    if header[5] != 1:
        return FATAL, "ELF file data encoding not little-endian"
    if header[6] != 1:
        return FATAL, "ELF file version ident does not match current one"
    osabi, abiversion = header[7], header[8]
    if osabi not in (_ELFOSABI_SYSV, _ELFOSABI_GNU):
        return FATAL, "ELF file OS ABI invalid"
    if not (abiversion == 0 or (osabi == _ELFOSABI_GNU and abiversion < _LIBC_ABI_MAX)):
        return FATAL, "ELF file ABI version invalid"
    if any(header[9:16]):
        return FATAL, "nonzero padding in e_ident"
    e_type = int.from_bytes(header[16:18], "little")
    e_machine = int.from_bytes(header[18:20], "little")
    if int.from_bytes(header[20:24], "little") != 1:
        return FATAL, "ELF file version does not match current one"
    if e_machine != E_MACHINE_NUMBERS.get(machine, e_machine):
        return SKIP, f"wrong machine (e_machine {e_machine})"
    if e_type not in (2, 3):  # ET_EXEC, ET_DYN
        return FATAL, "only ET_DYN and ET_EXEC can be loaded"
    if int.from_bytes(header[54:56], "little") != _PHDR_SIZE:
        return FATAL, "ELF file's phentsize not the expected size"
    phoff, phnum = int.from_bytes(header[32:40], "little"), int.from_bytes(header[56:58], "little")
    if phoff + phnum * _PHDR_SIZE > st.st_size:
        return FATAL, "cannot read file data"
    return None


# ---------------------------------------------------------------------------------------------
# Search lists: DT_RPATH / LD_LIBRARY_PATH / DT_RUNPATH entries and the directories they name
# ---------------------------------------------------------------------------------------------

_DST_TOKENS = ("ORIGIN", "LIB", "PLATFORM")
_NAME_MAX = 255  # bytes in one path component (Linux); a longer name fails with ENAMETOOLONG
_PATH_MAX = 4096  # bytes in a path, its NUL included


def _token_at(text: str, i: int) -> tuple[str, int] | None:
    """The dynamic string token that the '$' at text[i] starts, and the index after it."""
    for token in _DST_TOKENS:
        for form in (token, "{" + token + "}"):
            if not text.startswith(form, i + 1):
                continue
            end = i + 1 + len(form)
            # A bare token must end at a non-identifier character (glibc's is_dst).
            if form == token and end < len(text) and (text[end].isalnum() or text[end] == "_"):
                continue
            return token, end
    return None


def expand_dst(text: str, origin: str | None, env: LoaderEnv) -> str | None:
    """Dynamic string tokens ($ORIGIN, $LIB, $PLATFORM); None when $ORIGIN is unknown."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        found = _token_at(text, i)
        if found is None:
            out.append("$")
            i += 1
            continue
        token, i = found
        if token == "ORIGIN":
            if origin is None:
                return None
            out.append(origin)
        else:
            out.append(env.dst_lib if token == "LIB" else env.platform)
    return "".join(out)


class _Candidate(NamedTuple):
    """One place a file is looked for: prefix + name, in the subdirectory `listing` of the
    search-list entry `directory` (`plain`: the entry itself, not a hwcaps subdirectory)."""

    directory: str
    prefix: str
    listing: str
    plain: bool


def _listed_size(name: str) -> int | None:
    """The size in bytes of `name` where a directory listing can stand in for trying it (a
    plain file name, short enough that only ENOENT, passed over silently, can come of its
    absence); None where only trying it tells."""
    if not name or "/" in name or name in (".", ".."):
        return None
    try:
        size = len(os.fsencode(name))
    except UnicodeError:
        return None
    return size if size <= _NAME_MAX else None


class _Listing(NamedTuple):
    names: frozenset[str]
    room: int  # the longest name whose path in this directory stays under PATH_MAX


class _Directories:
    """What the search learns about directories, read once per resolution: whether each
    exists (ld.so, too, marks a missing one and never tries it again) and, as a shortcut of
    the model only, which names each holds, so that a long list of directories costs one
    look at each rather than one per library."""

    def __init__(self, env: LoaderEnv) -> None:
        self.env = env
        self._is_dir: dict[str, bool] = {}
        self._listings: dict[str, _Listing | None] = {}
        self._candidates: dict[str, tuple[_Candidate, ...]] = {}

    def abs(self, path: str) -> str:
        return path if path.startswith("/") else os.path.join(self.env.cwd, path)

    def is_dir(self, path: str) -> bool:
        known = self._is_dir.get(path)
        if known is None:
            known = self._is_dir[path] = os.path.isdir(self.abs(path) if path else self.env.cwd)
        return known

    def candidates(self, directory: str) -> tuple[_Candidate, ...]:
        known = self._candidates.get(directory)
        if known is None:
            known = self._candidates[directory] = tuple(self._find_candidates(directory))
        return known

    def _find_candidates(self, directory: str) -> Iterator[_Candidate]:
        """The glibc-hwcaps subdirectories, best first, then the legacy hwcaps subdirectories
        (the entry itself is the last of those, "")."""
        if directory and not self.is_dir(directory):
            return
        base = directory if directory in ("", "/") else directory + "/"
        for sub in self.env.hwcaps_subdirs:
            sub_dir = f"{base}glibc-hwcaps/{sub}"
            if self.is_dir(sub_dir):
                yield _Candidate(directory, sub_dir + "/", sub_dir, False)
        for sub in self.env.legacy_subdirs:
            if not sub:
                yield _Candidate(directory, base, directory, True)
            elif self.is_dir(f"{base}{sub}"):
                yield _Candidate(directory, f"{base}{sub}/", f"{base}{sub}", False)

    def may_hold(self, directory: str, name: str, size: int) -> bool:
        """False only when `name` (of `size` bytes, see _listed_size) is certainly absent."""
        if directory in self._listings:
            listing = self._listings[directory]
        else:
            listing = self._listings[directory] = self._read_listing(directory)
        return listing is None or name in listing.names or size > listing.room

    def _read_listing(self, directory: str) -> _Listing | None:
        # None (try every name) where a listing could disagree with trying the name: a
        # directory that cannot be searched fails with EACCES, which ld.so reports.
        full = self.abs(directory) if directory else self.env.cwd
        try:
            if not os.access(full, os.X_OK):
                return None
            names = frozenset(os.listdir(full))
            room = _PATH_MAX - 2 - len(os.fsencode(full))
        except (OSError, UnicodeError, ValueError):
            return None
        return _Listing(names, room)


class _SearchLists:
    """Search lists as ld.so builds each once (_dl_init_paths, decompose_rpath): tokens
    expanded, trailing slashes dropped, duplicates removed, then compiled into the places
    to look, nonexistent directories left out."""

    def __init__(self, env: LoaderEnv, dirs: _Directories) -> None:
        self.env = env
        self.dirs = dirs
        self._memo: dict[tuple[tuple[str, ...], str | None], tuple[_Candidate, ...]] = {}
        self._ld_library_path: tuple[str | None, tuple[_Candidate, ...]] | None = None
        self._system: tuple[_Candidate, ...] | None = None

    def of_object(self, entries: tuple[str, ...], obj: _Object | None) -> tuple[_Candidate, ...]:
        """A DT_RPATH or DT_RUNPATH list of `obj` ($ORIGIN is its directory)."""
        key = (entries, obj.origin if obj is not None else None)
        known = self._memo.get(key)
        if known is None:
            known = self._memo[key] = self._compile(self.directories(entries, key[1]))
        return known

    def ld_library_path(self, origin: str | None) -> tuple[_Candidate, ...]:
        """LD_LIBRARY_PATH (':' and ';' separate entries), split and expanded once."""
        if self._ld_library_path is None or self._ld_library_path[0] != origin:
            entries = re.split(r"[:;]", self.env.ld_library_path or "")
            self._ld_library_path = (origin, self._compile(self.directories(entries, origin)))
        return self._ld_library_path[1]

    def system(self) -> tuple[_Candidate, ...]:
        if self._system is None:
            self._system = self._compile(self.env.system_dirs)
        return self._system

    def directories(self, entries: Iterable[str], origin: str | None) -> tuple[str, ...]:
        dirs: dict[str, None] = {}  # ordered, first occurrence wins
        for entry in entries:
            if entry:
                expanded = expand_dst(entry, origin, self.env)
                if not expanded:
                    continue
                expanded = expanded.rstrip("/") or "/"
            else:
                expanded = ""  # the current directory
            dirs.setdefault(expanded, None)
        return tuple(dirs)

    def _compile(self, directories: Iterable[str]) -> tuple[_Candidate, ...]:
        return tuple(c for directory in directories for c in self.dirs.candidates(directory))


# ---------------------------------------------------------------------------------------------
# _dl_map_object's search for a name without a slash
# ---------------------------------------------------------------------------------------------

_Found = tuple[str, ElfInfo, str]  # (path as the loader opened it, its facts, the search-list entry)
_Hit = tuple[_Found, str, str]  # (found, via, how)


class _Search:
    """Where the loader finds a file for a name, and whether it takes the file it finds."""

    def __init__(self, env: LoaderEnv) -> None:
        self.env = env
        self.dirs = _Directories(env)
        self.lists = _SearchLists(env, self.dirs)
        self.main: _Object | None = None

    def abs(self, path: str) -> str:
        return self.dirs.abs(path)

    def open(self, path: str, requester: _Object | None, rejected: list[Rejected]) -> ElfInfo | None:
        """open_verify: the file exists and is an ELF object this process could load.

        None when the loader passes over the candidate and searches on; raises _LoadFailure
        when the loader would signal an error instead (which ends the whole load).
        """
        full = self.abs(path)
        verdict = open_verify(full, self.env.machine)
        if verdict is not None:
            kind, reason = verdict
            if kind == FATAL:
                raise _LoadFailure(full, reason)
            if reason:
                rejected.append(Rejected(full, reason))
            if kind == END_OF_LIST:
                raise _EndOfList()
            return None
        info = read_elf(full)
        if isinstance(info, ElfError):
            # Its header passed open_verify, so the loader commits to this file and fails on it.
            raise _LoadFailure(full, info.reason, after_open=True)
        if self._wrong_target(full, info, requester, rejected):
            return None
        _check_loadable(full, info)
        return info

    def _wrong_target(self, full: str, info: ElfInfo, requester: _Object | None, rejected: list[Rejected]) -> bool:
        reference = requester.info if requester is not None and requester.info is not None else None
        if reference is not None and not info.compatible_with(reference):
            rejected.append(
                Rejected(full, f"wrong ELF class or machine (ELFCLASS{info.elf_class}, {info.machine})")
            )
            return True
        if reference is None and info.machine != ELF_MACHINES.get(self.env.machine, info.machine):
            rejected.append(Rejected(full, f"wrong machine ({info.machine})"))
            return True
        return False

    def in_list(
        self, candidates: tuple[_Candidate, ...], name: str, requester: _Object | None, rejected: list[Rejected]
    ) -> _Found | None:
        size = _listed_size(name)
        for candidate in candidates:
            if size is not None and not self.dirs.may_hold(candidate.listing, name, size):
                continue  # trying it would fail with ENOENT, which the loader passes over
            path = candidate.prefix + name
            try:
                info = self.open(path, requester, rejected)
            except _EndOfList:
                # open_path looks at errno once per directory, after its last (plain) try.
                if candidate.plain:
                    return None
                continue
            if info is not None:
                return path, info, candidate.directory
        return None

    def search(
        self, name: str, requester: _Object | None, rejected: list[Rejected]
    ) -> tuple[_Found | None, str, str]:
        req_info = requester.info if requester else None
        hit: _Hit | None = None
        if req_info is None or req_info.runpath is None:
            hit = self._in_rpaths(name, requester, rejected)
        if hit is None and self.env.ld_library_path:  # set but empty: ignored (_dl_init_paths)
            hit = self._in_ld_library_path(name, requester, rejected)
        if hit is None and req_info is not None and req_info.runpath is not None:
            found = self.in_list(self.lists.of_object(req_info.runpath, requester), name, requester, rejected)
            if found:
                hit = found, "runpath", f"RUNPATH of {os.path.basename(requester.path) if requester else '?'}"
        nodeflib = self._nodeflib(requester)
        if hit is None:
            hit = self._in_cache(name, requester, rejected, nodeflib)
        if hit is None and not nodeflib:
            found = self.in_list(self.lists.system(), name, requester, rejected)
            if found:
                hit = found, "default", f"system default directory {found[2]}"
        return hit if hit is not None else (None, "", "")

    def _in_rpaths(self, name: str, requester: _Object | None, rejected: list[Rejected]) -> _Hit | None:
        """DT_RPATH of the requester, of the object that loaded it, and so on, then of the
        main object; an object with DT_RUNPATH contributes none."""
        seen_main = False
        chain = requester
        while chain is not None:
            rpath = chain.info.rpath if chain.info and chain.info.runpath is None else None
            if rpath is not None:
                found = self.in_list(self.lists.of_object(rpath, chain), name, requester, rejected)
                if found:
                    return found, "rpath", f"RPATH of {os.path.basename(chain.path)}"
                seen_main |= chain is self.main
            chain = chain.loader
        main = self.main
        if not seen_main and main is not None and main.info and main.info.runpath is None and main.info.rpath:
            found = self.in_list(self.lists.of_object(main.info.rpath, main), name, requester, rejected)
            if found:
                return found, "rpath", f"RPATH of {os.path.basename(main.path)}"
        return None

    def _in_ld_library_path(self, name: str, requester: _Object | None, rejected: list[Rejected]) -> _Hit | None:
        # $ORIGIN in LD_LIBRARY_PATH is the main program's directory.
        candidates = self.lists.ld_library_path(self.main.origin if self.main is not None else None)
        found = self.in_list(candidates, name, requester, rejected)
        if found is None:
            return None
        return found, "ld_library_path", f"LD_LIBRARY_PATH entry {found[2] or '(empty: current directory)'}"

    def _nodeflib(self, requester: _Object | None) -> bool:
        if requester is not None:
            return bool(requester.info and requester.info.nodeflib)
        return bool(self.main and self.main.info and self.main.info.nodeflib)

    def _in_cache(
        self, name: str, requester: _Object | None, rejected: list[Rejected], nodeflib: bool
    ) -> _Hit | None:
        """/etc/ld.so.cache; with DF_1_NODEFLIB, not its entries under a system directory."""
        env = self.env
        if env.cache is None:
            return None
        cached = env.cache.lookup(name, env.machine, env.hwcaps_subdirs)
        if cached is None or (nodeflib and any(cached.startswith(d.rstrip("/") + "/") for d in env.system_dirs)):
            return None
        try:
            info = self.open(cached, requester, rejected)
        except _EndOfList:
            return None
        if info is None:
            return None
        return (cached, info, os.path.dirname(cached)), "cache", "ld.so.cache"


def _check_loadable(full: str, info: ElfInfo) -> None:
    """What _dl_map_object_from_fd refuses in anything but the program itself."""
    if info.elf_type not in ("ET_DYN", "ET_EXEC"):
        raise _LoadFailure(full, "only ET_DYN and ET_EXEC can be loaded")
    if info.elf_type == "ET_EXEC":
        raise _LoadFailure(full, "cannot dynamically load executable", after_open=True)
    if not info.has_dynamic:
        raise _LoadFailure(full, "object file has no dynamic section", after_open=True)
    if info.flags_1 & DF_1_PIE:
        raise _LoadFailure(full, "cannot dynamically load position-independent executable", after_open=True)


# ---------------------------------------------------------------------------------------------
# _dl_map_object: the list of loaded objects, reused by name, soname or file identity
# ---------------------------------------------------------------------------------------------


class _Namespace:
    def __init__(self, search: _Search) -> None:
        self.search = search
        self.objects: list[_Object] = []

    def already_loaded(self, name: str) -> _Object | None:
        for obj in self.objects:
            if obj.library.path is None:
                continue  # trace mode's stand-in for a missing library is never matched
            if name in obj.names or name == obj.path:
                return obj
            if obj.info is not None and obj.info.soname == name:
                obj.names.add(name)
                return obj
        return None

    def map_object(self, name: str, requester: _Object | None, kind: str) -> tuple[_Object, bool]:
        """Find or load `name` for `requester`; returns (object, newly loaded)."""
        try:
            return self._map_object(name, requester, kind)
        except _LoadFailure as failure:
            if failure.after_open:
                failure.objname = name
            raise

    def _map_object(self, name: str, requester: _Object | None, kind: str) -> tuple[_Object, bool]:
        loaded = self.already_loaded(name)
        if loaded is not None:
            return loaded, False
        rejected: list[Rejected] = []
        found, via, how = self._find(name, requester, rejected)
        library = Library(
            name=name,
            path=None,
            via=via,
            how=how if found else "not found",
            search_dir=found[2] if found is not None and via != "direct" else None,
            rejected=rejected,
            optional=kind == "auxiliary",
        )
        if found is None:
            return self._add(_Object(library, None, "", None, {name}, None, requester)), True
        full = self.search.abs(found[0])
        identity = _identity(full)
        same = self._by_identity(identity, name)
        if same is not None:
            return same, False
        library.path, library.info = full, found[1]
        return self._add(_Object(library, found[1], full, os.path.dirname(full), {name}, identity, requester)), True

    def _find(self, name: str, requester: _Object | None, rejected: list[Rejected]) -> tuple[_Found | None, str, str]:
        if "/" not in name:
            return self.search.search(name, requester, rejected)
        expanded = expand_dst(name, requester.origin if requester is not None else None, self.search.env)
        if expanded is None:
            return None, "", ""
        try:
            info = self.search.open(expanded, requester, rejected)
        except _EndOfList:
            return None, "", ""
        if info is None:
            return None, "", ""
        return (expanded, info, os.path.dirname(expanded)), "direct", "path named in the dependency"

    def _by_identity(self, identity: tuple[int, int] | None, name: str) -> _Object | None:
        """The same file already loaded under another name: it gains this name too."""
        if identity is None:
            return None
        for obj in self.objects:
            if obj.identity == identity:
                obj.names.add(name)
                return obj
        return None

    def _add(self, obj: _Object) -> _Object:
        self.objects.append(obj)
        return obj


# ---------------------------------------------------------------------------------------------
# _dl_map_object_deps: the breadth-first walk
# ---------------------------------------------------------------------------------------------


class _Resolver:
    def __init__(self, env: LoaderEnv) -> None:
        self.env = env
        self.search = _Search(env)
        self.namespace = _Namespace(self.search)
        self.tree = ResolvedTree(file="")
        self.queue: deque[_Object] = deque()
        self.detached: list[_Object] = []  # filtees of the main object: loaded, but off the chain
        self.rtld: _Object | None = None
        self.rtld_listed = False

    @property
    def main(self) -> _Object | None:
        return self.search.main

    def run(self, path: str, run_as: str | None) -> ResolvedTree:
        tree = self.tree = ResolvedTree(file=path)
        info = read_elf(path)
        if isinstance(info, ElfError):
            tree.errors.append(str(info))
            return tree
        if not info.has_dynamic:
            tree.warnings.append(f"{path}: statically linked (no dynamic section)")
        self.queue.append(self._add_main(path, run_as, info))
        self._add_vdso_and_interp(info)
        self._preload()
        if self._walk():  # else ld.so gave up: nothing further is loaded or version-checked
            _check_versions(self.namespace.objects, self.detached, tree)
        return tree

    def _add_main(self, path: str, run_as: str | None, info: ElfInfo) -> _Object:
        abs_path = self.search.abs(path)
        shown_as = run_as or path
        location = os.path.realpath(self.search.abs(shown_as)) if run_as is None else self.search.abs(shown_as)
        main_lib = Library(name=path, path=abs_path, via="main", how="the file itself", info=info)
        # No file identity for the main object: glibc records none for the program it runs
        # (kernel-mapped, or named to ld.so), so a request under another name loads it again.
        main = _Object(main_lib, info, abs_path, os.path.dirname(location), set(), None, None)
        self.search.main = main
        self.namespace.objects.append(main)
        return main

    def _add_vdso_and_interp(self, info: ElfInfo) -> None:
        # The kernel's vDSO is mapped before anything else; it has no file and is never listed.
        vdso = VDSO_NAMES[0]
        vdso_lib = Library(vdso, "", via="vdso", how="kernel vDSO")
        self.namespace.objects.append(_Object(vdso_lib, None, vdso, None, {vdso}, None, None))
        interp = info.interp or self.env.interp
        read = read_elf(interp)
        rtld_info = read if isinstance(read, ElfInfo) else None
        names = {interp, os.path.basename(interp)} | ({rtld_info.soname} if rtld_info and rtld_info.soname else set())
        library = Library(os.path.basename(interp), interp, via="interp", how="the program interpreter (PT_INTERP)")
        library.info = rtld_info
        self.rtld = _Object(library, rtld_info, interp, os.path.dirname(interp), names, _identity(interp), None)
        self.namespace.objects.append(self.rtld)

    def _preload(self) -> None:
        tree = self.tree
        for preload in self._preloads():
            try:
                obj, new = self.namespace.map_object(preload, self.main, "preload")
            except _LoadFailure as failure:
                tree.warnings.append(f"object '{preload}' from LD_PRELOAD cannot be preloaded ({failure.reason}): ignored")
                continue
            if obj.library.path is None:
                self.namespace.objects.remove(obj)
                tree.warnings.append(
                    f"object '{preload}' from LD_PRELOAD cannot be preloaded (cannot open shared object file): ignored"
                )
                continue
            obj.library.via, obj.library.how = "preload", f"LD_PRELOAD ({obj.library.how})"
            if new:
                tree.libraries.append(obj.library)
                self.queue.append(obj)

    def _preloads(self) -> list[str]:
        entries = [e for e in re.split(r"[ :]", self.env.ld_preload or "") if e]
        return entries + list(self.env.preload_file)

    def _walk(self) -> bool:
        """Each object's dependencies in dynamic-section order, objects in load order; False
        when the loader fails on one (the program does not start)."""
        while self.queue:
            current = self.queue.popleft()
            if current.info is None:
                continue
            edges = self.tree.edges.setdefault(current.path, [])
            # Filtees (DT_AUXILIARY / DT_FILTER) go into the link-map chain just before the object
            # that names them, and their own dependencies are processed next (dl-deps.c).
            filtees: list[_Object] = []
            for kind, name in current.info.dependencies:
                if not self._dependency(current, kind, name, edges, filtees):
                    return False
            self.queue.extendleft(reversed(filtees))
        return True

    def _dependency(
        self, current: _Object, kind: str, name: str, edges: list[tuple[str, str, Library]], filtees: list[_Object]
    ) -> bool:
        try:
            obj, new = self.namespace.map_object(name, current, kind)
        except _LoadFailure as failure:
            if kind == "auxiliary":  # _dl_map_object_deps ignores any error of an auxiliary
                self.tree.warnings.append(f"auxiliary filter {name} of {current.path} ignored: {failure}")
                return True
            self._fail(current, kind, name, edges, failure)
            return False
        lib = obj.library
        if current.path not in lib.needed_by and current is not obj:
            lib.needed_by.append(current.path)
        edges.append((kind, name, lib))
        if obj is self.rtld and not self.rtld_listed:
            self._list_rtld(lib)
        if kind != "needed" and obj is not current:
            self._place_filtee(current, obj, new, filtees)
        elif new:
            self._list_new(current, kind, name, obj)
        if new and lib.path is None and kind == "filter":
            self.tree.errors.append(f"{name}: cannot open shared object file (filter of {current.path})")
        return True

    def _fail(
        self, current: _Object, kind: str, name: str, edges: list[tuple[str, str, Library]], failure: _LoadFailure
    ) -> None:
        lib = Library(
            name=name,
            path=None,
            needed_by=[current.path],
            how=f"the loader fails on {failure.path}: {failure.reason}",
            rejected=[Rejected(failure.path, failure.reason)],
        )
        edges.append((kind, name, lib))
        self.tree.libraries.append(lib)
        found = f" at {failure.path}" if failure.objname != failure.path else ""
        self.tree.errors.append(
            f"{failure.objname}: {failure.reason} (while loading {name}{found} for {current.path}; "
            "the loader stops here and the program does not start)"
        )

    def _list_rtld(self, lib: Library) -> None:
        # rtld.c puts ld.so back into the chain right after its predecessor in the search
        # list, which holds no stand-ins for missing libraries: before any "not found"
        # entries that trail it.
        self.rtld_listed = True
        libraries = self.tree.libraries
        at = len(libraries)
        while at > 0 and libraries[at - 1].path is None:
            at -= 1
        libraries.insert(at, lib)

    def _list_new(self, current: _Object, kind: str, name: str, obj: _Object) -> None:
        self.tree.libraries.append(obj.library)
        if obj.library.path is not None:
            self.queue.append(obj)
        elif kind == "needed":
            self.tree.errors.append(
                f"{name}: cannot open shared object file: No such file or directory (needed by {current.path})"
            )

    def _place_filtee(self, current: _Object, obj: _Object, new: bool, filtees: list[_Object]) -> None:
        """Where _dl_map_object_deps puts a filtee: a new one (or one that is still waiting in
        the queue) moves just before the filtering object in the chain and is processed right
        after it; one already processed stays where it is. Before the main object means out of
        the chain that trace mode prints and versions are checked on."""
        tree, lib = self.tree, obj.library
        if not new:
            waiting = next((i for i, o in enumerate(self.queue) if o is obj), None)
            if waiting is None:
                return
            del self.queue[waiting]
            listed = next((i for i, entry in enumerate(tree.libraries) if entry is lib), None)
            if listed is not None:
                del tree.libraries[listed]
        if current is self.main:
            self.detached.append(obj)
        else:
            at = next((i for i, entry in enumerate(tree.libraries) if entry is current.library), len(tree.libraries))
            tree.libraries.insert(at, lib)
        if lib.path is not None:
            filtees.append(obj)


# ---------------------------------------------------------------------------------------------
# _dl_check_map_versions
# ---------------------------------------------------------------------------------------------


def _check_versions(objects: list[_Object], detached: list[_Object], tree: ResolvedTree) -> None:
    off_chain = {id(o) for o in detached}
    loaded = [o for o in objects if o.info is not None and id(o) not in off_chain]
    for obj in loaded:
        assert obj.info is not None
        for need in obj.info.version_needs:
            provider = _version_provider(need, objects, loaded)
            if provider is None or provider.info is None:
                continue  # missing library: already reported as not found
            if not provider.info.version_defs:
                continue  # no version definitions at all: glibc accepts it
            defined = set(provider.info.version_defs)
            for version in need.versions:
                if version.name not in defined and not version.weak:
                    tree.version_errors.append(VersionError(version.name, provider.path, obj.path, library=need.file))


def _version_provider(need: VersionNeed, objects: list[_Object], loaded: list[_Object]) -> _Object | None:
    provider = next((o for o in objects if need.file in o.names or need.file == o.path), None)
    if provider is None:
        provider = next((o for o in loaded if o.info and o.info.soname == need.file), None)
    return provider


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def resolve(path: str, env: LoaderEnv, run_as: str | None = None) -> ResolvedTree:
    """The closure `ld.so` would load for `path` under `env`. Never raises.

    `run_as`: where the file will be run from, when that differs from where it lies (PyTriton
    runs copies of its binaries from a workspace): `$ORIGIN` of the main file points there.
    """
    try:
        tree = _Resolver(env).run(path, run_as)
    except RecursionError:  # pragma: no cover - the walk is iterative; kept as a last guard
        tree = ResolvedTree(file=path, errors=[f"{path}: dependency graph too deep"])
    return tree  # the parsed-ELF disk cache is written once, at exit (JsonCache.put)


def search_library(name: str, env: LoaderEnv) -> Library:
    """Where a dlopen(name) from an object without RPATH/RUNPATH would find `name`."""
    search = _Search(env)
    rejected: list[Rejected] = []
    found, via, how = search.search(name, None, rejected)
    if found is None:
        return Library(name=name, path=None, how="not found", rejected=rejected)
    path, info, directory = found
    return Library(name, search.abs(path), via=via, how=how, search_dir=directory, rejected=rejected, info=info)
