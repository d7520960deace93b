"""One look at the world, taken once: everything checks may read.

Data flows one way: snapshot → checks (pure functions of the snapshot) → findings → fix plans.
The only expensive parts (probing the target interpreter, parsing ELF files, asking NVML,
scanning processes and sockets) happen here, concurrently.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from tritondoctor.facts import libpython as libpython_facts
from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts import system as system_facts
from tritondoctor.facts import target as target_facts
from tritondoctor.facts.libpython import LibpythonFacts
from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.facts.system import SystemFacts
from tritondoctor.facts.target import TargetError, TargetPython
from tritondoctor.options import DEFAULT_PORTS, CheckOptions  # noqa: F401 - re-exported
from tritondoctor.loader import Library, LoaderEnv, ResolvedTree, resolve, search_library

if TYPE_CHECKING:
    from tritondoctor.facts.conda import CondaFacts
    from tritondoctor.facts.gpu import GpuFacts
    from tritondoctor.facts.runtime import RuntimeFacts

# Keys of Snapshot.resolutions: the three binaries PyTriton runs or loads.
TRITONSERVER = "tritonserver"
PYTHON_BACKEND = "python_backend"
STUB = "stub"


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
    conda: "CondaFacts | None" = None
    gpu: "GpuFacts | None" = None
    runtime: "RuntimeFacts | None" = None

    def derive(self, environ: Mapping[str, str]) -> "Snapshot":
        """The same machine under another environment (what a fix would produce): only the
        parts that depend on environment variables are recomputed."""
        return _with_environment(self, environ)

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


@dataclass(frozen=True)
class _LoaderSide:
    server_environ: Mapping[str, str] | None
    loader_env: LoaderEnv
    resolutions: dict[str, ResolvedTree]
    libcuda: Library
    libpython: LibpythonFacts | None

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _loader_side(
    environ: Mapping[str, str], cwd: str, target: TargetPython | None, install: PyTritonInstall | None
) -> _LoaderSide:
    server_env = pytriton_facts.server_environ(environ, install, target) if install and target else None
    loader_env = LoaderEnv.from_system(environ=server_env if server_env is not None else environ, cwd=cwd)
    resolutions = resolve_pytriton(install, target, loader_env) if install else {}
    return _LoaderSide(
        server_environ=server_env,
        loader_env=loader_env,
        resolutions=resolutions,
        libcuda=search_library("libcuda.so.1", loader_env),
        libpython=libpython_facts.gather(target, resolutions.get(STUB), environ),
    )


def _with_environment(snap: Snapshot, environ: Mapping[str, str]) -> Snapshot:
    install = pytriton_facts.locate(snap.target, environ) if snap.target else None
    side = _loader_side(environ, snap.cwd, snap.target, install)
    return dataclasses.replace(
        snap,
        environ=dict(environ),
        pytriton=install,
        gpu=snap.gpu.for_environ(environ) if snap.gpu else None,
        runtime=snap.runtime.for_environ(environ, install, snap.target) if snap.runtime else None,
        **side.fields(),
    )


# NVML can block for a long time on a GPU that has fallen off the bus; check must still answer.
GPU_TIMEOUT_S = 5.0


def _in_daemon_thread(fn: Any, *args: Any) -> "Future[Any]":
    """Like pool.submit, but a call that never returns cannot keep the process from exiting
    (executor threads are joined at exit)."""
    future: Future[Any] = Future()

    def work() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)

    threading.Thread(target=work, name="tritondoctor-gpu", daemon=True).start()
    return future


def _gpu_result(future: "Future[GpuFacts]") -> "GpuFacts":
    from tritondoctor.facts.gpu import GpuFacts

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
    from tritondoctor.facts import conda as conda_facts
    from tritondoctor.facts import gpu as gpu_facts
    from tritondoctor.facts import runtime as runtime_facts

    environ = dict(os.environ if environ is None else environ)
    options = options or CheckOptions()
    cwd = cwd or os.getcwd()

    with ThreadPoolExecutor(max_workers=4) as pool:
        system_f = pool.submit(system_facts.gather)
        gpu_f = _in_daemon_thread(gpu_facts.gather, environ)
        target: TargetPython | None = None
        target_error: str | None = None
        try:
            executable, why = target_facts.choose_interpreter(environ, python)
            target = target_facts.probe(executable, environ, selected_by=why)
        except TargetError as exc:
            if python:
                raise
            target_error = str(exc)
        install = pytriton_facts.locate(target, environ) if target else None
        runtime_f = pool.submit(runtime_facts.gather, environ, options, install, target)
        conda_f = pool.submit(conda_facts.gather, environ, target)
        side = _loader_side(environ, cwd, target, install)
        return Snapshot(
            environ=environ,
            cwd=cwd,
            options=options,
            system=system_f.result(),
            target=target,
            target_error=target_error,
            pytriton=install,
            **side.fields(),
            conda=conda_f.result(),
            gpu=_gpu_result(gpu_f),
            runtime=runtime_f.result(),
        )
