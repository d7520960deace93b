"""Runtime resources PyTriton 0.7.0 needs when it starts tritonserver, looked at once.

One module per resource: ports (facts/ports.py), Triton processes already running
(facts/processes.py), /dev/shm (facts/shm.py), the workspace under PYTRITON_HOME
(facts/workspace.py); `RuntimeFacts` holds them together as `Snapshot.runtime`. Their names are
re-exported here for the checks that import them from this module.

Cost (measured here: ~5 ms with nothing wrong): ports are bound, not listed; /proc is read once;
psutil (~40 ms to import) only to name a port's owner; the mount table is read directly.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from tritondoctor.facts import ports as ports_facts
from tritondoctor.facts import processes as process_facts
from tritondoctor.facts import shm as shm_facts
from tritondoctor.facts import workspace as workspace_facts
from tritondoctor.facts.mounts import Mount, read_mounts  # noqa: F401 - re-exported
from tritondoctor.facts.ports import Listener, PortState, bind_error  # noqa: F401 - re-exported
from tritondoctor.facts.processes import SERVER_NAMES, ServerProcess, scan_processes  # noqa: F401
from tritondoctor.facts.shm import (  # noqa: F401 - re-exported
    PYTHON_BACKEND_DEFAULT_SHM,
    PYTHON_BACKEND_SHM_PREFIX,
    PYTRITON_SHM_RE,
    SHM_DIR,
    ShmFacts,
    ShmSegment,
)
from tritondoctor.facts.workspace import (  # noqa: F401 - re-exported
    AF_UNIX_MAX,
    LONGEST_SOCKET_SUFFIX,
    WORKSPACE_NAME_LEN,
    WorkspaceFacts,
    socket_budget,
)
from tritondoctor.versions import numeric

if TYPE_CHECKING:
    from tritondoctor.facts.pytriton import PyTritonInstall
    from tritondoctor.facts.target import TargetPython
    from tritondoctor.options import CheckOptions

# Kept for callers of the old private names (tests read /proc/<pid>/stat through it).
_read_stat = process_facts.read_stat
_read_cmdline = process_facts.read_cmdline

# Ports, processes and /dev/shm read no environment variable; the workspace does.
READS = workspace_facts.READS | shm_facts.READS | ports_facts.READS


@dataclass(frozen=True)
class RuntimeFacts:
    ports: tuple[PortState, ...] = ()
    listening_ports: tuple[int, ...] = ()  # every TCP port listening here (for suggestions)
    servers: tuple[ServerProcess, ...] = ()
    shm: ShmFacts | None = None
    workspace: WorkspaceFacts | None = None
    bundled_cudart: str | None = None  # "12.6.77", read from nvidia_pytriton.libs file names
    bundled_cudart_file: str | None = None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def for_environ(self, environ: Mapping[str, str], install: "PyTritonInstall | None",
                    target: "TargetPython | None") -> "RuntimeFacts":
        """The same machine seen from another environment (Snapshot.derive): what follows the
        environment or the install (the workspace under PYTRITON_HOME / XDG_CACHE_HOME / HOME,
        the bundled CUDA runtime, the shm region sizes) is read again;
        ports, processes and /dev/shm's contents do not move."""
        try:
            return dataclasses.replace(self, **_environment_parts(environ, install, target, read_mounts()),
                                       shm=self.shm.for_install(install) if self.shm else None)
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
            key = numeric(version) or ()
            if best is None or key > best[0]:
                best = (key, version, os.path.join(libs_dir, name))
    return (best[1], best[2]) if best else (None, None)


def _environment_parts(environ: Mapping[str, str], install: "PyTritonInstall | None",
                       target: "TargetPython | None", mounts: list[Any]) -> dict[str, Any]:
    """The fields that depend on the environment or the install, not on the machine's state."""
    cudart, cudart_file = bundled_cudart(install.libs_dir) if install is not None else (None, None)
    return dict(
        workspace=workspace_facts.gather(environ, install, target, mounts),
        bundled_cudart=cudart,
        bundled_cudart_file=cudart_file,
    )


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
        ports, listening = ports_facts.gather(tuple(options.ports), errors)
        table = scan_processes()
        servers = process_facts.servers(table)
        if servers:
            servers = process_facts.with_ports(servers, ports_facts.held_by(ports))
        return RuntimeFacts(
            ports=ports,
            listening_ports=listening,
            servers=servers,
            shm=shm_facts.gather(shm_dir, mounts, process_facts.alive_pids(table), install),
            **_environment_parts(environ, install, target, mounts),
            errors=tuple(errors),
        )
    except Exception as exc:  # never raise: report what broke instead
        return RuntimeFacts(errors=tuple(errors) + (f"{exc.__class__.__name__}: {exc}",))
