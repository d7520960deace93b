"""The loader's environment: what a run of glibc's ld.so on this machine depends on besides the
file itself — LD_LIBRARY_PATH / LD_PRELOAD, the cache, the compiled-in default directories, the
active glibc-hwcaps subdirectories, what $LIB and $PLATFORM expand to — read from the system,
never hard-coded per distribution.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from tritondoctor import ldcache
from tritondoctor.versions import running_glibc

INTERPRETERS = {"x86_64": "/lib64/ld-linux-x86-64.so.2", "aarch64": "/lib/ld-linux-aarch64.so.1"}

# x86-64 micro-architecture levels (psABI) in /proc/cpuinfo flag names; each level needs the
# previous ones. "abm" is how Linux reports LZCNT; "xsave" stands in for OSXSAVE.
X86_64_LEVELS = (
    ("x86-64-v2", {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}),
    ("x86-64-v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
)

_SYSTEM_DIRS_BLOB = re.compile(rb"(?:/[A-Za-z0-9_.+\-/]*/\x00){2,}")


@dataclass(frozen=True)
class LoaderEnv:
    ld_library_path: str | None
    ld_preload: str | None
    cwd: str
    machine: str
    system_dirs: tuple[str, ...]
    interp: str
    cache: ldcache.LdCache | None
    hwcaps_subdirs: tuple[str, ...]  # active glibc-hwcaps subdirectories, best first
    legacy_subdirs: tuple[str, ...]  # legacy hwcaps subdirectories ("" last), glibc < 2.37
    dst_lib: str  # what $LIB expands to
    platform: str  # what $PLATFORM expands to
    preload_file: tuple[str, ...] = ()  # /etc/ld.so.preload entries

    @classmethod
    def from_system(
        cls,
        environ: Mapping[str, str] | None = None,
        cwd: str | None = None,
        root: str = "/",
    ) -> "LoaderEnv":
        environ = os.environ if environ is None else environ
        machine = os.uname().machine
        interp = INTERPRETERS.get(machine, INTERPRETERS["x86_64"])
        system_dirs = _system_dirs_from_loader(os.path.join(root, interp.lstrip("/")), machine)
        glibc = _glibc_version()
        return cls(
            ld_library_path=environ.get("LD_LIBRARY_PATH"),
            ld_preload=environ.get("LD_PRELOAD"),
            cwd=cwd or os.getcwd(),
            machine=machine,
            system_dirs=system_dirs,
            interp=interp,
            cache=_load_cache(os.path.join(root, "etc/ld.so.cache")),
            hwcaps_subdirs=_active_hwcaps(machine),
            legacy_subdirs=_legacy_subdirs(machine, glibc),
            dst_lib=system_dirs[0].strip("/") if system_dirs else "lib",
            platform=_platform(machine),
            preload_file=_read_preload_file(os.path.join(root, "etc/ld.so.preload")),
        )

    def with_environ(self, environ: Mapping[str, str]) -> "LoaderEnv":
        from dataclasses import replace

        return replace(self, ld_library_path=environ.get("LD_LIBRARY_PATH"), ld_preload=environ.get("LD_PRELOAD"))


_cache_memo: dict[str, tuple[tuple[int, int], ldcache.LdCache | None]] = {}


def _load_cache(path: str) -> ldcache.LdCache | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_ino, st.st_mtime_ns)
    memo = _cache_memo.get(path)
    if memo and memo[0] == key:
        return memo[1]
    cache = ldcache.load(path)
    _cache_memo[path] = (key, cache)
    return cache


def _glibc_version() -> tuple[int, int]:
    return running_glibc() or (2, 38)


# Facts of the machine, not of the environment: read once per process (fix derives many snapshots).
@lru_cache(maxsize=None)
def _system_dirs_from_loader(path: str, machine: str) -> tuple[str, ...]:
    """The loader's compiled-in default directories, read from its own string table.

    They are stored as one run of NUL-terminated absolute directory names (SYSTEM_DIRS in
    elf/dl-load.c), e.g. "/lib/x86_64-linux-gnu/\\0/usr/lib/x86_64-linux-gnu/\\0/lib/\\0/usr/lib/".
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        data = b""
    for match in _SYSTEM_DIRS_BLOB.finditer(data):
        dirs = tuple(d.decode() for d in match.group(0).split(b"\x00") if d)
        if any(d.endswith("/lib/") or d.endswith("/lib64/") for d in dirs):
            return tuple(d.rstrip("/") or "/" for d in dirs)
    return ("/lib64", "/usr/lib64") if machine in ("x86_64", "aarch64") else ("/lib", "/usr/lib")


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def _cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


# glibc's x86 init_cpu_features replaces the kernel's AT_PLATFORM on Intel CPUs: "xeon_phi" with
# AVX512ER/PF, else "haswell" with the Haswell feature set (sysdeps/x86/cpu-features.c).
_HASWELL_FLAGS = frozenset({"avx2", "fma", "bmi1", "bmi2", "abm", "movbe", "popcnt"})


def _platform(machine: str) -> str:
    """What $PLATFORM (and the legacy platform subdirectory) expands to."""
    if machine != "x86_64" or _cpu_vendor() != "GenuineIntel":
        return machine
    flags = _cpu_flags()
    if {"avx512cd", "avx512er", "avx512pf"} <= flags:
        return "xeon_phi"
    if _HASWELL_FLAGS <= flags:
        return "haswell"
    return machine


def _active_hwcaps(machine: str) -> tuple[str, ...]:
    if machine != "x86_64":
        return ()
    flags = _cpu_flags()
    supported: list[str] = []
    for name, needed in X86_64_LEVELS:
        if not needed <= flags:
            break
        supported.append(name)
    return tuple(reversed(supported))


def _legacy_subdirs(machine: str, glibc: tuple[int, int]) -> tuple[str, ...]:
    """Legacy hwcaps subdirectories (removed in glibc 2.37): every subset of tls, the
    hwcap names and the platform, largest first, in the loader's order."""
    if glibc >= (2, 37) or machine != "x86_64":
        return ("",)
    # tls, the platform (AT_PLATFORM), then the hwcap names; the platform may itself be "x86_64".
    components = ["tls", _platform(machine), "x86_64"]
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= _cpu_flags():
        components.insert(2, "avx512_1")
    subdirs = []
    n = len(components)
    for mask in range((1 << n) - 1, -1, -1):
        parts = [components[i] for i in range(n) if mask & (1 << (n - 1 - i))]
        subdirs.append("/".join(parts))
    return tuple(subdirs)


def _read_preload_file(path: str) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ()
    return tuple(e for e in re.split(r"[\s:]+", text) if e and not e.startswith("#"))
