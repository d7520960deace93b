"""Limits of the host that PyTriton meets only at run time, read from files (catalog rows 26, 28,
34, 36, 37): systemd-logind's RemoveIPC, the memory limit of this process's cgroup, /tmp's mount,
whether 127.0.0.1 exists on the loopback interface, and QEMU user-mode emulation.

Every reader takes `root` (default "/") so tests can point it at faithful copies of the files.
None of these follow an environment variable: a derived snapshot reuses them.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from tritondoctor.facts import cgroup_memory
from tritondoctor.facts.inputs import EnvReads
from tritondoctor.facts.mounts import mount_for, read_mounts

LOGIND_CONF = "etc/systemd/logind.conf"
LOGIND_DROPINS = ("etc/systemd/logind.conf.d", "run/systemd/logind.conf.d", "usr/lib/systemd/logind.conf.d")
LOGIN_DEFS = "etc/login.defs"
SELF_CGROUP = "proc/self/cgroup"
CGROUP_ROOT = "sys/fs/cgroup"
IF_INET6 = "proc/net/if_inet6"
FIB_TRIE = "proc/net/fib_trie"
BINFMT_DIR = "proc/sys/fs/binfmt_misc"
CPUINFO = "proc/cpuinfo"

READS = EnvReads(files=tuple("/" + p for p in (LOGIND_CONF, *LOGIND_DROPINS, LOGIN_DEFS, SELF_CGROUP, CGROUP_ROOT,
                                               IF_INET6, FIB_TRIE, BINFMT_DIR, CPUINFO, "proc/self/mounts")))

# login.defs(5) default when SYS_UID_MAX is not set: UID_MIN - 1, and UID_MIN defaults to 1000.
DEFAULT_SYS_UID_MAX = 999


def _read(root: str, rel: str) -> Optional[str]:
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


# --- logind RemoveIPC (row 26) ------------------------------------------------------------------

@dataclass(frozen=True)
class LogindFacts:
    remove_ipc: bool
    source: str  # the file whose last RemoveIPC= won, or "default"
    uid: int
    sys_uid_max: int
    sys_uid_max_source: str
    logind_present: bool  # logind.conf (or a drop-in) exists: a systemd-logind host

    @property
    def system_user(self) -> bool:
        return self.uid <= self.sys_uid_max


def _login_section_value(text: str, key: str) -> Optional[str]:
    value, section = None, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == "Login" and "=" in line:
            name, _, val = line.partition("=")
            if name.strip() == key:
                value = val.strip()
    return value


def _bool(value: str) -> Optional[bool]:
    low = value.lower()
    if low in ("1", "yes", "true", "on"):
        return True
    if low in ("0", "no", "false", "off"):
        return False
    return None


def _dropins(root: str) -> list[str]:
    """logind.conf.d drop-ins as systemd orders them: by file name, /etc masking the same name."""
    by_name: dict[str, str] = {}
    for rel in reversed(LOGIND_DROPINS):  # earlier directories win for the same name
        for path in glob.glob(os.path.join(root, rel, "*.conf")):
            by_name[os.path.basename(path)] = path
    return [by_name[name] for name in sorted(by_name)]


def _sys_uid_max(root: str) -> tuple[int, str]:
    text = _read(root, LOGIN_DEFS)
    if text is None:
        return DEFAULT_SYS_UID_MAX, "default"
    found: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("SYS_UID_MAX", "UID_MIN") and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    if "SYS_UID_MAX" in found:
        return found["SYS_UID_MAX"], "/" + LOGIN_DEFS
    if "UID_MIN" in found:
        return found["UID_MIN"] - 1, "/" + LOGIN_DEFS + " (UID_MIN - 1)"
    return DEFAULT_SYS_UID_MAX, "default"


def logind(root: str = "/", uid: Optional[int] = None) -> LogindFacts:
    remove, source = True, "default"  # logind.conf(5): RemoveIPC= defaults to yes
    files = ([os.path.join(root, LOGIND_CONF)] if os.path.exists(os.path.join(root, LOGIND_CONF)) else []) + _dropins(root)
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                value = _login_section_value(fh.read(), "RemoveIPC")
        except OSError:
            continue
        parsed = _bool(value) if value is not None else None
        if parsed is not None:
            remove, source = parsed, "/" + os.path.relpath(path, root)
    sys_max, sys_source = _sys_uid_max(root)
    return LogindFacts(remove, source, os.getuid() if uid is None else uid, sys_max, sys_source, bool(files))


# --- the cgroup memory limit (row 34) -----------------------------------------------------------

@dataclass(frozen=True)
class MemoryLimit:
    limit_bytes: Optional[int]  # the smallest limit on the way from this cgroup up; None: none
    file: Optional[str]  # the file that set it
    version: int  # 1 or 2; 0 when no memory controller was found
    oom_kills: Optional[int] = field(default=None, compare=False)  # memory.events oom_kill (v2) / memory.oom_control oom_kill (v1)


def _candidates(base: str, path: str) -> list[str]:
    """`base`/`path` and its ancestors up to `base`; inside a container's cgroup namespace the
    path may not exist under the mount, then the mount itself is this process's cgroup."""
    parts = [p for p in path.split("/") if p]
    dirs = [os.path.join(base, *parts[:n]) for n in range(len(parts), -1, -1)]
    if not os.path.isdir(dirs[0]):
        return [base]
    return [d for d in dirs if os.path.isdir(d)]


def memory_limit(root: str = "/") -> MemoryLimit:
    v2, v1 = cgroup_memory.cgroup_paths(_read(root, SELF_CGROUP))
    base = os.path.join(root, CGROUP_ROOT)
    attempts = []
    if v2 is not None and os.path.exists(os.path.join(base, "cgroup.controllers")):
        attempts.append((2, base, v2))
    if v1 is not None:
        attempts.append((1, os.path.join(base, "memory"), v1))
    for version, mount, path in attempts:
        name = cgroup_memory.LIMIT_FILE[version]
        dirs = _candidates(mount, path)
        limits = [(value, os.path.join(d, name)) for d in dirs
                  for value in [cgroup_memory.limit_bytes(d, version)] if value is not None]
        kills = _oom_kills(dirs[0], version) if dirs else None
        if limits:
            value, file = min(limits)
            return MemoryLimit(value, "/" + os.path.relpath(file, root), version, kills)
        if dirs and os.path.exists(os.path.join(dirs[0], name)):
            return MemoryLimit(None, None, version, kills)
    return MemoryLimit(None, None, 0)


def _oom_kills(directory: str, version: int) -> Optional[int]:
    text = cgroup_memory.read_text(os.path.join(directory, cgroup_memory.EVENTS_FILE[version]))
    return cgroup_memory.counters(text).get("oom_kill")


# --- /tmp (row 28) ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TmpFacts:
    path: str
    mountpoint: Optional[str]
    fstype: Optional[str]
    noexec: bool
    # Free space moves with every write: not part of a snapshot's identity (derive reuses it).
    free_bytes: Optional[int] = field(compare=False)
    total_bytes: Optional[int] = field(compare=False)


def tmp_dir(path: str = "/tmp") -> TmpFacts:
    """/tmp as python_backend uses it: it copies cloud repositories and unpacks
    EXECUTION_ENV_PATH archives under /tmp, ignoring TMPDIR (src/pb_env.cc)."""
    mount = mount_for(os.path.realpath(path), read_mounts())
    noexec = bool(mount and "noexec" in mount.opts.split(","))
    free = total = None
    try:
        st = os.statvfs(path)
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        noexec = noexec or bool(st.f_flag & os.ST_NOEXEC)
    except OSError:
        pass
    return TmpFacts(path, mount.mountpoint if mount else None, mount.fstype if mount else None, noexec, free, total)


# --- IPv4 loopback (row 37) ---------------------------------------------------------------------

@dataclass(frozen=True)
class LoopbackFacts:
    ipv4_loopback: Optional[bool]  # 127.0.0.1 is a local address; None: cannot tell
    ipv6_loopback: bool  # ::1 on lo


def loopback(root: str = "/") -> LoopbackFacts:
    trie = _read(root, FIB_TRIE)
    v4: Optional[bool] = None
    if trie is not None:
        v4 = bool(re.search(r"\|-- 127\.0\.0\.1\n\s*/32 host LOCAL", trie))
    inet6 = _read(root, IF_INET6) or ""
    v6 = any(line.split()[:1] == ["00000000000000000000000000000001"] for line in inet6.splitlines())
    return LoopbackFacts(v4, v6)


# --- emulation (row 36) -------------------------------------------------------------------------

@dataclass(frozen=True)
class EmulationFacts:
    machine: str
    qemu_handlers: tuple[tuple[str, str], ...]  # enabled binfmt_misc qemu-* handlers: (name, interpreter)
    cpu_vendor: Optional[str]  # vendor_id of /proc/cpuinfo ("VirtualApple" under Rosetta)
    arm_cpuinfo: bool  # /proc/cpuinfo describes ARM cores ("CPU implementer")

    @property
    def emulated(self) -> bool:
        """An x86-64 process on ARM cores: QEMU user mode shows the host's cpuinfo."""
        return self.machine in ("x86_64", "amd64") and self.arm_cpuinfo


def _qemu_handlers(root: str) -> tuple[tuple[str, str], ...]:
    found = []
    for path in sorted(glob.glob(os.path.join(root, BINFMT_DIR, "qemu-*"))):
        text = _read(root, os.path.relpath(path, root)) or ""
        lines = text.splitlines()
        if not lines or lines[0].strip() != "enabled":
            continue
        interp = next((ln.split(None, 1)[1] for ln in lines if ln.startswith("interpreter ")), "")
        found.append((os.path.basename(path), interp))
    return tuple(found)


def emulation(root: str = "/", machine: Optional[str] = None) -> EmulationFacts:
    cpuinfo = _read(root, CPUINFO) or ""
    vendor = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("vendor_id")), None)
    return EmulationFacts(machine or os.uname().machine, _qemu_handlers(root), vendor, "CPU implementer" in cpuinfo)


# --- together ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostLimits:
    logind: LogindFacts
    memory: MemoryLimit
    tmp: TmpFacts
    loopback: LoopbackFacts
    emulation: EmulationFacts


def gather(root: str = "/") -> HostLimits:
    return HostLimits(logind(root), memory_limit(root), tmp_dir(os.path.join(root, "tmp")), loopback(root),
                      emulation(root))
