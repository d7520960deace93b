"""The report for an issue: the facts that matter when PyTriton does not start, from the same
snapshot and findings as `check`, as a JSON-able dict (`build_report`) that `markdown` renders.

The dict is built unredacted; `redact_report` hides secrets and identity in every string of it,
and the Markdown is redacted once more as final text.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from tritondoctor import __version__
from tritondoctor.findings import Finding, Status
from tritondoctor.gcc_abi import version_key
from tritondoctor.share.host import host_json

if TYPE_CHECKING:
    from tritondoctor.loader import Library, ResolvedTree
    from tritondoctor.share.redact import Redactor
    from tritondoctor.snapshot import Snapshot

REPORT_FORMAT = 1
SMOKE_TAIL_LINES = 80

# Packages whose versions matter next to nvidia-pytriton's own requirements.
FRAMEWORKS = ("nvidia-pytriton", "tritonclient", "numpy", "pyzmq", "protobuf", "grpcio", "torch",
              "tensorflow", "jax", "jaxlib", "cupy", "onnxruntime", "onnxruntime-gpu", "transformers", "vllm")

# Variables that change how the binaries resolve or run; anything named like a secret is hidden.
ENV_NAMES = ("LD_LIBRARY_PATH", "LD_PRELOAD", "PATH", "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE",
             "VIRTUAL_ENV", "PYTRITON_HOME", "XDG_CACHE_HOME", "TMPDIR", "HOME",
             "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
ENV_PREFIXES = ("CONDA", "CUDA_", "NVIDIA_", "TRITON", "PYTRITON", "LD_", "SLURM_JOB", "OMP_")

# Libraries worth naming in each resolution: the ones that decide whether PyTriton starts.
NOTABLE = ("libpython", "libstdc++", "libgcc_s", "libcudart", "libcuda.", "libtritonserver", "libz.", "libssl")


def build_report(snap: "Snapshot", findings: list[Finding], smoke_log: tuple[str, str] | None = None) -> dict[str, Any]:
    """smoke_log: (file name, its text) when --smoke-log was given."""
    data: dict[str, Any] = {
        "report_format": REPORT_FORMAT,
        "tool_version": __version__,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": host_json(snap.environ),
        "target": snap.target_json(),
        "python": _python(snap),
        "packages": _packages(snap),
        "triton": _triton(snap),
        "libraries": _libraries(snap),
        "resolutions": {key: _resolution(tree) for key, tree in snap.resolutions.items()},
        "gpu": _gpu(snap),
        "resources": _resources(snap),
        "environment": environment(snap.environ),
        "findings": [f.to_json() for f in findings],
        "summary": {
            "errors": sum(f.status is Status.ERROR for f in findings),
            "warnings": sum(f.status is Status.WARN for f in findings),
        },
    }
    if smoke_log is not None:
        name, text = smoke_log
        data["smoke_log"] = {"file": os.path.basename(name), "tail": tail(text, SMOKE_TAIL_LINES)}
    return data


def redact_report(data: dict[str, Any], redactor: "Redactor") -> dict[str, Any]:
    host = dict(data.get("host") or {})
    host["name"] = redactor.host(host.get("name"))
    host["node_id"] = redactor.host(host.get("node_id"))
    out = redactor.walk({**data, "host": host})
    out["redaction"] = {"applied": True, "keep_host": redactor.keep_host, "counts": redactor.counts_json(),
                        "summary": redactor.summary()}
    return out


def tail(text: str, lines: int) -> list[str]:
    return text.splitlines()[-lines:]


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: environ[k] for k in sorted(environ) if k in ENV_NAMES or k.startswith(ENV_PREFIXES)}


def _python(snap: "Snapshot") -> dict[str, Any]:
    target = snap.target
    if target is None:
        return {"error": snap.target_error}
    return {"executable": target.executable, "version": target.version_string, "env_kind": target.env_kind,
            "prefix": target.prefix, "base_prefix": target.base_prefix, "selected_by": target.selected_by,
            "enable_shared": target.enable_shared, "libdir": target.libdir}


def _packages(snap: "Snapshot") -> dict[str, str]:
    if snap.target is None:
        return {}
    dists = {_norm(name): d for name, d in snap.target.distributions.items()}
    wanted = list(FRAMEWORKS)
    pytriton = dists.get("nvidia-pytriton")
    if pytriton is not None:
        wanted += [_requirement_name(r) for r in pytriton.requires if "extra ==" not in r]
    return {name: dists[name].version for name in dict.fromkeys(_norm(w) for w in wanted) if name in dists}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _requirement_name(text: str) -> str:
    import re

    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
    return match.group(1) if match else text


def _triton(snap: "Snapshot") -> dict[str, Any]:
    install = snap.pytriton
    if install is None:
        return {"installed": False}
    libs = sorted(os.listdir(install.libs_dir)) if os.path.isdir(install.libs_dir) else []
    runtime = snap.runtime
    return {
        "installed": True,
        "nvidia_pytriton": install.version,
        "tritonserver": install.tritonserver,
        "libtritonserver": next((n for n in libs if n.startswith("libtritonserver")), None),
        "cuda_runtime_bundled": runtime.bundled_cudart if runtime else None,
        "wheel_tags": list(install.wheel_tags),
        "stubs": sorted(install.stubs),
    }


def _libraries(snap: "Snapshot") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if snap.libpython is not None:
        out["libpython"] = snap.libpython.to_json()
    trees = list(snap.resolutions.values())
    if trees:
        out["libstdc++"] = libstdcxx(trees)
    if snap.libcuda is not None:
        out["libcuda"] = {"path": snap.libcuda.path, "how": snap.libcuda.how}
    if snap.runtime is not None and snap.runtime.bundled_cudart:
        out["cudart"] = {"version": snap.runtime.bundled_cudart, "path": snap.runtime.bundled_cudart_file}
    return out


def libstdcxx(trees: Iterable["ResolvedTree"]) -> dict[str, Any]:
    """Which libstdc++ the closure gets, the newest GLIBCXX / CXXABI it provides, and the newest
    each object needs from it."""
    providers: dict[str, "Library"] = {}
    needs: dict[str, list[str]] = {}
    version_errors: list[str] = []
    for tree in trees:
        for lib in tree.libraries:
            if lib.name.startswith("libstdc++") and lib.path:
                providers[lib.path] = lib
            needed = _newest_needed(lib)
            if needed and lib.path:
                needs[lib.path] = needed
        version_errors += [e.message() for e in tree.version_errors if "GLIBCXX" in e.version or "CXXABI" in e.version]
    return {
        "resolved": [{"path": p, "how": lib.how, "provides": _newest(lib.info.version_defs if lib.info else ())}
                     for p, lib in sorted(providers.items())],
        "needed_by": {path: versions for path, versions in sorted(needs.items())},
        "missing": sorted(set(version_errors)),
    }


def _newest_needed(lib: "Library") -> list[str]:
    if lib.info is None:
        return []
    names = [v.name for need in lib.info.version_needs if need.file.startswith("libstdc++") for v in need.versions]
    return _newest(names)


def _newest(names: Iterable[str]) -> list[str]:
    """The newest GLIBCXX and the newest CXXABI among `names`."""
    best: dict[str, tuple[tuple[int, ...], str]] = {}
    for name in names:
        key = version_key(name)
        if key is not None and (key[0] not in best or key[1] > best[key[0]][0]):
            best[key[0]] = (key[1], name)
    return [best[family][1] for family in sorted(best, reverse=True)]


def _resolution(tree: "ResolvedTree") -> dict[str, Any]:
    return {
        "file": tree.file,
        "ok": tree.ok,
        "missing": [lib.name for lib in tree.missing],
        "version_errors": [e.message() for e in tree.version_errors],
        "errors": list(tree.errors),
        "notable": [{"name": lib.name, "path": lib.path, "how": lib.how}
                    for lib in tree.libraries if lib.name.startswith(NOTABLE)],
    }


def _gpu(snap: "Snapshot") -> dict[str, Any]:
    gpu = snap.gpu
    if gpu is None:
        return {}
    cuda = f"{gpu.cuda_driver_version[0]}.{gpu.cuda_driver_version[1]}" if gpu.cuda_driver_version else None
    return {
        "driver_visible": gpu.driver_visible,
        "driver_version": gpu.driver_version,
        "cuda_driver_version": cuda,
        "nvml_error": gpu.nvml_error or gpu.gather_error,
        "devices": [{"index": d.index, "name": d.name, "memory_total": d.memory_total,
                     "compute_capability": d.cc_text, "mig_enabled": d.mig_enabled} for d in gpu.devices],
        "device_nodes": [n.path for n in gpu.device_nodes],
        "cuda_visible_devices": gpu.cuda_visible_devices,
        "nvidia_visible_devices": gpu.nvidia_visible_devices,
    }


def _resources(snap: "Snapshot") -> dict[str, Any]:
    runtime = snap.runtime
    if runtime is None:
        return {}
    out: dict[str, Any] = {"container": snap.system.container,
                           "ports": {str(p.port): ("in use" if p.listeners or p.bind_errno else "free")
                                     for p in runtime.ports},
                           "stale_servers": [s.pid for s in runtime.servers]}
    if runtime.workspace is not None:
        ws = runtime.workspace
        out["workspace"] = {"home": ws.home, "writable": ws.writable, "noexec": ws.noexec,
                            "free_bytes": ws.free_bytes, "fstype": ws.fstype}
    if runtime.shm is not None:
        out["shm"] = {"path": runtime.shm.path, "total": runtime.shm.total, "free": runtime.shm.free,
                      "writable": runtime.shm.writable}
    return out
