"""Conda facts: which conda environments the shell has activated, what their activation hooks
do to LD_LIBRARY_PATH, and what each LD_LIBRARY_PATH entry is.

Everything here is read statically (hook scripts and shell start-up files are parsed by
`shellvars`, never run) and all filesystem access happens in `gather`, so checks stay pure.
`gather` never raises: what could not be read is listed in `CondaFacts.errors`.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from tritondoctor.facts.shellvars import LD_VAR, ShellAction, normalise as _normalise, parse_ld_library_path
from tritondoctor.facts.target import TargetPython

# Shell start-up files (relative to $HOME) that people put `export LD_LIBRARY_PATH=...` into.
RC_FILES = (
    ".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zshenv", ".zprofile",
    ".config/fish/config.fish", ".cshrc", ".tcshrc",
)

# What conda runs from etc/conda/{activate,deactivate}.d, by extension (conda's activate.py).
HOOK_SHELLS = {".sh": "sh", ".fish": "fish", ".csh": "csh", ".xsh": "xsh", ".bat": "bat", ".ps1": "ps1"}

# Libraries compared when the target's library directory is the operating system's (a system
# Python): there the "libraries the target ships" would otherwise be the whole distribution.
CORE_RUNTIME_LIBRARIES = re.compile(r"^(libpython\d[\d.]*\w*\.so|libstdc\+\+\.so|libgcc_s\.so)")

# Prefixes of a system Python: everything under them is not "the target's own".
SHARED_PREFIXES = frozenset({"/", "/usr", "/usr/local"})

MAX_SCRIPT_BYTES = 256 * 1024
# Same-size copies are compared by this many bytes at each end (see _same_content).
SAME_CONTENT_PROBE = 64 * 1024

# Loader tokens glibc expands in LD_LIBRARY_PATH; any other $NAME is taken literally.
_UNEXPANDED = re.compile(r"\$\{?(?!(?:ORIGIN|LIB|PLATFORM)\b)[A-Za-z_]")


# ---------------------------------------------------------------------------------------------
# Activation hooks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookScript:
    path: str
    phase: str  # "activate" | "deactivate"
    shell: str  # "sh", "fish", "csh", "xsh", "bat", "ps1", or "other" (conda runs no such file)
    ld_library_path: tuple[ShellAction, ...] = ()

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def modifies(self) -> bool:
        return any(a.modifies for a in self.ld_library_path)

    @property
    def restores(self) -> bool:
        return any(a.restores or a.modifies for a in self.ld_library_path)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "phase": self.phase,
            "shell": self.shell,
            "ld_library_path": [a.to_json() for a in self.ld_library_path],
        }


@dataclass(frozen=True)
class EnvHooks:
    """The etc/conda/activate.d and deactivate.d scripts of one environment."""

    prefix: str
    activate: tuple[HookScript, ...] = ()
    deactivate: tuple[HookScript, ...] = ()

    def touching_ld_library_path(self) -> list[HookScript]:
        return [s for s in self.activate + self.deactivate if s.ld_library_path]

    def unrestored(self) -> list[HookScript]:
        """Activate scripts that change LD_LIBRARY_PATH with no deactivate script for the same
        shell that touches it: the change outlives `conda deactivate`."""
        restoring_shells = {s.shell for s in self.deactivate if s.restores}
        return [s for s in self.activate if s.modifies and s.shell not in restoring_shells]

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "activate": [s.to_json() for s in self.activate],
            "deactivate": [s.to_json() for s in self.deactivate],
        }


# ---------------------------------------------------------------------------------------------
# LD_LIBRARY_PATH entries
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# The facts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CondaFacts:
    conda_prefix: str | None = None
    conda_prefix_exists: bool | None = None
    shlvl_raw: str | None = None
    shlvl: int | None = None  # None when unset or not an integer
    default_env: str | None = None
    prefix_chain: Mapping[int, str] = field(default_factory=dict)  # CONDA_PREFIX_N by N
    conda_exe: str | None = None
    mamba_exe: str | None = None
    mamba_root_prefix: str | None = None
    base_prefix: str | None = None
    base_source: str = ""  # how base_prefix was found
    target_prefix: str | None = None
    target_is_conda_env: bool = False
    # A venv target made from a conda env's python: that env (None otherwise).
    target_base_conda_env: str | None = None
    hooks: tuple[EnvHooks, ...] = ()
    ld_library_path: str | None = None
    entries: tuple[PathEntry, ...] = ()
    target_lib_dirs: tuple[str, ...] = ()
    rc_actions: tuple[ShellAction, ...] = ()  # LD_LIBRARY_PATH statements in ~/.bashrc & co.
    # Every prefix named above -> its realpath (None: does not exist), so checks compare
    # prefixes without touching the filesystem.
    realpaths: Mapping[str, str | None] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    def same_prefix(self, a: str | None, b: str | None) -> bool:
        if not a or not b:
            return False
        return (self.realpaths.get(a) or _normalise(a)) == (self.realpaths.get(b) or _normalise(b))

    def exists(self, prefix: str) -> bool | None:
        return (self.realpaths.get(prefix) is not None) if prefix in self.realpaths else None

    @property
    def in_use(self) -> bool:
        return bool(
            self.conda_prefix or self.shlvl_raw or self.prefix_chain or self.target_is_conda_env
            or self.target_base_conda_env
        )

    def hooks_for(self, prefix: str | None) -> EnvHooks | None:
        return next((h for h in self.hooks if self.same_prefix(h.prefix, prefix)), None)

    @property
    def target_hooks(self) -> EnvHooks | None:
        return self.hooks_for(self.target_prefix) if self.target_is_conda_env else None

    def to_json(self) -> dict[str, Any]:
        return {
            "conda_prefix": self.conda_prefix,
            "conda_prefix_exists": self.conda_prefix_exists,
            "conda_shlvl": self.shlvl_raw,
            "conda_default_env": self.default_env,
            "prefix_chain": {str(k): v for k, v in sorted(self.prefix_chain.items())},
            "conda_exe": self.conda_exe,
            "mamba_exe": self.mamba_exe,
            "mamba_root_prefix": self.mamba_root_prefix,
            "base_prefix": self.base_prefix,
            "base_source": self.base_source,
            "target_prefix": self.target_prefix,
            "target_is_conda_env": self.target_is_conda_env,
            "target_base_conda_env": self.target_base_conda_env,
            "hooks": [h.to_json() for h in self.hooks],
            "ld_library_path": self.ld_library_path,
            "entries": [e.to_json() for e in self.entries],
            "target_lib_dirs": list(self.target_lib_dirs),
            "rc_actions": [a.to_json() for a in self.rc_actions],
            "realpaths": dict(self.realpaths),
            "errors": list(self.errors),
        }


def gather(environ: Mapping[str, str], target: TargetPython | None) -> CondaFacts:
    try:
        return _Gatherer(environ, target).run()
    except Exception as exc:  # a fact gatherer must never take the snapshot down
        return CondaFacts(
            conda_prefix=environ.get("CONDA_PREFIX"),
            shlvl_raw=environ.get("CONDA_SHLVL"),
            ld_library_path=environ.get(LD_VAR),
            errors=(f"conda facts: {exc.__class__.__name__}: {exc}",),
        )


class _Gatherer:
    def __init__(self, environ: Mapping[str, str], target: TargetPython | None) -> None:
        self.environ = environ
        self.target = target
        self.errors: list[str] = []

    def run(self) -> CondaFacts:
        env = self.environ
        conda_prefix = env.get("CONDA_PREFIX") or None
        shlvl_raw = env.get("CONDA_SHLVL")
        chain = _prefix_chain(env)
        target_prefix = self.target.prefix if self.target else None
        target_is_conda = bool(target_prefix) and _is_conda_prefix(target_prefix)
        target_base_env = None
        if self.target and self.target.in_venv and _is_conda_prefix(self.target.base_prefix):
            target_base_env = self.target.base_prefix
        base_prefix, base_source = self._base_prefix(conda_prefix, shlvl_raw, chain, target_prefix)

        target_lib_dirs = self._target_lib_dirs()
        entries = self._entries(env.get(LD_VAR), target_prefix, target_base_env, base_prefix, target_lib_dirs)

        hook_prefixes = [target_prefix if target_is_conda else None, conda_prefix, *chain.values(), base_prefix]
        hook_prefixes += [e.conda_prefix for e in entries]
        hooks = tuple(self._hooks(p) for p in _unique_existing(hook_prefixes) if _is_conda_prefix(p))

        named = [conda_prefix, *chain.values(), target_prefix, target_base_env, base_prefix]
        named += [e.conda_prefix for e in entries] + [h.prefix for h in hooks]
        realpaths = {p: (_real(p) if os.path.isdir(p) else None) for p in named if p}
        return CondaFacts(
            conda_prefix=conda_prefix,
            conda_prefix_exists=os.path.isdir(conda_prefix) if conda_prefix else None,
            shlvl_raw=shlvl_raw,
            shlvl=_int_or_none(shlvl_raw),
            default_env=env.get("CONDA_DEFAULT_ENV"),
            prefix_chain=chain,
            conda_exe=env.get("CONDA_EXE") or None,
            mamba_exe=env.get("MAMBA_EXE") or None,
            mamba_root_prefix=env.get("MAMBA_ROOT_PREFIX") or None,
            base_prefix=base_prefix,
            base_source=base_source,
            target_prefix=target_prefix,
            target_is_conda_env=target_is_conda,
            target_base_conda_env=target_base_env,
            hooks=hooks,
            ld_library_path=env.get(LD_VAR),
            entries=entries,
            target_lib_dirs=target_lib_dirs,
            rc_actions=self._rc_actions(),
            realpaths=realpaths,
            errors=tuple(self.errors),
        )

    # -- the base environment --------------------------------------------------------------------

    def _base_prefix(
        self, conda_prefix: str | None, shlvl_raw: str | None, chain: Mapping[int, str], target_prefix: str | None
    ) -> tuple[str | None, str]:
        env = self.environ
        for var in ("CONDA_EXE", "MAMBA_EXE"):
            exe = env.get(var)
            if exe:
                # <base>/bin/conda or <base>/condabin/conda
                prefix = os.path.dirname(os.path.dirname(exe))
                if _is_conda_prefix(prefix):
                    return prefix, var
        root = env.get("MAMBA_ROOT_PREFIX")
        if root and os.path.isdir(root):
            return root, "MAMBA_ROOT_PREFIX"
        shlvl = _int_or_none(shlvl_raw) or 0
        candidates = [chain.get(1) if shlvl > 1 else None, conda_prefix, *chain.values(), target_prefix]
        candidates += [_envs_root(p) for p in (conda_prefix, target_prefix, *chain.values())]
        for prefix in _unique_existing(candidates):
            if _looks_like_base(prefix):
                return prefix, "markers (conda-meta/history and condabin/)"
        for prefix in _unique_existing([_envs_root(p) for p in (conda_prefix, target_prefix, *chain.values())]):
            if _is_conda_prefix(prefix):
                return prefix, "parent of envs/"
        if shlvl > 1 and chain.get(1):
            return chain[1], "CONDA_PREFIX_1"
        return None, ""

    # -- LD_LIBRARY_PATH -------------------------------------------------------------------------

    def _target_lib_dirs(self) -> tuple[str, ...]:
        t = self.target
        if t is None:
            return ()
        dirs = [t.libdir, os.path.join(t.prefix, "lib"), os.path.join(t.base_prefix, "lib")]
        return tuple(d for d in _unique_existing(dirs) if os.path.isdir(d))

    def _entries(
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
                entry = _replace(entry, duplicate_of=seen[key])
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
            return _replace(entry, exists=exists, is_dir=False)
        real = os.path.realpath(directory)
        conda_prefix = _owning_conda_prefix(real)
        owner = None
        if conda_prefix is not None:
            owner = owners.get(_real(conda_prefix), "other-env")
        in_target = any(real == r or real.startswith(r.rstrip("/") + "/") for r in target_roots)
        if owner in ("target", "target-base"):
            in_target = True
        shadows: tuple[LibraryCopy, ...] = ()
        if not in_target and real not in target_lib_reals and target_libs:
            shadows = self._shadows(real, target_libs)
        return _replace(
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

    # -- hooks and start-up files ----------------------------------------------------------------

    def _hooks(self, prefix: str) -> EnvHooks:
        phases: dict[str, tuple[HookScript, ...]] = {}
        for phase in ("activate", "deactivate"):
            directory = os.path.join(prefix, "etc", "conda", f"{phase}.d")
            try:
                names = sorted(os.listdir(directory))
            except FileNotFoundError:
                names = []
            except OSError as exc:
                self.errors.append(f"{directory}: {exc.strerror or exc}")
                names = []
            scripts = []
            for name in names:
                path = os.path.join(directory, name)
                if not os.path.isfile(path):
                    continue
                shell = HOOK_SHELLS.get(os.path.splitext(name)[1], "other")
                actions: tuple[ShellAction, ...] = ()
                if shell in ("sh", "fish", "csh"):
                    text = self._read(path)
                    actions = tuple(parse_ld_library_path(text, path, shell, conda_prefix=prefix)) if text else ()
                scripts.append(HookScript(path=path, phase=phase, shell=shell, ld_library_path=actions))
            phases[phase] = tuple(scripts)
        return EnvHooks(prefix=prefix, activate=phases["activate"], deactivate=phases["deactivate"])

    def _rc_actions(self) -> tuple[ShellAction, ...]:
        home = self.environ.get("HOME")
        if not home:
            return ()
        actions: list[ShellAction] = []
        for rel in RC_FILES:
            path = os.path.join(home, rel)
            if not os.path.isfile(path):
                continue
            shell = "fish" if rel.endswith(".fish") else "csh" if "csh" in rel else "sh"
            text = self._read(path)
            if text:
                actions += parse_ld_library_path(text, path, shell, conda_prefix=None)
        return tuple(actions)

    def _read(self, path: str) -> str:
        try:
            with open(path, "rb") as fh:
                return fh.read(MAX_SCRIPT_BYTES).decode("utf-8", errors="replace")
        except OSError as exc:
            self.errors.append(f"{path}: {exc.strerror or exc}")
            return ""


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


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _prefix_chain(environ: Mapping[str, str]) -> dict[int, str]:
    chain: dict[int, str] = {}
    for key, value in environ.items():
        if key.startswith("CONDA_PREFIX_") and key[len("CONDA_PREFIX_"):].isdigit() and value:
            chain[int(key[len("CONDA_PREFIX_"):])] = value
    return dict(sorted(chain.items()))


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _is_conda_prefix(prefix: str | None) -> bool:
    return bool(prefix) and os.path.isdir(os.path.join(prefix, "conda-meta"))  # type: ignore[arg-type]


def _looks_like_base(prefix: str) -> bool:
    return os.path.isfile(os.path.join(prefix, "conda-meta", "history")) and os.path.isdir(
        os.path.join(prefix, "condabin")
    )


def _envs_root(prefix: str | None) -> str | None:
    """/x/envs/name -> /x (where conda keeps named environments of the installation at /x)."""
    if not prefix:
        return None
    parent = os.path.dirname(prefix.rstrip("/"))
    return os.path.dirname(parent) if os.path.basename(parent) == "envs" else None


def _owning_conda_prefix(real_dir: str) -> str | None:
    """The nearest ancestor (or the directory itself) that is a conda environment."""
    current = real_dir
    while True:
        if os.path.isdir(os.path.join(current, "conda-meta")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


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


def _real(path: str) -> str:
    return os.path.realpath(path)


def _unique_existing(paths: Iterable[str | None]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for path in paths:
        if not path or not os.path.isdir(path):
            continue
        real = _real(path)
        if real not in seen:
            seen.add(real)
            out.append(path)
    return out


def _replace(entry: PathEntry, **changes: Any) -> PathEntry:
    from dataclasses import replace

    return replace(entry, **changes)


__all__ = ["CondaFacts", "EnvHooks", "HookScript", "LibraryCopy", "PathEntry", "ShellAction", "gather",
           "parse_ld_library_path"]
