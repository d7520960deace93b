"""The remedy every loader-path finding shares, whether `check` or `smoke` found it: the
environment's own activation hooks (`tritondoctor fix`), plus what repairs the current shell.
Never ~/.bashrc."""

from __future__ import annotations

import shlex
from typing import Iterable, Sequence

from tritondoctor.findings import FixHint

# The one catalog of remedy ids (FixHint.id), shared by check, smoke, fix and explain: a remedy
# named anywhere is named here, with what it means. Ids with a fix module are applied by
# `tritondoctor fix`; the others are commands the user runs.
REMEDIES: dict[str, str] = {
    # applied by `tritondoctor fix`
    "conda-hooks": "the conda env's activate.d / deactivate.d scripts put the needed directories first",
    "venv-hooks": "a marked block in the venv's activate scripts puts the needed directories first",
    "libstdcxx": "a libstdc++ new enough for the binaries (libstdcxx-ng from conda-forge, or path order)",
    # told to the user
    "env-export": "no environment to hook into: export LD_LIBRARY_PATH where PyTriton runs",
    "rebuild-python": "an interpreter built with a shared libpython (--enable-shared)",
    "python-version": "another Python version (one PyTriton ships a stub for)",
    "select-python": "activate the environment, or name its interpreter with --python",
    "install-pytriton": "install nvidia-pytriton into the environment",
    "reinstall-pytriton": "reinstall nvidia-pytriton (a damaged or foreign install)",
    "install-deps": "install the Python packages PyTriton or the model needs",
    "chmod": "make a bundled binary executable",
    "upgrade-pip": "a pip new enough to read the wheel's platform tag",
    "glibc": "a system (or container) with a newer glibc",
    "newer-os": "a system (or container) with a newer glibc",
    "libs": "provide a library the loader cannot find, or a newer build of it",
    "conda-activate": "activate the intended conda environment",
    "conda-deactivate": "deactivate the other conda environment first",
    "conda-reset": "start from a clean shell and activate once",
    "driver-mismatch": "make the NVIDIA kernel module and user-space driver the same version (reboot)",
    "upgrade-driver": "an NVIDIA driver new enough for the bundled CUDA runtime",
    "load-driver": "load the NVIDIA kernel module",
    "install-driver": "install the NVIDIA driver",
    "device-nodes": "create the /dev/nvidia* device nodes (load the driver, or pass them to the container)",
    "device-permissions": "access to /dev/nvidia* for this user",
    "driver-capabilities": "the container runtime's compute and utility driver capabilities",
    "driver-health": "inspect the driver (kernel log, nvidia-smi)",
    "libcuda": "make the driver's libcuda.so.1 visible to the loader",
    "container-gpus": "start the container or pod with GPU access",
    "gpu-missing": "make the GPU visible to the driver",
    "old-gpu": "a GPU of compute capability 6.0 or newer, or CPU-only",
    "mig": "create a MIG instance, or leave MIG mode",
    "mig-reset": "reset the GPU or reboot",
    "cuda-visible-devices": "a valid CUDA_VISIBLE_DEVICES (or none)",
    "ports": "free the port, or give PyTriton other ports",
    "stale-server": "stop a server left running by an earlier run",
    "shm-size": "a larger /dev/shm",
    "shm-mount": "a writable tmpfs at /dev/shm",
    "shm-cleanup": "remove shared-memory segments of servers that are gone",
    "pytriton-home": "a short, writable, exec-allowed PYTRITON_HOME",
    "server-signal": "find what killed or crashed tritonserver",
    "model-load": "read the server log around the failed load",
    "timeout": "find what the run was waiting for",
    "log": "read the full log",
    # field catalog, round two
    "grpc-proxy-hooks": "the environment's activation hooks export no_grpc_proxy=localhost,127.0.0.1",
    "no-grpc-proxy": "exempt localhost and 127.0.0.1 from the proxy for gRPC (no_grpc_proxy)",
    "logind-removeipc": "RemoveIPC=no for systemd-logind, or a system user / lingering service",
    "stub-exec": "a stub with the exec bit, on an exec-allowed file system",
    "tmp-exec": "an exec-allowed /tmp with room",
    "workspace-cleanup": "remove PyTriton workspaces no running process uses",
    "stub-numpy-path": "keep numpy 2 from the user site / PYTHONPATH / .pth out of the stub's path",
    "memory-limit": "a larger container / cgroup memory limit",
    "native-arch": "an image or environment native to this CPU, or Rosetta instead of QEMU",
    "ipv4-loopback": "an IPv4 loopback address (127.0.0.1 on lo)",
    "access-token": "send PyTriton's per-start access token to its restricted endpoints, or lift the restriction",
    "model-ready": "wait for the model's own readiness (/v2/models/<model>/ready), not only the server's",
    # model repositories (check --model-repository)
    "model-stub": "the stub for the execution environment's Python, copied into the model directory",
    "repack-env": "repack the execution environment (conda-pack) with what the stub needs",
    "unpack-env": "an execution environment that unpacks, or one given as an unpacked directory",
    "execution-env": "an EXECUTION_ENV_PATH that points at a conda-pack tarball or directory",
    "edit-config": "correct config.pbtxt",
    "install-tritonclient": "install tritonclient (tritondoctor reads config.pbtxt with its ModelConfig)",
    "backend-directory": "name the backend directory tritonserver will use",
    "rename-model": "a model name the python backend accepts",
    "add-version": "a numeric version directory",
    "add-model-file": "the model file the config names",
    "chmod-stub": "make the model's stub executable before packaging",
    "move-stub": "put the stub where it may be executed",
    "move-repository": "put the repository where tritonserver can read it",
    "install-module": "install what model.py imports into its environment",
}


def known(remedy_id: str) -> bool:
    return remedy_id in REMEDIES

# The fix module that writes hooks for each kind of environment; "env-export" has no fix module:
# a bare interpreter has nothing to hook into, so the user gets the export itself.
HOOK_FIX_IDS = {"conda": "conda-hooks", "venv": "venv-hooks"}
NO_HOOKS_FIX_ID = "env-export"


def prepend_export(directories: Sequence[str]) -> str:
    joined = shlex.quote(":".join(directories))
    return f"export LD_LIBRARY_PATH={joined}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"


def fix_command(python: str | None = None) -> str:
    """`tritondoctor fix`, naming the interpreter when the user had to name it to check it."""
    return f"tritondoctor fix --python {shlex.quote(python)}" if python else "tritondoctor fix"


def hooks_fix(env_kind: str, summary: str, *, python: str | None = None,
              now: Iterable[str] = (), edits: Iterable[str] = ()) -> FixHint:
    """`now`: commands that repair the current shell; `edits`: lines to delete, as comments."""
    fix_id = HOOK_FIX_IDS.get(env_kind, NO_HOOKS_FIX_ID)
    commands = [f"# {e}" for e in edits]
    if fix_id == NO_HOOKS_FIX_ID:
        commands += list(now)
    else:
        commands.append(fix_command(python))
        commands += [f"# and, for this shell: {c}" for c in now]
    return FixHint(id=fix_id, summary=summary, commands=tuple(commands))
