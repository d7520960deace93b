"""Synthetic snapshots for the fast tier (tests/checks/): every fact dataclass built in memory.

`base()` is a healthy x86-64 machine with one GPU and a venv holding nvidia-pytriton 0.7.0 for
Python 3.11; every check passes on it. Tests derive the case they need with `patch()` (replace
fields of one fact of the snapshot) or `dataclasses.replace` on the snapshot itself. Nothing here
runs a process, probes an interpreter or reads the machine: paths live under FAKE, which does not
exist, so the few facts that consult the file system (TargetPython.is_conda) see nothing there.
"""

from __future__ import annotations

import dataclasses
import os
from types import ModuleType
from typing import Any, Iterable

from tritondoctor.facts.conda import CondaFacts, EnvHooks, HookScript, LibraryCopy, PathEntry
from tritondoctor.facts.gpu import DeviceNode, GpuDevice, GpuFacts
from tritondoctor.facts.hostlimits import (
    EmulationFacts,
    HostLimits,
    LogindFacts,
    LoopbackFacts,
    MemoryLimit,
    TmpFacts,
)
from tritondoctor.facts.libpython import LibpythonFacts
from tritondoctor.facts.pkgfiles import NumpyReach, PackageFiles
from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.facts.runtime import PortState, RuntimeFacts, ShmFacts, WorkspaceFacts
from tritondoctor.facts.shellvars import ShellAction
from tritondoctor.facts.system import SystemFacts
from tritondoctor.facts.target import Distribution, TargetPython
from tritondoctor.facts.workspaces import WorkspaceScan
from tritondoctor.findings import Finding, Status
from tritondoctor.ldenv import LoaderEnv
from tritondoctor.loader import Library, ResolvedTree, VersionError
from tritondoctor.options import CheckOptions
from tritondoctor.snapshot import PYTHON_BACKEND, STUB, TRITONSERVER, Snapshot

MiB = 1024 * 1024
GiB = 1024 * MiB

FAKE = "/nonexistent-tritondoctor-fake"
VENV = f"{FAKE}/venv"
BASE_PYTHON = f"{FAKE}/pyenv/versions/3.11.7"
PYTHON = f"{VENV}/bin/python"
SITE = f"{VENV}/lib/python3.11/site-packages"
PACKAGE_DIR = f"{SITE}/pytriton"
SERVER_DIR = f"{PACKAGE_DIR}/tritonserver"
LIBS_DIR = f"{SITE}/nvidia_pytriton.libs"
TRITONSERVER_BIN = f"{SERVER_DIR}/bin/tritonserver"
PYTHON_BACKEND_SO = f"{SERVER_DIR}/backends/python/libtriton_python.so"
STUB_311 = f"{SERVER_DIR}/python_backend_stubs/3.11/triton_python_backend_stub"
OWN_LIBDIR = f"{BASE_PYTHON}/lib"
LIBPYTHON = "libpython3.11.so.1.0"
OWN_LIBPYTHON = f"{OWN_LIBDIR}/{LIBPYTHON}"
SYSTEM_LIBDIR = "/usr/lib/x86_64-linux-gnu"
LIBSTDCXX = f"{SYSTEM_LIBDIR}/libstdc++.so.6"
LIBCUDA = f"{SYSTEM_LIBDIR}/libcuda.so.1"
HOME = f"{FAKE}/home/user"
PYTRITON_HOME = f"{HOME}/.cache/pytriton"
WHEEL_TAG = "py3-none-manylinux_2_35_x86_64"
PYTRITON_REQUIRES = ("numpy (<2.0.0,>=1.21)", "pyzmq (<27.0.0,>=23.0.0)", "sh (<3.0.0,>=1.14)")


# --- facts -----------------------------------------------------------------------------------

def system(**changes: Any) -> SystemFacts:
    facts = SystemFacts(machine="x86_64", kernel="6.1.0-18-amd64", glibc=(2, 35), os_name="Ubuntu 22.04.4 LTS",
                        is_wsl=False, container=None)
    return dataclasses.replace(facts, **changes)


def dist(name: str, version: str, requires: Iterable[str] = (), tags: Iterable[str] = (),
         location: str | None = SITE) -> Distribution:
    return Distribution(name=name, version=version, location=location, requires=tuple(requires), tags=tuple(tags))


def distributions(**versions: str | None) -> dict[str, Distribution]:
    """The healthy set, with `name=version` overrides (None removes one); `_` in names reads `-`."""
    out = {
        "nvidia-pytriton": dist("nvidia-pytriton", "0.7.0", PYTRITON_REQUIRES, (WHEEL_TAG,)),
        "numpy": dist("numpy", "1.26.4"),
        "pyzmq": dist("pyzmq", "26.2.0"),
        "sh": dist("sh", "2.1.0"),
        "pip": dist("pip", "24.2"),
    }
    for key, version in versions.items():
        name = key.replace("_", "-")
        if version is None:
            out.pop(name, None)
        else:
            previous = out.get(name)
            out[name] = dataclasses.replace(previous, version=version) if previous else dist(name, version)
    return out


def target(**changes: Any) -> TargetPython:
    facts = TargetPython(
        executable=PYTHON, version=(3, 11, 7), version_string="3.11.7", implementation="cpython", abiflags="",
        prefix=VENV, base_prefix=BASE_PYTHON, exec_prefix=VENV, libdir=OWN_LIBDIR, instsoname=LIBPYTHON,
        ldlibrary=LIBPYTHON, enable_shared=True, multiarch="x86_64-linux-gnu", purelib=SITE, platlib=SITE,
        sys_path=(f"{BASE_PYTHON}/lib/python3.11", SITE), site_packages=(SITE, f"{HOME}/.local/lib/python3.11/site-packages"),
        distributions=distributions(), selected_by="VIRTUAL_ENV",
    )
    return dataclasses.replace(facts, **changes)


def install(**changes: Any) -> PyTritonInstall:
    facts = PyTritonInstall(
        version="0.7.0", package_dir=PACKAGE_DIR, libs_dir=LIBS_DIR, tritonserver=TRITONSERVER_BIN,
        python_backend=PYTHON_BACKEND_SO, stubs={"3.11": STUB_311}, wheel_tags=(WHEEL_TAG,), pytriton_home=PYTRITON_HOME,
        tritonserver_is_file=True, tritonserver_executable=True, python_backend_is_file=True, libs_dir_is_dir=True,
        stub_executable={"3.11": True},
    )
    return dataclasses.replace(facts, **changes)


def lib(name: str, path: str | None, via: str = "cache", search_dir: str | None = None,
        needed_by: Iterable[str] = (TRITONSERVER_BIN,), how: str = "") -> Library:
    return Library(name=name, path=path, needed_by=list(needed_by), how=how or (f"{via} {search_dir or ''}".strip()),
                   via=via, search_dir=search_dir)


def tree(file: str, *libraries: Library, version_errors: Iterable[VersionError] = (),
         errors: Iterable[str] = (), warnings: Iterable[str] = ()) -> ResolvedTree:
    main = Library(name=file, path=file, via="main", how="main program")
    edges = {file: [("needed", x.name, x) for x in libraries]}
    return ResolvedTree(file=file, libraries=[main, *libraries], version_errors=list(version_errors),
                        errors=list(errors), warnings=list(warnings), edges=edges)


def libpython_lib(path: str | None = OWN_LIBPYTHON, via: str = "ld_library_path",
                  search_dir: str | None = OWN_LIBDIR) -> Library:
    return lib(LIBPYTHON, path, via=via, search_dir=search_dir if path else None, needed_by=(STUB_311,))


def resolutions(stub_libpython: Library | None = None) -> dict[str, ResolvedTree]:
    libstdcxx = lib("libstdc++.so.6", LIBSTDCXX, search_dir=SYSTEM_LIBDIR)
    return {
        TRITONSERVER: tree(TRITONSERVER_BIN, libstdcxx, lib("libcudart.so.12", f"{LIBS_DIR}/libcudart.so.12",
                                                             via="ld_library_path", search_dir=LIBS_DIR)),
        PYTHON_BACKEND: tree(PYTHON_BACKEND_SO, lib("libstdc++.so.6", LIBSTDCXX, search_dir=SYSTEM_LIBDIR,
                                                    needed_by=(PYTHON_BACKEND_SO,))),
        STUB: tree(STUB_311, stub_libpython or libpython_lib(),
                   lib("libstdc++.so.6", LIBSTDCXX, search_dir=SYSTEM_LIBDIR, needed_by=(STUB_311,))),
    }


def libpython(**changes: Any) -> LibpythonFacts:
    facts = LibpythonFacts(needed=LIBPYTHON, resolved=libpython_lib(), resolved_version="3.11.7",
                           own_path=OWN_LIBPYTHON, own_version="3.11.7", own_dir=OWN_LIBDIR, libdir_exists=True,
                           same_file=True)
    return dataclasses.replace(facts, **changes)


def loader_env(ld_library_path: str | None = LIBS_DIR) -> LoaderEnv:
    return LoaderEnv(ld_library_path=ld_library_path, ld_preload=None, cwd=f"{FAKE}/work", machine="x86_64",
                     system_dirs=("/lib/x86_64-linux-gnu", SYSTEM_LIBDIR), interp="/lib64/ld-linux-x86-64.so.2",
                     cache=None, hwcaps_subdirs=(), legacy_subdirs=("",), dst_lib="lib/x86_64-linux-gnu",
                     platform="haswell")


def gpu_device(index: int = 0, **changes: Any) -> GpuDevice:
    facts = GpuDevice(index=index, name="NVIDIA A100-SXM4-80GB", uuid=f"GPU-{index:08x}-aaaa-bbbb-cccc-dddddddddddd",
                      memory_total=80 * GiB, compute_capability=(8, 0), mig_enabled=False, mig_pending=False,
                      pci_bus_id=f"00000000:{index + 7:02X}:00.0")
    return dataclasses.replace(facts, **changes)


def device_nodes(*names: str, accessible: bool = True) -> tuple[DeviceNode, ...]:
    return tuple(DeviceNode(f"/dev/{n}", True, accessible) for n in (names or ("nvidia0", "nvidiactl", "nvidia-uvm")))


def gpu(**changes: Any) -> GpuFacts:
    facts = GpuFacts(driver_visible=True, kernel_module_version="560.35.03",
                     proc_version_line="NVRM version: NVIDIA UNIX x86_64 Kernel Module  560.35.03",
                     device_nodes=device_nodes(), nvml_attempted=True, nvml_ok=True, driver_version="560.35.03",
                     cuda_driver_version=(12, 6), devices=(gpu_device(),))
    return dataclasses.replace(facts, **changes)


def no_gpu(**changes: Any) -> GpuFacts:
    return dataclasses.replace(GpuFacts(driver_visible=False), **changes)


def shm(**changes: Any) -> ShmFacts:
    facts = ShmFacts(path="/dev/shm", exists=True, fstype="tmpfs", total=GiB, free=GiB, writable=True,
                     region_bytes=4 * MiB, growth_bytes=1 * MiB, region_source=f"INITIAL_BACKEND_SHM_SIZE in {PACKAGE_DIR}/triton.py")
    return dataclasses.replace(facts, **changes)


def workspace(**changes: Any) -> WorkspaceFacts:
    facts = WorkspaceFacts(home=PYTRITON_HOME, configured_by="default", exists=True, is_dir=True, existing=PYTRITON_HOME,
                           writable=True, free_bytes=50 * GiB, needed_bytes=22 * MiB, mountpoint="/", fstype="ext4",
                           mount_options=("rw", "relatime"), longest_socket=f"{PYTRITON_HOME}/workspace_abcdefgh/m_0_0-server.sock",
                           socket_name_budget=40)
    return dataclasses.replace(facts, **changes)


def ports(*taken: PortState) -> tuple[PortState, ...]:
    by_port = {s.port: s for s in taken}
    return tuple(by_port.get(p, PortState(port=p)) for p in (8000, 8001, 8002))


def runtime(**changes: Any) -> RuntimeFacts:
    facts = RuntimeFacts(ports=ports(), shm=shm(), workspace=workspace(), bundled_cudart="12.6.77",
                         bundled_cudart_file=f"{LIBS_DIR}/libcudart-9a8b7c6d.so.12.6.77")
    return dataclasses.replace(facts, **changes)


def host(**changes: Any) -> HostLimits:
    facts = HostLimits(
        logind=LogindFacts(remove_ipc=False, source="/etc/systemd/logind.conf", uid=1000, sys_uid_max=999,
                           sys_uid_max_source="/etc/login.defs", logind_present=True),
        memory=MemoryLimit(None, None, 2),
        tmp=TmpFacts("/tmp", "/", "ext4", False, 20 * GiB, 100 * GiB),
        loopback=LoopbackFacts(True, True),
        emulation=EmulationFacts("x86_64", (), "GenuineIntel", False),
    )
    return dataclasses.replace(facts, **changes)


def pkgfiles(**changes: Any) -> PackageFiles:
    return dataclasses.replace(PackageFiles(numpy=NumpyReach(SITE, "1.26.4", "site-packages")), **changes)


# --- conda pieces ----------------------------------------------------------------------------

def action(text: str, kind: str = "prepend", added: Iterable[str] = (), file: str = f"{HOME}/.bashrc",
           line: int = 12) -> ShellAction:
    return ShellAction(file=file, line=line, text=text, kind=kind, added=tuple(added))


def entry(index: int, raw: str, kind: str = "absolute", **changes: Any) -> PathEntry:
    facts = PathEntry(index=index, raw=raw, directory=raw or ".", kind=kind)
    if kind == "absolute":
        facts = dataclasses.replace(facts, exists=True, is_dir=True, realpath=raw)
    return dataclasses.replace(facts, **changes)


def hook(prefix: str, name: str, phase: str = "activate", *actions: ShellAction, shell: str = "sh") -> HookScript:
    return HookScript(path=f"{prefix}/etc/conda/{phase}.d/{name}", phase=phase, shell=shell, ld_library_path=actions)


def env_hooks(prefix: str, activate: Iterable[HookScript] = (), deactivate: Iterable[HookScript] = ()) -> EnvHooks:
    return EnvHooks(prefix=prefix, activate=tuple(activate), deactivate=tuple(deactivate))


def copy(name: str, directory: str, target_dir: str = OWN_LIBDIR) -> LibraryCopy:
    return LibraryCopy(name=name, path=f"{directory}/{name}", target_path=f"{target_dir}/{name}")


def conda(**changes: Any) -> CondaFacts:
    return dataclasses.replace(CondaFacts(target_prefix=VENV), **changes)


# --- the snapshot ----------------------------------------------------------------------------

def base(**changes: Any) -> Snapshot:
    """A healthy machine and environment; `changes` replace whole fields of the snapshot."""
    environ = {"PATH": f"{VENV}/bin:/usr/bin:/bin", "HOME": HOME, "VIRTUAL_ENV": VENV}
    snap = Snapshot(
        environ=environ, cwd=f"{FAKE}/work", options=CheckOptions(), system=system(), target=target(),
        target_error=None, pytriton=install(), server_environ={**environ, "LD_LIBRARY_PATH": LIBS_DIR},
        loader_env=loader_env(), resolutions=resolutions(),
        libcuda=lib("libcuda.so.1", LIBCUDA, search_dir=SYSTEM_LIBDIR, needed_by=()), libpython=libpython(),
        conda=conda(), gpu=gpu(), runtime=runtime(), repositories=None, host=host(),
        workspaces=WorkspaceScan(PYTRITON_HOME), pkgfiles=pkgfiles(),
    )
    return dataclasses.replace(snap, **changes)


def without_pytriton(snap: Snapshot | None = None) -> Snapshot:
    """The target has no nvidia-pytriton: no install, no binaries to resolve."""
    snap = snap or base()
    t = dataclasses.replace(snap.target, distributions=distributions(nvidia_pytriton=None)) if snap.target else None
    return dataclasses.replace(snap, target=t, pytriton=None, server_environ=None, resolutions={}, libpython=None)


def without_target(snap: Snapshot | None = None) -> Snapshot:
    snap = without_pytriton(snap)
    return dataclasses.replace(snap, target=None, target_error="no Python found: activate your environment",
                               libpython=None, conda=None, pkgfiles=None)


def patch(snap: Snapshot, name: str, **changes: Any) -> Snapshot:
    """`snap` with fields of its fact `name` (e.g. "gpu", "runtime", "target") replaced."""
    return dataclasses.replace(snap, **{name: dataclasses.replace(getattr(snap, name), **changes)})


def with_env(snap: Snapshot, **variables: str | None) -> Snapshot:
    environ = dict(snap.environ)
    for key, value in variables.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return dataclasses.replace(snap, environ=environ)


def with_options(snap: Snapshot, **options: Any) -> Snapshot:
    return dataclasses.replace(snap, options=dataclasses.replace(snap.options, **options))


def conda_target(snap: Snapshot, prefix: str) -> Snapshot:
    """The target is the conda environment at `prefix` (a real directory with conda-meta/, since
    TargetPython.is_conda asks the file system)."""
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    return patch(snap, "target", prefix=prefix, base_prefix=prefix, exec_prefix=prefix,
                 executable=f"{prefix}/bin/python", selected_by="CONDA_PREFIX")


# --- running a check -------------------------------------------------------------------------

def run(check: ModuleType, snap: Snapshot) -> list[Finding]:
    """The check's findings, each checked for its id."""
    findings = check.CHECK.run(snap)
    assert all(f.id == check.CHECK.id for f in findings), [f.id for f in findings]
    return findings


def one(check: ModuleType, snap: Snapshot, status: Status | None = None) -> Finding:
    findings = run(check, snap)
    assert len(findings) == 1, [(f.status.value, f.title) for f in findings]
    if status is not None:
        assert findings[0].status is status, (findings[0].status, findings[0].title)
    return findings[0]


def statuses(findings: list[Finding]) -> list[Status]:
    return [f.status for f in findings]


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status in (Status.WARN, Status.ERROR)]


def fix_ids(findings: list[Finding]) -> list[str | None]:
    return [f.fix.id if f.fix else None for f in findings]


def titled(findings: list[Finding], *words: str) -> Finding:
    """The one finding whose title holds every word."""
    hits = [f for f in findings if all(w in f.title for w in words)]
    assert len(hits) == 1, (words, [f.title for f in findings])
    return hits[0]

