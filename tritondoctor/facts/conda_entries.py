"""LD_LIBRARY_PATH entries as the conda facts describe them: what each entry is, which conda
environment it lies in, and which of the target's own libraries it shadows with other files."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from tritondoctor.facts.conda_prefixes import owning_conda_prefix, unique_existing
from tritondoctor.facts.conda_prefixes import real as _real
from tritondoctor.facts.shellvars import normalise as _normalise
from tritondoctor.facts.target import TargetPython

# Python): there the "libraries the target ships" would otherwise be the whole distribution.
CORE_RUNTIME_LIBRARIES = re.compile(r"^(libpython\d[\d.]*\w*\.so|libstdc\+\+\.so|libgcc_s\.so)")

# Prefixes of a system Python: everything under them is not "the target's own".
SHARED_PREFIXES = frozenset({"/", "/usr", "/usr/local"})

# Same-size copies are compared by this many bytes at each end (see _same_content).
SAME_CONTENT_PROBE = 64 * 1024

# Loader tokens glibc expands in LD_LIBRARY_PATH; any other $NAME is taken literally.
_UNEXPANDED = re.compile(r"\$\{?(?!(?:ORIGIN|LIB|PLATFORM)\b)[A-Za-z_]")


@dataclass(frozen=True)
class LibraryCopy:
    """A library in an LD_LIBRARY_PATH entry that is a different file from the target's own."""

    name: str
    path: str  # in the entry (realpath)
    target_path: str  # the target's own (realpath)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "target_path": self.target_path}


@dataclass(frozen=True)
class PathEntry:
    index: int
    raw: str
    # As the loader uses it: trailing slashes dropped, "" for an empty entry (= current directory).
    directory: str
    # "empty", "relative" (both resolve against the current directory), "unexpanded" (holds a
    # shell variable the loader does not know, e.g. a single-quoted '$CONDA_PREFIX/lib'), "token"
    # ($ORIGIN, $LIB, $PLATFORM: expanded by the loader, left to the loader model), "absolute"
    kind: str
    exists: bool | None = None  # None: not judged (empty, relative, or contains a $TOKEN)
    is_dir: bool | None = None
    realpath: str | None = None
    conda_prefix: str | None = None  # the conda environment the directory lies in
    # "target", "target-base" (the conda env a venv target was made from), "base", "other-env"
    owner: str | None = None
    in_target: bool = False  # lies inside the target's prefix or base prefix
    duplicate_of: int | None = None
    shadows: tuple[LibraryCopy, ...] = ()

    @property
    def foreign_conda(self) -> bool:
        return self.owner in ("base", "other-env")

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "raw": self.raw,
            "directory": self.directory,
            "kind": self.kind,
            "exists": self.exists,
            "is_dir": self.is_dir,
            "realpath": self.realpath,
            "conda_prefix": self.conda_prefix,
            "owner": self.owner,
            "in_target": self.in_target,
            "duplicate_of": self.duplicate_of,
            "shadows": [c.to_json() for c in self.shadows],
        }


class EntryReader:
    """Describes LD_LIBRARY_PATH entries against the target; unreadable directories go to `errors`."""

    def __init__(self, target: TargetPython | None, errors: list[str]) -> None:
        self.target = target
        self.errors = errors

    def target_lib_dirs(self) -> tuple[str, ...]:
        t = self.target
        if t is None:
            return ()
        dirs = [t.libdir, os.path.join(t.prefix, "lib"), os.path.join(t.base_prefix, "lib")]
        return tuple(d for d in unique_existing(dirs) if os.path.isdir(d))

    def entries(
        self,
        value: str | None,
        target_prefix: str | None,
        target_base_env: str | None,
        base_prefix: str | None,
        target_lib_dirs: tuple[str, ...],
    ) -> tuple[PathEntry, ...]:
        # glibc ignores a set-but-empty LD_LIBRARY_PATH altogether (no entries at all).
        if not value:
            return ()
        target_libs = self._libraries_in(target_lib_dirs)
        target_roots = [
            _real(p)
            for p in (target_prefix, self.target.base_prefix if self.target else None)
            if p and _real(p) not in SHARED_PREFIXES
        ]
        owners = {
            _real(p): kind
            for kind, p in (("base", base_prefix), ("target-base", target_base_env), ("target", target_prefix))
            if p
        }
        target_lib_reals = {_real(d) for d in target_lib_dirs}
        seen: dict[str, int] = {}
        entries: list[PathEntry] = []
        for index, raw in enumerate(re.split(r"[:;]", value)):
            directory = _normalise(raw)
            if not raw:
                kind = "empty"
            elif _UNEXPANDED.search(raw):
                kind = "unexpanded"
            elif "$" in raw:
                kind = "token"
            elif not raw.startswith("/"):
                kind = "relative"
            else:
                kind = "absolute"
            entry = PathEntry(index=index, raw=raw, directory=directory, kind=kind)
            if kind == "absolute":
                entry = self._describe(entry, owners, target_roots, target_lib_reals, target_libs)
            key = entry.realpath if entry.is_dir and entry.realpath else directory
            if key in seen:
                entry = replace(entry, duplicate_of=seen[key])
            else:
                seen[key] = index
            entries.append(entry)
        return tuple(entries)

    def _describe(
        self,
        entry: PathEntry,
        owners: Mapping[str, str],
        target_roots: list[str],
        target_lib_reals: set[str],
        target_libs: "_OwnLibraries",
    ) -> PathEntry:
        directory = entry.directory
        exists = os.path.exists(directory)
        is_dir = os.path.isdir(directory)
        if not is_dir:
            return replace(entry, exists=exists, is_dir=False)
        real = os.path.realpath(directory)
        conda_prefix = owning_conda_prefix(real)
        owner = None
        if conda_prefix is not None:
            owner = owners.get(_real(conda_prefix), "other-env")
        in_target = any(real == r or real.startswith(r.rstrip("/") + "/") for r in target_roots)
        if owner in ("target", "target-base"):
            in_target = True
        shadows: tuple[LibraryCopy, ...] = ()
        if not in_target and real not in target_lib_reals and target_libs:
            shadows = self._shadows(real, target_libs)
        return replace(
            entry, exists=True, is_dir=True, realpath=real, conda_prefix=conda_prefix, owner=owner,
            in_target=in_target, shadows=shadows,
        )

    def _libraries_in(self, dirs: Iterable[str]) -> "_OwnLibraries":
        """The shared libraries the target ships, by file name (the first directory wins)."""
        paths: dict[str, tuple[str, str]] = {}
        for directory in dirs:
            system = _is_system_dir(directory)
            try:
                names = os.listdir(directory)
            except OSError as exc:
                self.errors.append(f"{directory}: {exc.strerror or exc}")
                continue
            real_dir = _real(directory)
            for name in names:
                if name in paths or ".so" not in name or not name.startswith("lib"):
                    continue
                if system and not CORE_RUNTIME_LIBRARIES.match(name):
                    continue
                paths[name] = (real_dir, name)
        return _OwnLibraries(paths)

    def _shadows(self, directory: str, own: "_OwnLibraries") -> tuple[LibraryCopy, ...]:
        """`directory` (a realpath) holds these libraries under the target's names, other files."""
        try:
            names = set(os.listdir(directory))
        except OSError as exc:
            self.errors.append(f"{directory}: {exc.strerror or exc}")
            return ()
        copies: list[LibraryCopy] = []
        for name in sorted(names & own.names, key=_library_priority):
            mine = own.file(name)
            if mine is None:
                continue
            theirs = _LibraryFile.of(directory, name)
            if theirs is None or theirs.identity == mine.identity:
                continue
            if theirs.size == mine.size and _same_content(theirs.realpath, mine.realpath, mine.size):
                continue
            copies.append(LibraryCopy(name=name, path=theirs.realpath, target_path=mine.realpath))
        return tuple(copies)



@dataclass(frozen=True)
class _LibraryFile:
    realpath: str
    identity: tuple[int, int]  # (st_dev, st_ino)
    size: int

    @classmethod
    def of(cls, real_dir: str, name: str) -> "_LibraryFile | None":
        """A regular file (through symlinks) in a directory given by its realpath, else None."""
        path = os.path.join(real_dir, name)
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        # Only a symlink needs resolving: the directory already is a realpath.
        real = os.path.realpath(path) if os.path.islink(path) else path
        return cls(real, (st.st_dev, st.st_ino), st.st_size)


class _OwnLibraries:
    """The target's libraries by file name, stat'ed only when an entry holds the same name."""

    def __init__(self, paths: Mapping[str, tuple[str, str]]) -> None:
        self._paths = paths
        self._files: dict[str, _LibraryFile | None] = {}
        self.names = frozenset(paths)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def file(self, name: str) -> _LibraryFile | None:
        if name not in self._files:
            self._files[name] = _LibraryFile.of(*self._paths[name])
        return self._files[name]


def _is_system_dir(directory: str) -> bool:
    real = _real(directory)
    return real in ("/lib", "/lib64", "/usr/lib", "/usr/lib64") or bool(
        re.match(r"^/(?:usr/)?lib(?:64)?/[a-z0-9_]+-linux-gnu\w*$", real)
    )


def _same_content(a: str, b: str, size: int) -> bool:
    """Two files of the same size hold the same library: compared by their first and last
    SAME_CONTENT_PROBE bytes (two builds of one library that agree there and in size do not occur
    in practice), so that many large copies cost little to compare."""
    probe = SAME_CONTENT_PROBE
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            if fa.read(probe) != fb.read(probe):
                return False
            if size > probe:
                fa.seek(max(probe, size - probe))
                fb.seek(max(probe, size - probe))
                return fa.read(probe) == fb.read(probe)
            return True
    except OSError:
        return False


def _library_priority(name: str) -> tuple[int, str]:
    return (0 if CORE_RUNTIME_LIBRARIES.match(name) else 1, name)
