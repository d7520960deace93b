"""Facts about the *target* interpreter: the Python whose environment PyTriton will run in.

tritondoctor may itself be installed elsewhere (pipx, another venv), so these facts come from
running a tiny probe in the target interpreter. The probe uses the standard library only and
imports none of the user's packages (versions are read from installed metadata).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Mapping

from tritondoctor.cache import JsonCache, cache_dir
from tritondoctor.facts.inputs import EnvReads

# Distributions whose installed versions checks care about (PEP 503 normalised names).
WATCHED_DISTRIBUTIONS = (
    "nvidia-pytriton", "numpy", "pyzmq", "torch", "tritonclient", "pip", "psutil",
    "grpcio", "protobuf", "sh", "wrapt", "typer", "typing-inspect", "importlib-metadata",
)

_PROBE = r"""
import json, os, sys, sysconfig
out = {
    "executable": sys.executable,
    "version": list(sys.version_info[:3]),
    "version_string": sys.version.split()[0],
    "implementation": sys.implementation.name,
    "abiflags": getattr(sys, "abiflags", ""),
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "exec_prefix": sys.exec_prefix,
    "libdir": sysconfig.get_config_var("LIBDIR"),
    "instsoname": sysconfig.get_config_var("INSTSONAME"),
    "ldlibrary": sysconfig.get_config_var("LDLIBRARY"),
    "enable_shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
    "multiarch": sysconfig.get_config_var("MULTIARCH"),
    "purelib": sysconfig.get_paths().get("purelib"),
    "platlib": sysconfig.get_paths().get("platlib"),
    "sys_path": [p for p in sys.path if p],
}
try:
    import site
    out["site_packages"] = list(site.getsitepackages()) + [site.getusersitepackages()]
except Exception:
    out["site_packages"] = []
dists = {}
try:
    from importlib import metadata
    for name in WATCHED:
        try:
            d = metadata.distribution(name)
        except Exception:
            continue
        files = None
        loc = None
        try:
            loc = str(d.locate_file(""))
        except Exception:
            pass
        requires = [r for r in (d.requires or []) if "extra ==" not in r]
        wheel = d.read_text("WHEEL") or ""
        tags = [l.split(":", 1)[1].strip() for l in wheel.splitlines() if l.startswith("Tag:")]
        dists[name] = {"version": d.version, "location": loc, "requires": requires, "tags": tags}
except Exception as exc:
    out["metadata_error"] = repr(exc)
out["distributions"] = dists
print(json.dumps(out))
"""


MAX_CACHED_PROBES = 32

# The variables that shape what the probe reports (its cache key); the probe runs with the whole
# environment, but nothing else in it changes sys.path, site-packages or sysconfig.
PROBE_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONUSERBASE", "_PYTHON_SYSCONFIGDATA_NAME")
READS = EnvReads(names=frozenset(PROBE_ENV))
# What choose_interpreter reads when no --python is given.
CHOOSE_READS = EnvReads(names=frozenset({"PATH", "VIRTUAL_ENV", "CONDA_PREFIX"}))


class TargetError(Exception):
    """The target interpreter could not be found or probed; the message is one line for the user."""


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    location: str | None
    requires: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetPython:
    executable: str
    version: tuple[int, int, int]
    version_string: str
    implementation: str
    abiflags: str
    prefix: str
    base_prefix: str
    exec_prefix: str
    libdir: str | None
    instsoname: str | None
    ldlibrary: str | None
    enable_shared: bool
    multiarch: str | None
    purelib: str | None
    platlib: str | None
    sys_path: tuple[str, ...]
    site_packages: tuple[str, ...] = ()  # site.getsitepackages() + the user site, as PyTriton asks
    distributions: Mapping[str, Distribution] = field(default_factory=dict)
    selected_by: str = ""  # why this interpreter: "--python", "CONDA_PREFIX", "VIRTUAL_ENV", "PATH"

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def in_venv(self) -> bool:
        return os.path.realpath(self.prefix) != os.path.realpath(self.base_prefix)

    @property
    def is_conda(self) -> bool:
        return os.path.isdir(os.path.join(self.prefix, "conda-meta"))

    @property
    def env_kind(self) -> str:
        if self.is_conda:
            return "conda"
        if self.in_venv:
            return "venv"
        return "system"

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.executable,
            "version": self.version_string,
            "prefix": self.prefix,
            "base_prefix": self.base_prefix,
            "env_kind": self.env_kind,
            "selected_by": self.selected_by,
            "libdir": self.libdir,
            "instsoname": self.instsoname,
            "enable_shared": self.enable_shared,
            "pytriton": self.distributions["nvidia-pytriton"].version
            if "nvidia-pytriton" in self.distributions
            else None,
        }


def choose_interpreter(environ: Mapping[str, str], python: str | None) -> tuple[str, str]:
    """Which interpreter is the user's environment, and why (see issue 3: not necessarily ours)."""
    if python:
        found = python if os.sep in python else shutil.which(python, path=environ.get("PATH"))
        if not found:
            raise TargetError(f"--python {python!r}: no such file or command")
        return found, "--python"
    # A venv activated inside a conda env (or the reverse): the one activated last is the one
    # whose bin/ comes first on PATH.
    path_dirs = [os.path.realpath(d) for d in environ.get("PATH", "").split(os.pathsep) if d]

    def rank(var: str) -> int:
        bin_dir = os.path.realpath(os.path.join(environ[var], "bin"))
        return path_dirs.index(bin_dir) if bin_dir in path_dirs else len(path_dirs)

    active = sorted((v for v in ("VIRTUAL_ENV", "CONDA_PREFIX") if environ.get(v)), key=rank)
    for var in active:
        candidate = os.path.join(environ[var], "bin", "python")
        if os.access(candidate, os.X_OK):
            return candidate, var
    for name in ("python", "python3"):
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found, "PATH"
    raise TargetError("no Python found: activate your environment or pass --python PATH")


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


_probe_cache: JsonCache | None = None


def _cache() -> JsonCache:
    global _probe_cache
    if _probe_cache is None:
        _probe_cache = JsonCache(cache_dir(), "probe-v2.json", MAX_CACHED_PROBES)
    return _probe_cache


def _cache_key(executable: str, environ: Mapping[str, str]) -> str:
    knobs = [environ.get(k, "") for k in PROBE_ENV]
    return json.dumps([os.path.abspath(executable), knobs, WATCHED_DISTRIBUTIONS])


def _cached_probe(key: str) -> dict[str, Any] | None:
    """A previous probe of the same interpreter, valid while none of the files and directories it
    depends on changed (installing or removing a package changes its site-packages directory)."""
    entry = _cache().get(key)
    if not entry or any(_stamp(p) != stamp for p, stamp in entry["watch"].items()):
        return None
    return entry["data"]


def _store_probe(key: str, executable: str, data: dict[str, Any]) -> None:
    watched = [executable, os.path.realpath(executable), os.path.join(data["prefix"], "pyvenv.cfg"), *data["sys_path"]]
    _cache().put(key, {"watch": {p: _stamp(p) for p in watched}, "data": data})


def probe(executable: str, environ: Mapping[str, str], selected_by: str = "") -> TargetPython:
    if not os.path.exists(executable):
        raise TargetError(f"{executable}: no such file")
    if not os.access(executable, os.X_OK) or os.path.isdir(executable):
        raise TargetError(f"{executable}: not an executable file")
    key = _cache_key(executable, environ)
    data = _cached_probe(key)
    if data is None:
        data = _run_probe(executable, environ)
        _store_probe(key, executable, data)
    return _from_probe(data, executable, selected_by)


def _run_probe(executable: str, environ: Mapping[str, str]) -> dict[str, Any]:
    script = f"WATCHED = {list(WATCHED_DISTRIBUTIONS)!r}\n" + _PROBE
    # The user's environment as is (PYTHONPATH, PYTHONHOME and the user site shape what PyTriton
    # sees, so no -I / -E), less the one knob that would leave the probe at an interactive prompt.
    env = {k: v for k, v in environ.items() if k != "PYTHONINSPECT"}
    try:
        proc = subprocess.run(
            [executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise TargetError(f"{executable}: cannot run it as Python ({exc.__class__.__name__}: {exc})") from None
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (ValueError, IndexError):
        data = None
    if not isinstance(data, dict) or "version" not in data:
        first = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise TargetError(f"{executable}: not a working Python interpreter ({first})")
    return data


def _from_probe(data: dict[str, Any], executable: str, selected_by: str) -> TargetPython:
    return TargetPython(
        executable=data["executable"] or executable,
        version=tuple(data["version"]),  # type: ignore[arg-type]
        version_string=data["version_string"],
        implementation=data["implementation"],
        abiflags=data.get("abiflags") or "",
        prefix=data["prefix"],
        base_prefix=data["base_prefix"],
        exec_prefix=data["exec_prefix"],
        libdir=data.get("libdir"),
        instsoname=data.get("instsoname"),
        ldlibrary=data.get("ldlibrary"),
        enable_shared=bool(data.get("enable_shared")),
        multiarch=data.get("multiarch"),
        purelib=data.get("purelib"),
        platlib=data.get("platlib"),
        sys_path=tuple(data.get("sys_path") or ()),
        site_packages=tuple(data.get("site_packages") or ()),
        distributions={
            name: Distribution(
                name=name,
                version=d["version"],
                location=d.get("location"),
                requires=tuple(d.get("requires") or ()),
                tags=tuple(d.get("tags") or ()),
            )
            for name, d in (data.get("distributions") or {}).items()
        },
        selected_by=selected_by,
    )
