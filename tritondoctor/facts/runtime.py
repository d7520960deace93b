"""Runtime resources PyTriton 0.7.0 needs when it starts tritonserver, looked at once.

Read from 0.7.0's own code (pytriton/triton.py, utils/workspace.py, proxy/model.py,
models/model.py):
- the server binaries are *copied* into `$PYTRITON_HOME/workspace_XXXXXXXX/tritonserver`
  (tempfile.TemporaryDirectory(dir=PYTRITON_HOME, prefix="workspace_"), resolved) and run from
  there, so PYTRITON_HOME must be writable, have room for the copy, and allow exec;
- PyTriton's AF_UNIX sockets live directly in that workspace: `<model>-data.sock`,
  `<model>-config.sock` and, longest, `<model>_0_<i>-server.sock` (one per infer function);
- the python backend's shared-memory regions are named `<prefix><n or uuid>` in /dev/shm, the
  prefix being `pytrtion<pid>-<8 hex>` (sic, Triton._shm_prefix) with PyTriton and
  `triton_python_backend_shm_region_` with plain Triton; PyTriton asks for
  `shm-default-byte-size` INITIAL_BACKEND_SHM_SIZE (4 MiB) and `shm-growth-byte-size`
  GROWTH_BACKEND_SHM_SIZE (1 MiB), read here from the installed triton.py.

Cost (measured here: ~5 ms with nothing wrong): each checked port is probed by binding
0.0.0.0:port exactly as tritonserver's listeners do (SO_REUSEADDR, never listening, closed at
once); only when a bind fails is psutil.net_connections() asked who holds it (reading
/proc/net/tcp alone costs ~10 ms on some kernels). Processes are scanned once, one read of
/proc/<pid>/stat each (psutil.process_iter costs ~5x that); command lines are read only for
Triton processes and their parents. psutil itself (~40 ms to import) is imported only to name a
port's owner; the mount table is read from /proc/self/mounts directly.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from tritondoctor.facts import pytriton as pytriton_facts

if TYPE_CHECKING:
    from tritondoctor.facts.pytriton import PyTritonInstall
    from tritondoctor.facts.target import TargetPython
    from tritondoctor.options import CheckOptions

SHM_DIR = "/dev/shm"
PYTHON_BACKEND_SHM_PREFIX = "triton_python_backend_shm_region_"
PYTRITON_SHM_RE = re.compile(r"^pytrtion(\d+)-[0-9a-f]{8}")
# python_backend's BackendState defaults (src/python_be.cc): 64 MiB regions, 64 MiB growth.
PYTHON_BACKEND_DEFAULT_SHM = 64 * 1024 * 1024
SERVER_NAMES = ("tritonserver", "triton_python_backend_stub")
# sockaddr_un.sun_path is 108 bytes; ZeroMQ's ipc:// transport (PyTriton's request sockets)
# rejects a path of sizeof(sun_path) or more bytes (ENAMETOOLONG), so 107 is the longest usable.
AF_UNIX_MAX = 107
WORKSPACE_NAME_LEN = len("workspace_") + 8  # tempfile's 8 random characters
LONGEST_SOCKET_SUFFIX = "_0_0-server.sock"  # <model>_0_<i>-server.sock, i < 10


@dataclass(frozen=True)
class Listener:
    port: int
    address: str
    pid: int | None = None
    name: str | None = None
    cmdline: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortState:
    port: int
    listeners: tuple[Listener, ...] = ()  # who holds it (may be empty when the owner is hidden)
    bind_errno: int | None = None  # what binding 0.0.0.0:port as tritonserver does said

    @property
    def taken(self) -> bool:
        return self.bind_errno is not None


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    name: str
    status: str  # from /proc/<pid>/stat: "running", "sleeping", "zombie", ...
    cmdline: tuple[str, ...] = ()
    ppid: int | None = None
    parent_alive: bool = False
    parent_name: str | None = None
    parent_cmdline: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()  # TCP ports it listens on

    @property
    def zombie(self) -> bool:
        return self.status == "zombie"

    @property
    def orphaned(self) -> bool:
        """Its starter is gone: re-parented to init (or a subreaper) or to nothing."""
        return not self.zombie and (self.ppid in (None, 0, 1) or not self.parent_alive)


@dataclass(frozen=True)
class ShmSegment:
    name: str
    size: int
    kind: str  # "pytriton" or "python_backend"
    creator_pid: int | None = None  # the PyTriton process whose prefix it carries
    creator_alive: bool | None = None


@dataclass(frozen=True)
class ShmFacts:
    path: str
    exists: bool
    fstype: str | None = None
    total: int | None = None
    free: int | None = None
    writable: bool = False
    segments: tuple[ShmSegment, ...] = ()
    region_bytes: int = PYTHON_BACKEND_DEFAULT_SHM  # first region of each python-backend instance
    growth_bytes: int | None = None
    region_source: str = "python_backend default (src/python_be.cc)"


@dataclass(frozen=True)
class WorkspaceFacts:
    home: str  # PYTRITON_HOME as PyTriton resolves it
    configured_by: str  # "PYTRITON_HOME", "XDG_CACHE_HOME" (its pytriton/) or "default" (~/.cache/pytriton)
    exists: bool
    is_dir: bool
    existing: str  # the home, or its nearest existing ancestor (what PyTriton's mkdir starts from)
    blocker: str | None = None  # an existing non-directory on the way
    writable: bool = False  # a directory could really be created in `existing` (see _try_mkdir)
    write_error: str | None = None  # what the attempt said, e.g. "Read-only file system (errno 30)"
    read_only_fs: bool = False
    noexec: bool = False
    free_bytes: int | None = None
    needed_bytes: int | None = None  # what PyTriton copies into each workspace
    mountpoint: str | None = None
    fstype: str | None = None
    mount_options: tuple[str, ...] = ()
    longest_socket: str = ""  # for a one-character model name
    socket_name_budget: int = 0  # longest model name whose sockets still fit in AF_UNIX_MAX
    running_as_root: bool = False
    fallback_home: str | None = None  # a short, writable, exec-allowed directory to suggest
    error: str | None = None


@dataclass(frozen=True)
class RuntimeFacts:
    ports: tuple[PortState, ...] = ()
    listening_ports: tuple[int, ...] = ()  # every TCP port listening here (for suggestions)
    servers: tuple[ServerProcess, ...] = ()
    shm: ShmFacts | None = None
    workspace: WorkspaceFacts | None = None
    container: str | None = None  # "docker", "podman", "kubernetes", "lxc", "container" or None
    bundled_cudart: str | None = None  # "12.6.77", read from nvidia_pytriton.libs file names
    bundled_cudart_file: str | None = None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def for_environ(self, environ: Mapping[str, str], install: "PyTritonInstall | None",
                    target: "TargetPython | None") -> "RuntimeFacts":
        """The same machine seen from another environment (Snapshot.derive): the workspace
        follows PYTRITON_HOME / XDG_CACHE_HOME / HOME (pass the install located under `environ`);
        ports, processes and /dev/shm do not move."""
        try:
            return dataclasses.replace(self, workspace=_workspace(environ, install, target, read_mounts()))
        except Exception as exc:
            return dataclasses.replace(self, errors=self.errors + (f"{exc.__class__.__name__}: {exc}",))


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" or value == int(value) else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# --- ports -------------------------------------------------------------------------------------

def bind_error(port: int, address: str = "0.0.0.0") -> int | None:
    """errno of binding `address:port` the way tritonserver's HTTP, gRPC and metrics listeners
    do (all addresses, SO_REUSEADDR, no SO_REUSEPORT), or None when it would succeed. The socket
    never listens and is closed at once, so nothing is left behind (no TIME_WAIT)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        return None
    except OSError as exc:
        return exc.errno
    finally:
        sock.close()


def _ports(wanted: tuple[int, ...], errors: list[str]) -> tuple[tuple[PortState, ...], tuple[int, ...]]:
    """The state of each wanted port, and (only when one is taken) every listening TCP port."""
    failed = {port: err for port in wanted if (err := bind_error(port)) is not None}
    if not failed:
        return tuple(PortState(port=p) for p in wanted), ()
    conns: list[Any] = []
    try:
        import psutil  # ~40 ms to import: only when there is an owner to name

        conns = [c for c in psutil.net_connections(kind="tcp") if c.laddr and c.status == psutil.CONN_LISTEN]
    except Exception as exc:  # ImportError, psutil.AccessDenied, OSError
        errors.append(f"net_connections: {exc.__class__.__name__}: {exc}")
    states = []
    for port in wanted:
        if port not in failed:
            states.append(PortState(port=port))
            continue
        listeners = []
        for conn in conns:
            if conn.laddr.port != port:
                continue
            name: str | None = None
            cmdline: tuple[str, ...] = ()
            if conn.pid:
                name, cmdline = _comm(conn.pid), _read_cmdline(conn.pid)
            listeners.append(Listener(port=port, address=conn.laddr.ip, pid=conn.pid, name=name, cmdline=cmdline))
        states.append(PortState(port=port, listeners=tuple(listeners), bind_errno=failed[port]))
    listening = tuple(sorted({c.laddr.port for c in conns}))
    return tuple(states), listening


# --- processes ---------------------------------------------------------------------------------

def _read_stat(pid: int | str, proc_root: str = "/proc") -> tuple[str, str, int] | None:
    """(comm, state letter, ppid) from /proc/<pid>/stat: one read per process."""
    try:
        with open(f"{proc_root}/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    left, right = raw.find(b"("), raw.rfind(b")")
    if left < 0 or right < 0:
        return None
    fields = raw[right + 2:].split()
    try:
        return raw[left + 1:right].decode("utf-8", "replace"), fields[0].decode(), int(fields[1])
    except (IndexError, ValueError):
        return None


def _read_cmdline(pid: int, proc_root: str = "/proc") -> tuple[str, ...]:
    try:
        with open(f"{proc_root}/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return ()
    return tuple(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)


def _comm(pid: int) -> str | None:
    stat = _read_stat(pid)
    return _full_name(pid, stat[0]) if stat else None


def _full_name(pid: int, comm: str) -> str:
    # comm is cut at 15 bytes ("triton_python_b"): take the executable's name from argv[0]
    # (a zombie has none left: the stub is the one Triton process with that prefix).
    if len(comm) >= 15:
        argv = _read_cmdline(pid)
        if argv and os.path.basename(argv[0]).startswith(comm):
            return os.path.basename(argv[0])
        if comm == "triton_python_b":
            return "triton_python_backend_stub"
    return comm


_STATES = {"R": "running", "S": "sleeping", "D": "disk-sleep", "Z": "zombie", "T": "stopped",
           "t": "tracing-stop", "X": "dead", "I": "idle"}


def _is_server_name(name: str | None) -> bool:
    if not name:
        return False
    return name in SERVER_NAMES or name.startswith("triton_python_b")


def scan_processes(proc_root: str = "/proc") -> dict[int, tuple[str, str, int]]:
    """pid -> (comm, state letter, ppid) for every process: one pass over /proc."""
    table: dict[int, tuple[str, str, int]] = {}
    try:
        names = os.listdir(proc_root)
    except OSError:
        return table
    for name in names:
        if name.isdigit():
            stat = _read_stat(name, proc_root)
            if stat is not None:
                table[int(name)] = stat
    return table


def _servers(table: dict[int, tuple[str, str, int]]) -> tuple[ServerProcess, ...]:
    servers = []
    for pid, (comm, state, ppid) in table.items():
        if not _is_server_name(comm):
            continue
        parent = table.get(ppid) if ppid else None
        servers.append(ServerProcess(
            pid=pid,
            name=_full_name(pid, comm),
            status=_STATES.get(state, state),
            cmdline=_read_cmdline(pid),
            ppid=ppid,
            parent_alive=parent is not None and parent[1] != "Z",
            parent_name=_full_name(ppid, parent[0]) if parent else None,
            parent_cmdline=_read_cmdline(ppid) if parent else (),
        ))
    return tuple(sorted(servers, key=lambda s: s.pid))


# --- /dev/shm ----------------------------------------------------------------------------------

def _shm_region_config(install: "PyTritonInstall | None") -> tuple[int, int | None, str]:
    if install is not None:
        path = os.path.join(install.package_dir, "triton.py")
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            initial = re.search(r"^INITIAL_BACKEND_SHM_SIZE\s*=\s*(\d+)", text, re.M)
            growth = re.search(r"^GROWTH_BACKEND_SHM_SIZE\s*=\s*(\d+)", text, re.M)
            if initial:
                return (int(initial.group(1)), int(growth.group(1)) if growth else None,
                        f"INITIAL_BACKEND_SHM_SIZE in {path}")
        except OSError:
            pass
        return PYTHON_BACKEND_DEFAULT_SHM, PYTHON_BACKEND_DEFAULT_SHM, (
            f"python_backend default (nvidia-pytriton {install.version} sets no shm-default-byte-size)")
    return PYTHON_BACKEND_DEFAULT_SHM, PYTHON_BACKEND_DEFAULT_SHM, "python_backend default (src/python_be.cc)"


def _shm(path: str, mounts: list[Any], alive: set[int], install: "PyTritonInstall | None") -> ShmFacts:
    region, growth, source = _shm_region_config(install)
    base: dict[str, Any] = dict(path=path, region_bytes=region, growth_bytes=growth, region_source=source)
    if not os.path.isdir(path):
        return ShmFacts(exists=False, **base)
    total: int | None = None
    free: int | None = None
    read_only = False
    try:
        st = os.statvfs(path)
        total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        read_only = bool(st.f_flag & os.ST_RDONLY)
    except OSError:
        pass
    segments = []
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for entry in entries:
        kind, creator = None, None
        match = PYTRITON_SHM_RE.match(entry.name)
        if match:
            kind, creator = "pytriton", int(match.group(1))
        elif entry.name.startswith(PYTHON_BACKEND_SHM_PREFIX):
            kind = "python_backend"
        if kind is None:
            continue
        try:
            size = entry.stat(follow_symlinks=False).st_size
        except OSError:
            size = 0
        segments.append(ShmSegment(entry.name, size, kind, creator, (creator in alive) if creator else None))
    mount = _mount_for(path, mounts)
    return ShmFacts(
        exists=True,
        fstype=mount.fstype if mount else None,
        total=total,
        free=free,
        writable=os.access(path, os.W_OK | os.X_OK) and not read_only,
        segments=tuple(sorted(segments, key=lambda s: s.name)),
        **base,
    )


# --- workspace ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    opts: str


def _unescape(field: str) -> str:
    # /proc/self/mounts escapes space, tab, newline and backslash as octal: \040 \011 \012 \134
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mounts(path: str = "/proc/self/mounts") -> list[Mount]:
    """The mount table, in mount order (psutil.disk_partitions(all=True) reads the same file,
    but importing psutil alone costs ~35-50 ms)."""
    mounts = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 4:
                    mounts.append(Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2], parts[3]))
    except OSError:
        pass
    return mounts


def _mount_for(path: str, mounts: list[Any]) -> Any:
    best = None
    for part in mounts:
        mp = part.mountpoint
        if path == mp or path.startswith(mp.rstrip("/") + "/") or mp == "/":
            if best is None or len(mp) >= len(best.mountpoint):
                best = part  # later entries of the same mountpoint are mounted over earlier ones
    return best


def _dir_size(path: str, skip: tuple[str, ...] = ()) -> int:
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    if entry.name in skip:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def _configured_by(environ: Mapping[str, str]) -> str:
    if environ.get("PYTRITON_HOME"):
        return "PYTRITON_HOME"
    if environ.get("XDG_CACHE_HOME"):
        return "XDG_CACHE_HOME"
    return "default"


def _try_mkdir(directory: str) -> str | None:
    """Create and remove an empty directory where PyTriton will create its workspace. os.access
    is not enough: root passes it everywhere, yet /proc, a read-only mount, an NFS export with
    root_squash or an immutable directory still refuse. None when it worked, else why not."""
    import tempfile

    if not os.access(directory, os.W_OK | os.X_OK):
        return "no write permission (os.access)"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".tritondoctor-", dir=directory))
    except OSError as exc:
        return f"{exc.strerror or exc} (errno {exc.errno})"
    return None


def socket_budget(home: str) -> tuple[str, int]:
    """The longest socket path PyTriton 0.7.0 builds for a one-character model name, and the
    longest model name whose sockets still fit."""
    workspace = os.path.join(home, "workspace_" + "X" * (WORKSPACE_NAME_LEN - len("workspace_")))
    example = os.path.join(workspace, "m" + LONGEST_SOCKET_SUFFIX)
    fixed = len(os.fsencode(workspace)) + 1 + len(LONGEST_SOCKET_SUFFIX)
    return example, AF_UNIX_MAX - fixed


def _workspace(environ: Mapping[str, str], install: "PyTritonInstall | None", target: "TargetPython | None",
               mounts: list[Any]) -> WorkspaceFacts:
    home = install.pytriton_home if install is not None and install.pytriton_home else pytriton_facts.pytriton_home(environ)
    existing, blocker = home, None
    while not os.path.lexists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if os.path.lexists(existing) and not os.path.isdir(existing):
        blocker = existing
    example, budget = socket_budget(home)
    facts: dict[str, Any] = dict(
        home=home,
        configured_by=_configured_by(environ),
        exists=os.path.exists(home),
        is_dir=os.path.isdir(home),
        existing=existing,
        blocker=blocker,
        longest_socket=example,
        socket_name_budget=budget,
        running_as_root=os.geteuid() == 0,
    )
    probe = existing if blocker is None else os.path.dirname(blocker)
    try:
        st = os.statvfs(probe)
        facts.update(free_bytes=st.f_bavail * st.f_frsize, read_only_fs=bool(st.f_flag & os.ST_RDONLY),
                     noexec=bool(st.f_flag & os.ST_NOEXEC))
    except OSError as exc:
        facts["error"] = f"statvfs({probe}): {exc.strerror or exc}"
    if blocker is None:
        facts["write_error"] = _try_mkdir(existing)
        facts["writable"] = facts["write_error"] is None
    mount = _mount_for(os.path.realpath(probe), mounts)
    if mount is not None:
        options = tuple(mount.opts.split(","))
        facts.update(mountpoint=mount.mountpoint, fstype=mount.fstype, mount_options=options)
        facts["noexec"] = facts.get("noexec", False) or "noexec" in options
    if blocker is not None or not facts["writable"] or facts.get("noexec") or facts["socket_name_budget"] < 32:
        facts["fallback_home"] = _fallback_home(mounts, exclude=home)
    if install is not None and os.path.isdir(install.server_dir):
        stub = install.stub_for(target.minor) if target is not None else None
        stub_size = os.path.getsize(stub) if stub and os.path.isfile(stub) else 0
        facts["needed_bytes"] = _dir_size(install.server_dir, skip=("python_backend_stubs",)) + stub_size
    return WorkspaceFacts(**facts)


def _fallback_home(mounts: list[Any], exclude: str = "") -> str | None:
    """A short PYTRITON_HOME that would work: writable, on an exec-allowed, writable mount."""
    candidates = ["/tmp/pytriton", "/var/tmp/pytriton", os.path.join(os.path.expanduser("~"), ".pytriton")]
    for candidate in candidates:
        if candidate == exclude or exclude.startswith(candidate + "/"):
            continue
        existing = candidate
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or _try_mkdir(existing) is not None:
            continue
        try:
            st = os.statvfs(existing)
        except OSError:
            continue
        if st.f_flag & (os.ST_RDONLY | os.ST_NOEXEC):
            continue
        mount = _mount_for(os.path.realpath(existing), mounts)
        if mount is not None and "noexec" in mount.opts.split(","):
            continue
        return candidate
    return None


# --- the rest ----------------------------------------------------------------------------------

def _container(environ: Mapping[str, str]) -> str | None:
    if environ.get("KUBERNETES_SERVICE_HOST") or os.path.isdir("/var/run/secrets/kubernetes.io"):
        return "kubernetes"
    if os.path.exists("/run/.containerenv"):
        return "podman"
    if os.path.exists("/.dockerenv"):
        return "docker"
    try:
        with open("/proc/1/cgroup", encoding="utf-8", errors="replace") as fh:
            cgroup = fh.read()
    except OSError:
        cgroup = ""
    for marker, kind in (("kubepods", "kubernetes"), ("docker", "docker"), ("libpod", "podman"), ("lxc", "lxc")):
        if marker in cgroup:
            return kind
    if environ.get("container"):
        return environ["container"]
    return None


_CUDART_RE = re.compile(r"^libcudart(?:-[0-9a-f]+)?\.so\.(\d+(?:\.\d+)*)$")


def bundled_cudart(libs_dir: str) -> tuple[str | None, str | None]:
    """(version, file) of the CUDA runtime auditwheel bundled: `libcudart-<hash>.so.12.6.77`."""
    try:
        names = os.listdir(libs_dir)
    except OSError:
        return None, None
    best: tuple[tuple[int, ...], str, str] | None = None
    for name in names:
        match = _CUDART_RE.match(name)
        if match:
            version = match.group(1)
            key = tuple(int(x) for x in version.split("."))
            if best is None or key > best[0]:
                best = (key, version, os.path.join(libs_dir, name))
    return (best[1], best[2]) if best else (None, None)


def gather(
    environ: Mapping[str, str],
    options: "CheckOptions",
    install: "PyTritonInstall | None",
    target: "TargetPython | None",
    shm_dir: str = SHM_DIR,
) -> RuntimeFacts:
    errors: list[str] = []
    try:
        mounts = read_mounts()
        if not mounts:
            errors.append("mount table: /proc/self/mounts could not be read")
        ports, listening = _ports(tuple(options.ports), errors)
        table = scan_processes()
        servers = _servers(table)
        alive = {pid for pid, (_comm, state, _ppid) in table.items() if state != "Z"}
        if servers:
            by_pid: dict[int, list[int]] = {}
            for state in ports:
                for listener in state.listeners:
                    if listener.pid:
                        by_pid.setdefault(listener.pid, []).append(state.port)
            servers = tuple(dataclasses.replace(s, ports=tuple(by_pid.get(s.pid, ()))) for s in servers)
        cudart, cudart_file = bundled_cudart(install.libs_dir) if install is not None else (None, None)
        return RuntimeFacts(
            ports=ports,
            listening_ports=listening,
            servers=servers,
            shm=_shm(shm_dir, mounts, alive, install),
            workspace=_workspace(environ, install, target, mounts),
            container=_container(environ),
            bundled_cudart=cudart,
            bundled_cudart_file=cudart_file,
            errors=tuple(errors),
        )
    except Exception as exc:  # never raise: report what broke instead
        return RuntimeFacts(errors=tuple(errors) + (f"{exc.__class__.__name__}: {exc}",))
