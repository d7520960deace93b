"""Where the installed nvidia-pytriton keeps its binaries, and the environment it gives them.

Read from the files of the installed version (0.7.0's `server/triton_server.py` and `triton.py`):
- the server runs from a *copy* of `pytriton/tritonserver` in a workspace under PYTRITON_HOME
  (`workspace_*/tritonserver`), with the stub for the running Python copied to
  `backends/python/triton_python_backend_stub`; so `$ORIGIN` in their RPATHs points into the
  workspace, not into site-packages;
- `nvidia_pytriton.libs` is *appended* to LD_LIBRARY_PATH (so any user entry wins), or becomes
  LD_LIBRARY_PATH when the variable is unset; a set-but-empty value gives ":<libs>", i.e. an
  empty entry = current directory;
- the env's `bin` is put first on PATH; the stub inherits the server's environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from tritondoctor.facts.inputs import EnvReads
from tritondoctor.facts.target import TargetPython

# PYTRITON_HOME and what its default is made of; the files are under the install's package_dir.
READS = EnvReads(names=frozenset({"PYTRITON_HOME", "XDG_CACHE_HOME", "HOME"}))

WORKSPACE_PLACEHOLDER = "workspace_XXXXXXXX"


@dataclass(frozen=True)
class PyTritonInstall:
    version: str
    package_dir: str  # .../site-packages/pytriton
    libs_dir: str  # .../site-packages/nvidia_pytriton.libs
    tritonserver: str
    python_backend: str  # backends/python/libtriton_python.so
    stubs: Mapping[str, str] = field(default_factory=dict)  # "3.11" -> path
    wheel_tags: tuple[str, ...] = ()
    pytriton_home: str = ""
    # What the files above are, read when located so that checks need not look (not in to_json).
    tritonserver_is_file: bool = False
    tritonserver_executable: bool = False  # os.access(X_OK)
    python_backend_is_file: bool = False
    libs_dir_is_dir: bool = False
    stub_executable: Mapping[str, bool] = field(default_factory=dict)  # "3.11" -> os.access(X_OK)
    # "3.11" -> the stub's file system is read-only or noexec (chmod cannot help there)
    stub_on_frozen_fs: Mapping[str, bool] = field(default_factory=dict)

    @property
    def missing_files(self) -> tuple[str, ...]:
        """tritonserver and the python backend, those that are not regular files."""
        present = ((self.tritonserver, self.tritonserver_is_file), (self.python_backend, self.python_backend_is_file))
        return tuple(path for path, is_file in present if not is_file)

    @property
    def server_dir(self) -> str:
        return os.path.join(self.package_dir, "tritonserver")

    def stub_for(self, minor: str) -> str | None:
        return self.stubs.get(minor)

    def run_location(self, path: str) -> str:
        """Where PyTriton runs `path` from: the same place inside a workspace copy."""
        rel = os.path.relpath(path, self.server_dir)
        if rel.startswith("python_backend_stubs"):
            rel = os.path.join("backends", "python", "triton_python_backend_stub")
        return os.path.join(self.pytriton_home, WORKSPACE_PLACEHOLDER, "tritonserver", rel)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "package_dir": self.package_dir,
            "libs_dir": self.libs_dir,
            "tritonserver": self.tritonserver,
            "python_backend": self.python_backend,
            "stubs": dict(self.stubs),
            "wheel_tags": list(self.wheel_tags),
            "pytriton_home": self.pytriton_home,
        }


def pytriton_home(environ: Mapping[str, str]) -> str:
    """PyTriton's constants.PYTRITON_HOME, computed the way 0.7.0 computes it."""
    default = os.path.join(environ.get("XDG_CACHE_HOME", "$HOME/.cache"), "pytriton")
    raw = environ.get("PYTRITON_HOME", default)
    home = environ.get("HOME", os.path.expanduser("~"))
    expanded = raw.replace("${HOME}", home).replace("$HOME", home)
    if expanded.startswith("~"):
        expanded = home + expanded[1:]
    return os.path.realpath(expanded)


def locate(target: TargetPython, environ: Mapping[str, str]) -> PyTritonInstall | None:
    dist = target.distributions.get("nvidia-pytriton")
    if dist is None or not dist.location:
        return None
    site = dist.location
    package_dir = os.path.join(site, "pytriton")
    server_dir = os.path.join(package_dir, "tritonserver")
    stubs_dir = os.path.join(server_dir, "python_backend_stubs")
    stubs: dict[str, str] = {}
    try:
        for minor in sorted(os.listdir(stubs_dir)):
            stub = os.path.join(stubs_dir, minor, "triton_python_backend_stub")
            if os.path.exists(stub):
                stubs[minor] = stub
    except OSError:
        pass
    tritonserver = os.path.join(server_dir, "bin", "tritonserver")
    python_backend = os.path.join(server_dir, "backends", "python", "libtriton_python.so")
    libs_dir = _libs_dir(package_dir, target)
    return PyTritonInstall(
        version=dist.version,
        package_dir=package_dir,
        libs_dir=libs_dir,
        tritonserver=tritonserver,
        python_backend=python_backend,
        stubs=stubs,
        wheel_tags=dist.tags,
        pytriton_home=pytriton_home(environ),
        tritonserver_is_file=os.path.isfile(tritonserver),
        tritonserver_executable=os.access(tritonserver, os.X_OK),
        python_backend_is_file=os.path.isfile(python_backend),
        libs_dir_is_dir=os.path.isdir(libs_dir),
        stub_executable={minor: os.access(path, os.X_OK) for minor, path in stubs.items()},
        stub_on_frozen_fs={minor: _frozen_fs(path) for minor, path in stubs.items()},
    )


def _libs_dir(package_dir: str, target: TargetPython) -> str:
    """pytriton.utils.distribution.get_libs_path(): a package outside every directory of
    site.getsitepackages() (+ the user site) counts as an editable install, and then PyTriton
    looks for `tritonserver/external_libs` instead of the wheel's nvidia_pytriton.libs. That
    happens when the package is reached through a .pth file or PYTHONPATH."""
    inside_site = any(
        os.path.commonpath([package_dir, site]) == os.path.normpath(site)
        for site in target.site_packages
        if site and os.path.isabs(site)
    )
    if inside_site or not target.site_packages:
        return os.path.join(os.path.dirname(package_dir), "nvidia_pytriton.libs")
    return os.path.join(package_dir, "tritonserver", "external_libs")


def server_environ(environ: Mapping[str, str], install: PyTritonInstall, target: TargetPython) -> dict[str, str]:
    """The environment PyTriton 0.7.0 starts tritonserver with (TritonServer._get_env)."""
    env = dict(environ)
    if "LD_LIBRARY_PATH" in env:
        env["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"] + ":" + install.libs_dir
    else:
        env["LD_LIBRARY_PATH"] = install.libs_dir
    env["PATH"] = os.path.join(target.exec_prefix, "bin") + ":" + env.get("PATH", "")
    return env


def _frozen_fs(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & (os.ST_RDONLY | os.ST_NOEXEC))
    except OSError:
        return False
