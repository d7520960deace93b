"""The real glibc loader as a test oracle.

`trace(FILE, environ, cwd)` runs `LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2 FILE`
(what `ldd` does) and parses what it prints. Trace mode through the environment variable goes on
past a missing library (printing `name => not found`), where `ld.so --list` stops at the first.

Output lines of rtld.c's trace loop, one per object in the link-map chain after the main map:

    \\tNAME => not found                     a dependency that was not found (a "faked" map)
    \\tNAME => PATH (0xADDR)                 requested as NAME, opened as PATH
    \\tPATH (0xADDR)                         requested by a name equal to the path it was opened
                                             by: the vDSO, ld.so itself, a name with a slash
    \\tstatically linked                     no dynamic section

and, on stderr, one line per missing symbol version (rtld's print_missing_version):

    PROG: FILE: version `V' not found (required by REQUIRER)

Paths are compared after os.path.realpath on both sides (the loader prints the path it opened,
e.g. `bin/../../../x.so` from an RPATH with `$ORIGIN/../..`).
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from tritondoctor.loader import ResolvedTree

RTLD = "/lib64/ld-linux-x86-64.so.2"
VDSO_NAMES = frozenset({"linux-vdso.so.1", "linux-vdso64.so.1", "linux-vdso32.so.1", "linux-gate.so.1"})

# Variables that change the loader's search or output; dropped from the inherited environment
# so that only what a test passes counts.
_LOADER_VARS = (
    "LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT", "LD_BIND_NOW", "LD_DEBUG", "LD_DEBUG_OUTPUT",
    "LD_VERBOSE", "LD_WARN", "LD_TRACE_PRELINKING", "LD_HWCAP_MASK", "LD_ASSUME_KERNEL",
    "GLIBC_TUNABLES", "LD_PROFILE", "LD_ORIGIN_PATH", "LD_USE_LOAD_BIAS", "LD_DYNAMIC_WEAK",
)

_NOT_FOUND = re.compile(r"^\t(?P<name>.+?) => not found$")
_FOUND = re.compile(r"^\t(?P<name>.+?) => (?P<path>.+?) \(0x[0-9a-f]+\)$")
_SELF = re.compile(r"^\t(?P<path>.+?) \(0x[0-9a-f]+\)$")
_LOAD_ERROR = re.compile(r"error while loading shared libraries: (?P<message>.*)$")
_PRELOAD_ERROR = re.compile(r"ERROR: ld\.so: object '(?P<name>.*)' from (?P<where>.*) cannot be preloaded \((?P<why>.*)\): ignored\.$")
_VERSION = re.compile(
    r": (?P<file>[^:]+): (?P<weak>weak )?version `(?P<version>[^']*)' not found \(required by (?P<by>.+)\)$"
)


def canonical(path: str, cwd: str | None = None) -> str:
    """A path as both sides are compared: absolute (relative to `cwd`) and symlink-free."""
    if not os.path.isabs(path) and cwd:
        path = os.path.join(cwd, path)
    return os.path.realpath(path)


@dataclass(frozen=True)
class OracleVersionError:
    version: str
    file: str  # realpath of the object that lacks the version
    required_by: str  # realpath of the object that needs it


@dataclass
class OracleResult:
    file: str
    returncode: int
    stdout: str
    stderr: str
    # (name as printed, realpath or None for "not found"), in the loader's link-map order
    entries: list[tuple[str, str | None]] = field(default_factory=list)
    version_errors: list[OracleVersionError] = field(default_factory=list)
    statically_linked: bool = False
    # "error while loading shared libraries: MESSAGE": ld.so gave up and printed no list
    load_error: str | None = None
    # LD_PRELOAD entries ld.so reported and ignored: (entry, reason)
    preload_errors: list[tuple[str, str]] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)  # stdout lines of no known shape

    @property
    def mapping(self) -> dict[str, str | None]:
        """{name: realpath or None}; a name printed twice (two faked maps) keeps None."""
        out: dict[str, str | None] = {}
        for name, path in self.entries:
            out.setdefault(name, path)
        return out

    @property
    def not_found(self) -> list[str]:
        return [name for name, path in self.entries if path is None]

    @property
    def loaded(self) -> list[str]:
        """Realpaths of every object the loader mapped, in order (vDSO excluded)."""
        return [path for _, path in self.entries if path is not None]


def clean_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in _LOADER_VARS}
    base.update(environ or {})
    return base


def parse(file: str, returncode: int, stdout: str, stderr: str, cwd: str | None = None) -> OracleResult:
    result = OracleResult(file=file, returncode=returncode, stdout=stdout, stderr=stderr)
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if line.strip() == "statically linked":
            result.statically_linked = True
            continue
        m = _NOT_FOUND.match(line)
        if m:
            result.entries.append((m["name"], None))
            continue
        m = _FOUND.match(line)
        if m:
            result.entries.append((m["name"], canonical(m["path"], cwd)))
            continue
        m = _SELF.match(line)
        if m:
            if m["path"] in VDSO_NAMES:
                continue
            result.entries.append((m["path"], canonical(m["path"], cwd)))
            continue
        result.unparsed.append(line)
    for line in stderr.splitlines():
        m = _LOAD_ERROR.search(line)
        if m:
            result.load_error = m["message"]
            continue
        m = _PRELOAD_ERROR.search(line)
        if m:
            result.preload_errors.append((m["name"], m["why"]))
            continue
        m = _VERSION.search(line)
        if m and not m["weak"]:
            result.version_errors.append(
                OracleVersionError(m["version"], canonical(m["file"], cwd), canonical(m["by"], cwd))
            )
    return result


def trace(
    file: str,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 30.0,
    execute: bool = False,
) -> OracleResult:
    """What glibc's loader loads for `file` with `environ` (LD_LIBRARY_PATH, LD_PRELOAD) in `cwd`.

    Nothing of `file` runs: in trace mode rtld maps and version-checks the objects, prints the
    list and exits before relocation or any constructor. By default rtld is invoked explicitly
    (`ld.so FILE`, works for shared objects too); `execute=True` execs an executable itself, so
    that the kernel starts its PT_INTERP and `$ORIGIN` of the main program comes from
    /proc/self/exe (symlinks resolved) as in a real start.
    """
    env = clean_environ(environ)
    env["LD_TRACE_LOADED_OBJECTS"] = "1"
    proc = subprocess.run(
        [file] if execute else [RTLD, file], env=env, cwd=cwd, capture_output=True, text=True, errors="surrogateescape", timeout=timeout
    )
    return parse(file, proc.returncode, proc.stdout, proc.stderr, cwd)


def trace_many(
    jobs: Sequence[tuple[str, Mapping[str, str] | None, str | None]], workers: int | None = None
) -> list[OracleResult]:
    """`trace` for each (file, environ, cwd), concurrently (each is its own ld.so process)."""
    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: trace(*job), jobs))


# ---------------------------------------------------------------------------------------------
# The model's answer in the oracle's shape
# ---------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Model vs ld.so for one file under one environment; `problems` empty means agreement."""

    file: str
    label: str
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems

    def report(self) -> str:
        return f"{self.file} [{self.label}]:\n  " + "\n  ".join(self.problems)


def model_entries(tree: ResolvedTree, cwd: str | None = None) -> list[tuple[str, str | None]]:
    """(name, realpath or None) for each library of a ResolvedTree, in its order; trace mode
    prints an object requested by a name with a slash (or ld.so itself) under its path."""
    out: list[tuple[str, str | None]] = []
    for lib in tree.libraries:
        path = canonical(lib.path, cwd) if lib.path else None
        if lib.path and (lib.via in ("interp", "direct") or "/" in lib.name):
            out.append((lib.path, path))
        else:
            out.append((lib.name, path))
    return out


def compare(tree: ResolvedTree, oracle: OracleResult, label: str = "", cwd: str | None = None) -> Comparison:
    cmp = Comparison(oracle.file, label)
    if oracle.unparsed:
        cmp.problems.append(f"unparsed ld.so output: {oracle.unparsed[:3]}")
    errors = list(tree.errors)
    if oracle.load_error is not None:
        # ld.so gave up: it prints "PATH: REASON[: strerror]" and no list. The model must name
        # the same file and reason among its errors.
        failed_path, _, reason = oracle.load_error.partition(": ")
        # rtld has no strerror table: it prints "Error 21" where libc would say "Is a directory"
        reason = re.sub(r": Error (\d+)$", lambda m: ": " + os.strerror(int(m[1])), reason)
        wanted = (canonical(failed_path, cwd), reason)
        named = [_split_error(e, cwd) for e in errors]
        if not any(p == wanted[0] and r.startswith(wanted[1]) for p, r in named):
            cmp.problems.append(f"ld.so failed with {oracle.load_error!r}; model errors {errors}")
        return cmp
    fatal = [e for e in errors if "cannot open shared object file" not in e]
    if fatal:
        cmp.problems.append(f"model reports load errors ld.so does not have: {fatal}")
    model_preload = sorted(_preload_warnings(tree))
    oracle_preload = sorted(name for name, _ in oracle.preload_errors)
    if model_preload != oracle_preload:
        cmp.problems.append(f"ignored preloads differ: model {model_preload}, ld.so {oracle_preload}")
    # The whole printed list, in order: (name, path or None), a name with a slash (or ld.so's
    # own line) compared as its canonical path.
    model_seq = [(_key(n, cwd), p) for n, p in model_entries(tree, cwd)]
    if oracle.statically_linked:
        # A main object without DT_NEEDED: trace mode prints "statically linked" and no list,
        # not even the LD_PRELOAD objects it did load.
        model_seq = [e for e, lib in zip(model_seq, tree.libraries) if lib.via != "preload"]
    oracle_seq = [(_key(n, cwd), p) for n, p in oracle.entries]
    if model_seq != oracle_seq:
        only_model = [e for e in model_seq if e not in oracle_seq]
        only_oracle = [e for e in oracle_seq if e not in model_seq]
        if only_model or only_oracle:
            cmp.problems.append(f"entries differ: model only {only_model}, ld.so only {only_oracle}")
        else:
            cmp.problems.append(f"order differs:\n    model {model_seq}\n    ld.so {oracle_seq}")
    model_versions = sorted(
        (e.version, canonical(e.file, cwd), canonical(e.required_by, cwd)) for e in tree.version_errors
    )
    oracle_versions = sorted((e.version, e.file, e.required_by) for e in oracle.version_errors)
    if model_versions != oracle_versions:
        cmp.problems.append(f"version errors differ:\n    model {model_versions}\n    ld.so {oracle_versions}")
    return cmp


def _key(name: str, cwd: str | None) -> str:
    return canonical(name, cwd) if "/" in name else name


def _split_error(error: str, cwd: str | None) -> tuple[str, str]:
    path, _, rest = error.partition(": ")
    return canonical(path, cwd), rest


_PRELOAD_WARNING = re.compile(r"object '(?P<name>.*)' from .* cannot be preloaded")


def _preload_warnings(tree: ResolvedTree) -> list[str]:
    out = []
    for warning in tree.warnings:
        m = _PRELOAD_WARNING.search(warning)
        if m:
            out.append(m["name"])
    return out


def is_loadable_elf(path: str) -> bool:
    """A regular ELF shared object or PIE of this machine's class (not a linker script, .o, .a)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return False
    e_type = int.from_bytes(head[16:18], "little")
    e_machine = int.from_bytes(head[18:20], "little")
    return e_type == 3 and e_machine == 62  # ET_DYN, EM_X86_64


def system_shared_objects(dirs: Iterable[str] = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")) -> list[str]:
    """Every ELF shared object in `dirs` (then their subdirectories), deduplicated by realpath,
    sorted, the loader itself excluded (it refuses to load itself)."""
    seen: set[str] = {os.path.realpath(RTLD)}
    top: list[str] = []
    deeper: list[str] = []
    for directory in dirs:
        if not os.path.isdir(directory):
            continue
        for root, subdirs, files in os.walk(directory):
            subdirs.sort()
            for name in sorted(files):
                if ".so" not in name:
                    continue
                path = os.path.join(root, name)
                real = os.path.realpath(path)
                if real in seen or os.path.islink(path) or not is_loadable_elf(real):
                    continue
                seen.add(real)
                (top if root == directory else deeper).append(real)
    return sorted(top) + sorted(deeper)
