"""PyTriton's workspace: where PyTriton 0.7.0 copies and runs tritonserver.

Read from 0.7.0's own code (pytriton/triton.py, utils/workspace.py, proxy/model.py):
- the server binaries are *copied* into `$PYTRITON_HOME/workspace_XXXXXXXX/tritonserver`
  (tempfile.TemporaryDirectory(dir=PYTRITON_HOME, prefix="workspace_"), resolved) and run from
  there, so PYTRITON_HOME must be writable, have room for the copy, and allow exec;
- PyTriton's AF_UNIX sockets live directly in that workspace: `<model>-data.sock`,
  `<model>-config.sock` and, longest, `<model>_0_<i>-server.sock` (one per infer function).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts.inputs import EnvReads
from tritondoctor.facts.mounts import MOUNTS_FILE, mount_for

if TYPE_CHECKING:
    from tritondoctor.facts.pytriton import PyTritonInstall
    from tritondoctor.facts.target import TargetPython

READS = EnvReads(files=(MOUNTS_FILE,)) | pytriton_facts.READS

# sockaddr_un.sun_path is 108 bytes; ZeroMQ's ipc:// transport (PyTriton's request sockets)
# rejects a path of sizeof(sun_path) or more bytes (ENAMETOOLONG), so 107 is the longest usable.
AF_UNIX_MAX = 107
WORKSPACE_NAME_LEN = len("workspace_") + 8  # tempfile's 8 random characters
LONGEST_SOCKET_SUFFIX = "_0_0-server.sock"  # <model>_0_<i>-server.sock, i < 10


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


def try_mkdir(directory: str) -> str | None:
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


def _existing_ancestor(home: str) -> tuple[str, str | None]:
    """(the home or its nearest existing ancestor, an existing non-directory on the way)."""
    existing = home
    while not os.path.lexists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    blocker = existing if os.path.lexists(existing) and not os.path.isdir(existing) else None
    return existing, blocker


def _filesystem(probe: str, mounts: list[Any]) -> dict[str, Any]:
    """What statvfs and the mount table say about the filesystem holding `probe`."""
    facts: dict[str, Any] = {}
    try:
        st = os.statvfs(probe)
        facts.update(free_bytes=st.f_bavail * st.f_frsize, read_only_fs=bool(st.f_flag & os.ST_RDONLY),
                     noexec=bool(st.f_flag & os.ST_NOEXEC))
    except OSError as exc:
        facts["error"] = f"statvfs({probe}): {exc.strerror or exc}"
    mount = mount_for(os.path.realpath(probe), mounts)
    if mount is not None:
        options = tuple(mount.opts.split(","))
        facts.update(mountpoint=mount.mountpoint, fstype=mount.fstype, mount_options=options)
        facts["noexec"] = facts.get("noexec", False) or "noexec" in options
    return facts


def _needed_bytes(install: "PyTritonInstall | None", target: "TargetPython | None") -> int | None:
    if install is None or not os.path.isdir(install.server_dir):
        return None
    stub = install.stub_for(target.minor) if target is not None else None
    stub_size = os.path.getsize(stub) if stub and os.path.isfile(stub) else 0
    return _dir_size(install.server_dir, skip=("python_backend_stubs",)) + stub_size


def gather(environ: Mapping[str, str], install: "PyTritonInstall | None", target: "TargetPython | None",
           mounts: list[Any]) -> WorkspaceFacts:
    home = install.pytriton_home if install is not None and install.pytriton_home else pytriton_facts.pytriton_home(environ)
    existing, blocker = _existing_ancestor(home)
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
    facts.update(_filesystem(existing if blocker is None else os.path.dirname(blocker), mounts))
    if blocker is None:
        facts["write_error"] = try_mkdir(existing)
        facts["writable"] = facts["write_error"] is None
    if blocker is not None or not facts.get("writable") or facts.get("noexec") or budget < 32:
        facts["fallback_home"] = _fallback_home(mounts, exclude=home)
    needed = _needed_bytes(install, target)
    if needed is not None:
        facts["needed_bytes"] = needed
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
        if not os.path.isdir(existing) or try_mkdir(existing) is not None:
            continue
        try:
            st = os.statvfs(existing)
        except OSError:
            continue
        if st.f_flag & (os.ST_RDONLY | os.ST_NOEXEC):
            continue
        mount = mount_for(os.path.realpath(existing), mounts)
        if mount is not None and "noexec" in mount.opts.split(","):
            continue
        return candidate
    return None
