"""One look at the world, taken once: everything checks may read.

Data flows one way: snapshot → checks (pure functions of the snapshot) → findings → fix plans.
The only expensive parts (probing the target interpreter, parsing ELF files, asking NVML,
scanning processes and sockets) happen here, concurrently.

`take_snapshot` and `Snapshot.derive` share one gather (`_gather`): every fact is computed from
the inputs its facts module declares (`READS` in tritondoctor/facts/*), and a derive reuses a
fact of the snapshot it starts from exactly when those inputs are unchanged. So
`snap.derive(env)` equals `take_snapshot(python=<snap's target>, environ=env)`, less what moves
on its own between two looks at the machine (processes, sockets, free space). The machine-only
facts (system, the target's probe, NVML, processes, ports, /dev/shm) are not read again.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, TypeVar

from tritondoctor.facts import conda as conda_facts
from tritondoctor.facts import gpu as gpu_facts
from tritondoctor.facts import hostlimits as hostlimits_facts
from tritondoctor.facts import libpython as libpython_facts
from tritondoctor.facts import pkgfiles as pkgfiles_facts
from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts import runtime as runtime_facts
from tritondoctor.facts import system as system_facts
from tritondoctor.facts import target as target_facts
from tritondoctor.facts import workspaces as workspaces_facts
from tritondoctor.facts.conda import CondaFacts
from tritondoctor.facts.gpu import GpuFacts
from tritondoctor.facts.hostlimits import HostLimits
from tritondoctor.facts.inputs import EnvReads
from tritondoctor.facts.libpython import LibpythonFacts
from tritondoctor.facts.pkgfiles import PackageFiles
from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.facts.runtime import RuntimeFacts
from tritondoctor.facts.system import SystemFacts
from tritondoctor.facts.target import TargetError, TargetPython
from tritondoctor.facts.workspaces import WorkspaceScan
from tritondoctor.loader import (
    Library,
    LoaderEnv,
    ResolvedTree,
    resolve,
    search_library,
)
from tritondoctor.options import DEFAULT_PORTS, CheckOptions  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from tritondoctor.repository.types import RepositoryFacts

# Keys of Snapshot.resolutions: the three binaries PyTriton runs or loads.
TRITONSERVER = "tritonserver"
PYTHON_BACKEND = "python_backend"
STUB = "stub"

# What LoaderEnv.from_system takes from the environment (the rest is the machine's).
LOADER_READS = EnvReads(names=frozenset({"LD_LIBRARY_PATH", "LD_PRELOAD"}),
                        files=("/etc/ld.so.cache", "/etc/ld.so.preload"))

T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot:
    environ: Mapping[str, str]
    cwd: str
    options: CheckOptions
    system: SystemFacts
    target: TargetPython | None
    target_error: str | None
    pytriton: PyTritonInstall | None
    # The environment PyTriton gives tritonserver (and the stub inherits); None without PyTriton.
    server_environ: Mapping[str, str] | None
    loader_env: LoaderEnv
    # TRITONSERVER / PYTHON_BACKEND / STUB -> closure resolved as PyTriton runs them.
    resolutions: Mapping[str, ResolvedTree] = field(default_factory=dict)
    # libcuda.so.1 searched as tritonserver would dlopen it (no RPATH), under server_environ.
    libcuda: Library | None = None
    # The stub's libpython against the interpreter's own (depends on the resolution above).
    libpython: LibpythonFacts | None = None
    conda: CondaFacts | None = None
    gpu: GpuFacts | None = None
    runtime: RuntimeFacts | None = None
    # Only with `check --model-repository`: what Triton's python backend will do with each model.
    repositories: "RepositoryFacts | None" = None
    # Field-catalog facts (rows 26-37): host limits, PYTRITON_HOME's workspaces, installed files.
    host: HostLimits | None = None
    workspaces: WorkspaceScan | None = None
    pkgfiles: PackageFiles | None = None

    def derive(self, environ: Mapping[str, str]) -> "Snapshot":
        """The same machine and target interpreter under another environment (what a fix would
        produce): the facts whose declared inputs changed are gathered again, the others reused."""
        return _gather(_Request(None, dict(environ), self.options, self.cwd), previous=self)

    def target_json(self) -> dict[str, Any]:
        out: dict[str, Any] = self.target.to_json() if self.target else {"error": self.target_error}
        out["system"] = self.system.to_json()
        if self.pytriton:
            out["pytriton_install"] = self.pytriton.to_json()
        return out


def resolve_pytriton(
    install: PyTritonInstall, target: TargetPython | None, loader_env: LoaderEnv
) -> dict[str, ResolvedTree]:
    binaries = {TRITONSERVER: install.tritonserver, PYTHON_BACKEND: install.python_backend}
    stub = install.stub_for(target.minor) if target else None
    if stub:
        binaries[STUB] = stub
    return {
        key: resolve(path, loader_env, run_as=install.run_location(path))
        for key, path in binaries.items()
        if os.path.exists(path)
    }


# --- the one gather ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Request:
    python: str | None  # --python; a derive keeps the previous snapshot's target instead
    environ: dict[str, str]
    options: CheckOptions
    cwd: str


def _done(value: T) -> "Future[T]":
    future: Future[T] = Future()
    future.set_result(value)
    return future


def _unchanged(prev: Snapshot | None, environ: Mapping[str, str], reads: EnvReads) -> bool:
    """`prev` exists and the variables `reads` declares are the same in `environ`."""
    return prev is not None and reads.same(environ, prev.environ)


def _gather(req: _Request, previous: Snapshot | None = None) -> Snapshot:
    """Every fact for `req`; with `previous`, the facts whose inputs did not change are its own."""
    env, prev = req.environ, previous
    with ThreadPoolExecutor(max_workers=4) as pool:
        system_f = _system(pool, env, prev)
        gpu_f = _gpu(env, prev)
        target, target_error = _target(req, prev)
        install = _install(env, prev, target)
        runtime_f = _runtime(pool, req, prev, target, install)
        conda_f = _conda(pool, env, prev, target)
        side = _loader_side(req, prev, target, install)
        field_f = _field(pool, env, prev, target, install)
        return Snapshot(
            environ=env,
            cwd=req.cwd,
            options=req.options,
            system=system_f.result(),
            target=target,
            target_error=target_error,
            pytriton=install,
            **side.fields(),
            conda=conda_f.result(),
            gpu=_gpu_result(gpu_f),
            runtime=runtime_f.result(),
            repositories=_repositories(req, prev, target),
            **{k: f.result() for k, f in field_f.items()},
        )


def _repositories(req: _Request, prev: Snapshot | None, target: TargetPython | None) -> "RepositoryFacts | None":
    if not req.options.model_repositories:
        return None
    if prev is not None and prev.repositories is not None and prev.target is target and prev.environ == req.environ:
        return prev.repositories
    from tritondoctor.repository import gather_repositories

    return gather_repositories(req.options.model_repositories, target, req.environ, req.options.backend_directory,
                               cwd=req.cwd)


def _system(pool: ThreadPoolExecutor, env: dict[str, str], prev: Snapshot | None) -> "Future[SystemFacts]":
    if prev is not None and _unchanged(prev, env, system_facts.READS):
        return _done(prev.system)
    return pool.submit(system_facts.gather, "/", env)


def _gpu(env: dict[str, str], prev: Snapshot | None) -> "Future[GpuFacts | None]":
    if prev is None:
        return _in_daemon_thread(gpu_facts.gather, env)
    if prev.gpu is None or _unchanged(prev, env, gpu_facts.READS):
        return _done(prev.gpu)
    return _done(prev.gpu.for_environ(env))


def _target(req: _Request, prev: Snapshot | None) -> tuple[TargetPython | None, str | None]:
    """The target interpreter: chosen and probed once; a derive re-probes the same interpreter
    only when a variable that shapes the probe changed. Raises TargetError only for --python."""
    env = req.environ
    if prev is not None:
        if prev.target is None or _unchanged(prev, env, target_facts.READS):
            return prev.target, prev.target_error
        executable, why = prev.target.executable, prev.target.selected_by
    else:
        try:
            executable, why = target_facts.choose_interpreter(env, req.python)
        except TargetError as exc:
            if req.python:
                raise
            return None, str(exc)
    try:
        return target_facts.probe(executable, env, selected_by=why), None
    except TargetError as exc:
        if req.python:
            raise
        return None, str(exc)


def _same_target(prev: Snapshot | None, target: TargetPython | None) -> bool:
    return prev is not None and (prev.target is target or prev.target == target)


def _install(env: dict[str, str], prev: Snapshot | None, target: TargetPython | None) -> PyTritonInstall | None:
    if target is None:
        return None
    if prev is not None and _same_target(prev, target) and _unchanged(prev, env, pytriton_facts.READS):
        return prev.pytriton
    return pytriton_facts.locate(target, env)


def _conda(pool: ThreadPoolExecutor, env: dict[str, str], prev: Snapshot | None,
           target: TargetPython | None) -> "Future[CondaFacts | None]":
    if prev is not None and _same_target(prev, target) and _unchanged(prev, env, conda_facts.READS):
        return _done(prev.conda)
    return pool.submit(conda_facts.gather, env, target)


def _runtime(pool: ThreadPoolExecutor, req: _Request, prev: Snapshot | None, target: TargetPython | None,
             install: PyTritonInstall | None) -> "Future[RuntimeFacts | None]":
    """Gathered once; a derive reads again only what follows the environment and the install
    (RuntimeFacts.for_environ), never the ports, processes or /dev/shm's contents."""
    env = req.environ
    if prev is None:
        return pool.submit(runtime_facts.gather, env, req.options, install, target)
    unchanged = _same_target(prev, target) and prev.pytriton == install
    if prev.runtime is None or (unchanged and _unchanged(prev, env, runtime_facts.READS)):
        return _done(prev.runtime)
    return _done(prev.runtime.for_environ(env, install, target))


def _field(pool: ThreadPoolExecutor, env: dict[str, str], prev: Snapshot | None, target: TargetPython | None,
           install: PyTritonInstall | None) -> dict[str, "Future[Any]"]:
    """host (machine only: gathered once), workspaces and pkgfiles (again when their inputs moved)."""
    out: dict[str, Future[Any]] = {}
    out["host"] = _done(prev.host) if prev is not None else pool.submit(hostlimits_facts.gather)
    if prev is not None and _unchanged(prev, env, workspaces_facts.READS):
        out["workspaces"] = _done(prev.workspaces)
    else:
        out["workspaces"] = pool.submit(workspaces_facts.gather, env, install.pytriton_home if install else None)
    same = prev is not None and _same_target(prev, target) and prev.pytriton == install
    if same and prev is not None and _unchanged(prev, env, pkgfiles_facts.READS):
        out["pkgfiles"] = _done(prev.pkgfiles)
    else:
        out["pkgfiles"] = pool.submit(pkgfiles_facts.gather, target, install, env)
    return out


# --- the loader's side: what tritonserver and the stub would load --------------------------------

@dataclass(frozen=True)
class _LoaderSide:
    server_environ: Mapping[str, str] | None
    loader_env: LoaderEnv
    resolutions: Mapping[str, ResolvedTree]
    libcuda: Library | None
    libpython: LibpythonFacts | None

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _loader_environ(snap_environ: Mapping[str, str], server_environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return server_environ if server_environ is not None else snap_environ


def _loader_side(req: _Request, prev: Snapshot | None, target: TargetPython | None,
                 install: PyTritonInstall | None) -> _LoaderSide:
    env = req.environ
    # server_environ copies the whole environment: always rebuilt (it costs a dict copy).
    server_env = pytriton_facts.server_environ(env, install, target) if install and target else None
    seen = _loader_environ(env, server_env)
    same_loader = (prev is not None and prev.cwd == req.cwd
                   and LOADER_READS.same(seen, _loader_environ(prev.environ, prev.server_environ)))
    if prev is not None and same_loader:
        loader_env, libcuda = prev.loader_env, prev.libcuda
    else:
        loader_env = LoaderEnv.from_system(environ=seen, cwd=req.cwd)
        libcuda = search_library("libcuda.so.1", loader_env)
    same_binaries = same_loader and _same_target(prev, target) and prev is not None and prev.pytriton == install
    if prev is not None and same_binaries:
        resolutions, libpython = prev.resolutions, prev.libpython
    else:
        resolutions = resolve_pytriton(install, target, loader_env) if install else {}
        libpython = libpython_facts.gather(target, resolutions.get(STUB), env)
    return _LoaderSide(server_env, loader_env, resolutions, libcuda, libpython)


# --- NVML's timeout ------------------------------------------------------------------------------

# NVML can block for a long time on a GPU that has fallen off the bus; check must still answer.
GPU_TIMEOUT_S = 5.0


def _in_daemon_thread(fn: Callable[..., T], *args: Any) -> "Future[T]":
    """Like pool.submit, but a call that never returns cannot keep the process from exiting
    (executor threads are joined at exit)."""
    future: Future[T] = Future()

    def work() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)

    threading.Thread(target=work, name="tritondoctor-gpu", daemon=True).start()
    return future


def _gpu_result(future: "Future[GpuFacts | None]") -> GpuFacts | None:
    try:
        return future.result(timeout=GPU_TIMEOUT_S)
    except FutureTimeout:
        return GpuFacts(driver_visible=True, gather_error=f"NVML did not answer within {GPU_TIMEOUT_S:.0f} s")


def take_snapshot(
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
    options: CheckOptions | None = None,
    cwd: str | None = None,
) -> Snapshot:
    """Gather every fact. Raises TargetError only for an explicit --python that is not a Python."""
    environ = dict(os.environ if environ is None else environ)
    return _gather(_Request(python, environ, options or CheckOptions(), cwd or os.getcwd()))


def regathered(snap: Snapshot, fields: "Iterable[str]") -> Snapshot:
    """`snap` with the named facts read again from the disk: a fix that changed files (removed
    workspaces, copied a stub) changed no environment variable, so a derive would reuse them."""
    changes: dict[str, Any] = {}
    for name in set(fields):
        if name == "workspaces":
            changes[name] = workspaces_facts.gather(snap.environ, snap.pytriton.pytriton_home if snap.pytriton else None)
        elif name == "repositories" and snap.options.model_repositories:
            req = _Request(None, dict(snap.environ), snap.options, snap.cwd)
            changes[name] = _repositories(req, None, snap.target)
        elif name not in ("repositories",):
            raise ValueError(f"no way to gather {name!r} again")
    return dataclasses.replace(snap, **changes)
