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
from dataclasses import dataclass, field
from typing import Any, Iterable

from tritondoctor.elf import ElfError, ElfInfo, read_elf
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
    loader: "_Object | None"


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


class _Resolver:
    def __init__(self, env: LoaderEnv) -> None:
        self.env = env
        self.objects: list[_Object] = []
        self.tree: ResolvedTree | None = None
        self.main: _Object | None = None
        self.detached: list[_Object] = []  # filtees of the main object: loaded, but off the chain
        self._dirs: dict[str, bool] = {}

    # -- helpers -------------------------------------------------------------------------------

    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else os.path.join(self.env.cwd, path)

    def _is_dir(self, path: str) -> bool:
        known = self._dirs.get(path)
        if known is None:
            known = self._dirs[path] = os.path.isdir(self._abs(path) if path else self.env.cwd)
        return known

    def expand(self, text: str, obj: _Object | None) -> str | None:
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
            for token in ("ORIGIN", "LIB", "PLATFORM"):
                for form in (token, "{" + token + "}"):
                    if text.startswith(form, i + 1):
                        end = i + 1 + len(form)
                        # A bare token must end at a non-identifier character (glibc's is_dst).
                        if form == token and end < len(text) and (text[end].isalnum() or text[end] == "_"):
                            continue
                        if token == "ORIGIN":
                            if obj is None or obj.origin is None:
                                return None
                            out.append(obj.origin)
                        elif token == "LIB":
                            out.append(self.env.dst_lib)
                        else:
                            out.append(self.env.platform)
                        i = end
                        break
                else:
                    continue
                break
            else:
                out.append("$")
                i += 1
        return "".join(out)

    def path_list(self, entries: Iterable[str], obj: _Object | None) -> list[str]:
        dirs: list[str] = []
        for entry in entries:
            if entry:
                expanded = self.expand(entry, obj)
                if not expanded:
                    continue
                expanded = expanded.rstrip("/") or "/"
            else:
                expanded = ""  # the current directory
            if expanded not in dirs:
                dirs.append(expanded)
        return dirs

    def _candidates(self, directory: str, name: str) -> Iterable[str]:
        base = directory if directory in ("", "/") else directory + "/"
        if directory and not self._is_dir(directory):
            return
        for sub in self.env.hwcaps_subdirs:
            sub_dir = f"{base}glibc-hwcaps/{sub}"
            if self._is_dir(sub_dir):
                yield f"{sub_dir}/{name}"
        for sub in self.env.legacy_subdirs:
            if not sub:
                yield f"{base}{name}"
            elif self._is_dir(f"{base}{sub}"):
                yield f"{base}{sub}/{name}"

    def _open(self, path: str, requester: _Object | None, rejected: list[Rejected]) -> ElfInfo | None:
        """open_verify: the file exists and is an ELF object this process could load.

        None when the loader passes over the candidate and searches on; raises _LoadFailure
        when the loader would signal an error instead (which ends the whole load).
        """
        full = self._abs(path)
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
        reference = requester.info if requester is not None and requester.info is not None else None
        if reference is not None and not info.compatible_with(reference):
            rejected.append(
                Rejected(full, f"wrong ELF class or machine (ELFCLASS{info.elf_class}, {info.machine})")
            )
            return None
        if reference is None and info.machine != ELF_MACHINES.get(self.env.machine, info.machine):
            rejected.append(Rejected(full, f"wrong machine ({info.machine})"))
            return None
        if info.elf_type not in ("ET_DYN", "ET_EXEC"):
            raise _LoadFailure(full, "only ET_DYN and ET_EXEC can be loaded")
        # _dl_map_object_from_fd, for anything but the program itself:
        if info.elf_type == "ET_EXEC":
            raise _LoadFailure(full, "cannot dynamically load executable", after_open=True)
        if not info.has_dynamic:
            raise _LoadFailure(full, "object file has no dynamic section", after_open=True)
        if info.flags_1 & DF_1_PIE:
            raise _LoadFailure(full, "cannot dynamically load position-independent executable", after_open=True)
        return info

    def _search_dirs(
        self, dirs: list[str], name: str, requester: _Object | None, rejected: list[Rejected]
    ) -> tuple[str, ElfInfo, str] | None:
        for directory in dirs:
            plain = f"{directory}/{name}" if directory not in ("", "/") else f"{directory}{name}"
            for candidate in self._candidates(directory, name):
                try:
                    info = self._open(candidate, requester, rejected)
                except _EndOfList:
                    # open_path looks at errno once per directory, after its last (plain) try.
                    if candidate == plain:
                        return None
                    continue
                if info is not None:
                    return candidate, info, directory
        return None

    # -- _dl_map_object ------------------------------------------------------------------------

    def _already_loaded(self, name: str) -> _Object | None:
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
        loaded = self._already_loaded(name)
        if loaded is not None:
            return loaded, False
        rejected: list[Rejected] = []
        found: tuple[str, ElfInfo, str] | None = None
        via, how, search_dir = "", "", None
        if "/" in name:
            expanded = self.expand(name, requester)
            if expanded is not None:
                try:
                    info = self._open(expanded, requester, rejected)
                except _EndOfList:
                    info = None
                if info is not None:
                    found = (expanded, info, os.path.dirname(expanded))
                    via, how = "direct", "path named in the dependency"
        else:
            found, via, how = self._search(name, requester, rejected)
            if found is not None:
                search_dir = found[2]
        library = Library(
            name=name,
            path=None,
            via=via,
            how=how if found else "not found",
            search_dir=search_dir,
            rejected=rejected,
            optional=kind == "auxiliary",
        )
        if found is None:
            obj = _Object(library, None, "", None, {name}, None, requester)
            self.objects.append(obj)
            return obj, True
        path, info, _ = found
        full = self._abs(path)
        identity = _identity(full)
        if identity is not None:
            for obj in self.objects:
                if obj.identity == identity:
                    obj.names.add(name)
                    return obj, False
        library.path = full
        library.info = info
        obj = _Object(library, info, full, os.path.dirname(full), {name}, identity, requester)
        self.objects.append(obj)
        return obj, True

    def _search(
        self, name: str, requester: _Object | None, rejected: list[Rejected]
    ) -> tuple[tuple[str, ElfInfo, str] | None, str, str]:
        env = self.env
        req_info = requester.info if requester else None
        if req_info is None or req_info.runpath is None:
            seen_main = False
            chain = requester
            while chain is not None:
                rpath = chain.info.rpath if chain.info and chain.info.runpath is None else None
                if rpath is not None:
                    found = self._search_dirs(self.path_list(rpath, chain), name, requester, rejected)
                    if found:
                        return found, "rpath", f"RPATH of {os.path.basename(chain.path)}"
                    seen_main |= chain is self.main
                chain = chain.loader
            main = self.main
            if not seen_main and main is not None and main.info and main.info.runpath is None and main.info.rpath:
                found = self._search_dirs(self.path_list(main.info.rpath, main), name, requester, rejected)
                if found:
                    return found, "rpath", f"RPATH of {os.path.basename(main.path)}"
        if env.ld_library_path:  # set but empty: glibc ignores it (_dl_init_paths)
            entries = re.split(r"[:;]", env.ld_library_path)
            found = self._search_dirs(self.path_list(entries, self.main), name, requester, rejected)
            if found:
                return found, "ld_library_path", f"LD_LIBRARY_PATH entry {found[2] or '(empty: current directory)'}"
        if req_info is not None and req_info.runpath is not None:
            found = self._search_dirs(self.path_list(req_info.runpath, requester), name, requester, rejected)
            if found:
                return found, "runpath", f"RUNPATH of {os.path.basename(requester.path) if requester else '?'}"
        flags_owner = req_info if requester is not None else (self.main.info if self.main else None)
        nodeflib = bool(flags_owner and flags_owner.nodeflib)
        if env.cache is not None:
            cached = env.cache.lookup(name, env.machine, env.hwcaps_subdirs)
            if cached is not None and nodeflib and any(cached.startswith(d.rstrip("/") + "/") for d in env.system_dirs):
                cached = None
            if cached is not None:
                try:
                    info = self._open(cached, requester, rejected)
                except _EndOfList:
                    info = None
                if info is not None:
                    return (cached, info, os.path.dirname(cached)), "cache", "ld.so.cache"
        if not nodeflib:
            found = self._search_dirs(list(env.system_dirs), name, requester, rejected)
            if found:
                return found, "default", f"system default directory {found[2]}"
        return None, "", ""

    # -- _dl_map_object_deps -------------------------------------------------------------------

    def run(self, path: str, run_as: str | None) -> ResolvedTree:
        tree = ResolvedTree(file=path)
        self.tree = tree
        info = read_elf(path)
        if isinstance(info, ElfError):
            tree.errors.append(str(info))
            return tree
        if not info.has_dynamic:
            tree.warnings.append(f"{path}: statically linked (no dynamic section)")
        shown_as = run_as or path
        location = os.path.realpath(self._abs(shown_as)) if run_as is None else self._abs(shown_as)
        main_lib = Library(name=path, path=self._abs(path), via="main", how="the file itself", info=info)
        # No file identity for the main object: glibc records none for the program it runs
        # (kernel-mapped, or named to ld.so), so a request under another name loads it again.
        self.main = _Object(main_lib, info, self._abs(path), os.path.dirname(location), set(), None, None)
        self.objects.append(self.main)

        # The kernel's vDSO is mapped before anything else; it has no file and is never listed.
        vdso = VDSO_NAMES[0]
        self.objects.append(_Object(Library(vdso, "", via="vdso", how="kernel vDSO"), None, vdso, None, {vdso}, None, None))
        interp = info.interp or self.env.interp
        rtld_info = read_elf(interp)
        rtld = _Object(
            Library(os.path.basename(interp), interp, via="interp", how="the program interpreter (PT_INTERP)"),
            rtld_info if isinstance(rtld_info, ElfInfo) else None,
            interp,
            os.path.dirname(interp),
            {interp, os.path.basename(interp)} | ({rtld_info.soname} if isinstance(rtld_info, ElfInfo) and rtld_info.soname else set()),
            _identity(interp),
            None,
        )
        if isinstance(rtld_info, ElfInfo):
            rtld.library.info = rtld_info
        self.objects.append(rtld)
        rtld_listed = False

        queue: deque[_Object] = deque([self.main])
        for preload in self._preloads():
            try:
                obj, new = self.map_object(preload, self.main, "preload")
            except _LoadFailure as failure:
                tree.warnings.append(f"object '{preload}' from LD_PRELOAD cannot be preloaded ({failure.reason}): ignored")
                continue
            if obj.library.path is None:
                self.objects.remove(obj)
                tree.warnings.append(
                    f"object '{preload}' from LD_PRELOAD cannot be preloaded (cannot open shared object file): ignored"
                )
                continue
            obj.library.via, obj.library.how = "preload", f"LD_PRELOAD ({obj.library.how})"
            if new:
                tree.libraries.append(obj.library)
                queue.append(obj)

        while queue:
            current = queue.popleft()
            if current.info is None:
                continue
            edges = tree.edges.setdefault(current.path, [])
            # Filtees (DT_AUXILIARY / DT_FILTER) go into the link-map chain just before the object
            # that names them, and their own dependencies are processed next (dl-deps.c).
            filtees: list[_Object] = []
            for kind, name in current.info.dependencies:
                try:
                    obj, new = self.map_object(name, current, kind)
                except _LoadFailure as failure:
                    if kind == "auxiliary":  # _dl_map_object_deps ignores any error of an auxiliary
                        tree.warnings.append(f"auxiliary filter {name} of {current.path} ignored: {failure}")
                        continue
                    lib = Library(
                        name=name,
                        path=None,
                        needed_by=[current.path],
                        how=f"the loader fails on {failure.path}: {failure.reason}",
                        rejected=[Rejected(failure.path, failure.reason)],
                    )
                    edges.append((kind, name, lib))
                    tree.libraries.append(lib)
                    found = f" at {failure.path}" if failure.objname != failure.path else ""
                    tree.errors.append(
                        f"{failure.objname}: {failure.reason} (while loading {name}{found} for {current.path}; "
                        "the loader stops here and the program does not start)"
                    )
                    return tree  # ld.so gives up: nothing further is loaded or version-checked
                lib = obj.library
                if current.path not in lib.needed_by and current is not obj:
                    lib.needed_by.append(current.path)
                edges.append((kind, name, lib))
                if obj is rtld and not rtld_listed:
                    # rtld.c puts ld.so back into the chain right after its predecessor in the
                    # search list, which holds no stand-ins for missing libraries: before any
                    # "not found" entries that trail it.
                    rtld_listed = True
                    at = len(tree.libraries)
                    while at > 0 and tree.libraries[at - 1].path is None:
                        at -= 1
                    tree.libraries.insert(at, lib)
                if kind != "needed" and obj is not current:
                    self._place_filtee(tree, queue, current, obj, new, filtees)
                elif new:
                    tree.libraries.append(lib)
                    if lib.path is not None:
                        queue.append(obj)
                    elif kind == "needed":
                        tree.errors.append(
                            f"{name}: cannot open shared object file: No such file or directory (needed by {current.path})"
                        )
                if new and lib.path is None and kind == "filter":
                    tree.errors.append(f"{name}: cannot open shared object file (filter of {current.path})")
            queue.extendleft(reversed(filtees))
        self._check_versions(tree)
        return tree

    def _place_filtee(
        self,
        tree: ResolvedTree,
        queue: "deque[_Object]",
        current: _Object,
        obj: _Object,
        new: bool,
        filtees: list[_Object],
    ) -> None:
        """Where _dl_map_object_deps puts a filtee: a new one (or one that is still waiting in
        the queue) moves just before the filtering object in the chain and is processed right
        after it; one already processed stays where it is. Before the main object means out of
        the chain that trace mode prints and versions are checked on."""
        lib = obj.library
        if not new:
            waiting = next((i for i, o in enumerate(queue) if o is obj), None)
            if waiting is None:
                return
            del queue[waiting]
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

    def _preloads(self) -> list[str]:
        entries = [e for e in re.split(r"[ :]", self.env.ld_preload or "") if e]
        return entries + list(self.env.preload_file)

    # -- _dl_check_map_versions ----------------------------------------------------------------

    def _check_versions(self, tree: ResolvedTree) -> None:
        detached = {id(o) for o in self.detached}
        loaded = [o for o in self.objects if o.info is not None and id(o) not in detached]
        for obj in loaded:
            assert obj.info is not None
            for need in obj.info.version_needs:
                provider = next((o for o in self.objects if need.file in o.names or need.file == o.path), None)
                if provider is None:
                    provider = next((o for o in loaded if o.info and o.info.soname == need.file), None)
                if provider is None or provider.info is None:
                    continue  # missing library: already reported as not found
                if not provider.info.version_defs:
                    continue  # no version definitions at all: glibc accepts it
                defined = set(provider.info.version_defs)
                for version in need.versions:
                    if version.name not in defined and not version.weak:
                        tree.version_errors.append(
                            VersionError(version.name, provider.path, obj.path, library=need.file)
                        )


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
    resolver = _Resolver(env)
    rejected: list[Rejected] = []
    found, via, how = resolver._search(name, None, rejected)
    if found is None:
        return Library(name=name, path=None, how="not found", rejected=rejected)
    path, info, directory = found
    return Library(name, resolver._abs(path), via=via, how=how, search_dir=directory, rejected=rejected, info=info)
