"""The tritonserver a repository smoke test runs, its command line and its environment.

By default it is the one bundled in nvidia-pytriton, laid out the way PyTriton 0.7.0 lays it
out: a private copy of `pytriton/tritonserver` without `python_backend_stubs`, the stub for the
target's Python in `backends/python/`, and `nvidia_pytriton.libs` appended to LD_LIBRARY_PATH.
A copy rather than symlinks: the kernel resolves symlinks for the main program, so `$ORIGIN`
would point back into site-packages and the run would not be the one PyTriton makes.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Mapping, Sequence

from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.facts.target import TargetPython

STUB_NAME = "triton_python_backend_stub"


class LayoutError(Exception):
    """No server can be laid out as asked; the message is one line for the user."""


@dataclass(frozen=True)
class ServerLayout:
    tritonserver: str
    backend_directory: str | None  # None: the server's compiled-in default
    bundled: bool  # laid out from nvidia-pytriton


def _link_or_copy(src: str, dst: str) -> str:
    """A hard link keeps `$ORIGIN` at the copy (unlike a symlink) and costs no space."""
    try:
        os.link(src, dst)
        shutil.copystat(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def bundled_layout(install: PyTritonInstall, minor: str, workdir: str) -> ServerLayout:
    stub = install.stub_for(minor)
    if not os.path.isfile(install.tritonserver):
        raise LayoutError(f"nvidia-pytriton {install.version} has no tritonserver at {install.tritonserver}")
    if not stub:
        raise LayoutError(f"nvidia-pytriton {install.version} has no Python backend stub for Python {minor}")
    server_dir = os.path.join(workdir, "tritonserver")
    shutil.copytree(
        install.server_dir,
        server_dir,
        ignore=shutil.ignore_patterns("python_backend_stubs", STUB_NAME, "__pycache__"),
        copy_function=_link_or_copy,
    )
    _link_or_copy(stub, os.path.join(server_dir, "backends", "python", STUB_NAME))
    return ServerLayout(
        tritonserver=os.path.join(server_dir, "bin", "tritonserver"),
        backend_directory=os.path.join(server_dir, "backends"),
        bundled=True,
    )


def given_layout(tritonserver: str, backend_directory: str | None) -> ServerLayout:
    found = tritonserver if os.sep in tritonserver else shutil.which(tritonserver)
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise LayoutError(f"--tritonserver {tritonserver}: not an executable file")
    if backend_directory is not None and not os.path.isdir(backend_directory):
        raise LayoutError(f"--backend-directory {backend_directory}: not a directory")
    return ServerLayout(os.path.abspath(found), backend_directory and os.path.abspath(backend_directory), False)


def server_command(
    layout: ServerLayout, repos: Sequence[str], ports: Mapping[str, int], shm_prefix: str
) -> list[str]:
    cmd = [layout.tritonserver]
    cmd += [f"--model-repository={os.path.abspath(r)}" for r in repos]
    cmd += [
        "--model-control-mode=explicit",
        "--load-model=*",
        # Keep serving when a model fails, so every model gets its own verdict.
        "--exit-on-error=false",
        "--strict-readiness=false",
        "--http-address=127.0.0.1",
        f"--http-port={ports['http']}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={ports['grpc']}",
        f"--metrics-port={ports['metrics']}",
        "--allow-metrics=false",
        "--allow-gpu-metrics=false",
        "--log-verbose=0",
        "--exit-timeout-secs=10",
        # Our own prefix: segments a killed stub leaves behind can be found and removed.
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
    ]
    if layout.backend_directory:
        cmd.append(f"--backend-directory={layout.backend_directory}")
    return cmd


def server_environ(
    environ: Mapping[str, str],
    layout: ServerLayout,
    install: PyTritonInstall | None,
    target: TargetPython | None,
) -> dict[str, str]:
    """PyTriton's environment for the bundled server; for the user's own server the environment
    as given, with the env's bin first on PATH as PyTriton does (the stub's embedded Python
    finds its prefix, hence the env's site-packages, by looking up `python3` on PATH)."""
    if layout.bundled and install is not None and target is not None:
        return pytriton_facts.server_environ(environ, install, target)
    env = dict(environ)
    if target is not None:
        env["PATH"] = os.path.join(target.exec_prefix, "bin") + ":" + env.get("PATH", "")
    return env
