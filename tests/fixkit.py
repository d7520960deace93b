"""Helpers for the `tritondoctor fix` tests: tree hashes, running the CLI, real activations, and
real conda packages / channels / prefixes built offline (conda-package-handling + py-rattler)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Iterator, Mapping

LOADER = "/lib64/ld-linux-x86-64.so.2"


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under `root`: directories, symlinks (target), files (sha256, mode)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(full, "rb") as fh:
                    out[rel] = ("file", hashlib.sha256(fh.read()).hexdigest(), stat.S_IMODE(st.st_mode))
    return out


def stop_group(proc: subprocess.Popen, timeout: float = 40) -> None:
    """SIGINT to the process group `proc` leads (a PyTriton script started in its own session),
    SIGKILL when it has not ended within `timeout` seconds; reaped either way."""
    import signal

    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tritondoctor(*args: str, environ: Mapping[str, str], cwd: str | None = None, timeout: float = 300,
                 stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritondoctor", *args], capture_output=True, text=True,
                          env=dict(environ), cwd=cwd, timeout=timeout, stdin=stdin)


def check_json(python: Path, environ: Mapping[str, str]) -> dict:
    proc = tritondoctor("check", "--json", "--python", str(python), environ=environ)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def by_id(report: dict, check_id: str) -> list[dict]:
    return [f for f in report["findings"] if f["id"] == check_id]


def errors(report: dict, ids: set[str] | None = None) -> list[dict]:
    return [f for f in report["findings"] if f["status"] == "error" and (ids is None or f["id"] in ids)]


def parse_env0(data: bytes) -> dict[str, str]:
    out = {}
    for item in data.split(b"\0"):
        if item:
            k, _, v = item.partition(b"=")
            out[k.decode()] = v.decode()
    return out


def venv_activated(venv_dir: Path, environ: Mapping[str, str], then: str = "") -> dict[str, str]:
    """The environment of a new bash after `source VENV/bin/activate` (and `then`)."""
    script = f'source "{venv_dir}/bin/activate" && {then + " && " if then else ""}env -0'
    proc = subprocess.run(["bash", "-c", script], env=dict(environ, VIRTUAL_ENV_DISABLE_PROMPT="1"),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return parse_env0(proc.stdout)


def conda_activated(prefix: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """What `conda activate PREFIX` gives a bash user, done as conda does it (conda's activate.py):
    CONDA_PREFIX / CONDA_SHLVL / CONDA_DEFAULT_ENV / PATH exported first, then every
    etc/conda/activate.d/*.sh sourced in sorted order."""
    env = dict(environ)
    env.update(CONDA_PREFIX=str(prefix), CONDA_SHLVL="1", CONDA_DEFAULT_ENV=str(prefix),
               PATH=f"{prefix}/bin:{environ.get('PATH', '/usr/bin:/bin')}")
    scripts = sorted((prefix / "etc" / "conda" / "activate.d").glob("*.sh"))
    body = "".join(f'. "{s}"\n' for s in scripts) + "env -0\n"
    proc = subprocess.run(["bash", "-c", body], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return parse_env0(proc.stdout)


def site_packages(env: Path) -> Path:
    return next((env / "lib").glob("python3*/site-packages"))


def server_environ(pytriton_site: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """What PyTriton gives tritonserver: nvidia_pytriton.libs appended to LD_LIBRARY_PATH."""
    libs = str(pytriton_site / "nvidia_pytriton.libs")
    env = dict(environ)
    env["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"] + ":" + libs if "LD_LIBRARY_PATH" in env else libs
    return env


def base_interpreter() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def own_libdir() -> str:
    return sysconfig.get_config_var("LIBDIR")


# ---------------------------------------------------------------------------------------------
# conda packages, channels and prefixes
# ---------------------------------------------------------------------------------------------


def make_package(out_dir: Path, name: str, version: str, build: str, files: Mapping[str, object],
                 depends: tuple[str, ...] = (), fmt: str = ".tar.bz2", work: Path | None = None) -> Path:
    """A real conda package made with conda-package-handling. `files`: relative path -> bytes, or
    ("symlink", target), or ("copy", source path)."""
    import conda_package_handling.api as cph

    work = work or out_dir.parent / f".build-{name}-{version}-{build}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "info").mkdir(parents=True)
    paths = []
    for rel, content in files.items():
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple) and content[0] == "symlink":
            os.symlink(content[1], target)
            paths.append({"_path": rel, "path_type": "softlink",
                          "sha256": hashlib.sha256(content[1].encode()).hexdigest(), "size_in_bytes": len(content[1])})
            continue
        data = Path(content[1]).read_bytes() if isinstance(content, tuple) else content
        assert isinstance(data, bytes)
        target.write_bytes(data)
        if rel.startswith("bin/") or ".so" in rel:
            target.chmod(0o755)
        paths.append({"_path": rel, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
                      "size_in_bytes": len(data)})
    index = {"name": name, "version": version, "build": build, "build_number": 0, "subdir": "linux-64",
             "depends": list(depends), "arch": "x86_64", "platform": "linux", "license": "GPL-3.0-only WITH GCC-exception-3.1",
             "timestamp": 1700000000000}
    (work / "info" / "index.json").write_text(json.dumps(index))
    (work / "info" / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
    (work / "info" / "files").write_text("".join(f"{p}\n" for p in files))
    out_dir.mkdir(parents=True, exist_ok=True)
    file_name = f"{name}-{version}-{build}{fmt}"
    cph.create(str(work), ["info/index.json", "info/paths.json", "info/files", *files], file_name,
               out_folder=str(out_dir))
    shutil.rmtree(work, ignore_errors=True)
    return out_dir / file_name


def libstdcxx_package(out_dir: Path, library: Path, version: str, build: str, fmt: str = ".conda",
                      name: str = "libstdcxx-ng") -> Path:
    """A libstdcxx-ng-shaped package: lib/libstdc++.so.6.0.N plus the soname symlink."""
    real = Path(os.path.realpath(library))
    numbered = real.name if real.name.startswith("libstdc++.so.6.") else "libstdc++.so.6.0.29"
    return make_package(out_dir, name, version, build, {
        f"lib/{numbered}": ("copy", str(real)),
        "lib/libstdc++.so.6": ("symlink", numbered),
    }, fmt=fmt)


def index_channel(channel: Path) -> None:
    import rattler

    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel))


def install_prefix(channel: Path, prefix: Path, specs: list[str], cache: Path) -> None:
    """`rattler.solve` + `rattler.install`, offline, from a local file:// channel."""
    import rattler

    async def go() -> None:
        records = await rattler.solve(sources=[rattler.Channel(channel.as_uri())], specs=specs,
                                      platforms=["linux-64", "noarch"], virtual_packages=[])
        await rattler.install(records, target_prefix=prefix, cache_dir=cache, show_progress=False,
                              execute_link_scripts=False)

    asyncio.run(go())


def python_package(out_dir: Path, shared_site: Path, depends: tuple[str, ...] = ()) -> Path:
    """A `python` package whose bin/python is the base interpreter run as a venv-style prefix
    (pyvenv.cfg), with the shared PyTriton install's packages as symlinks in its site-packages
    (a .pth file would make PyTriton think it is an editable install: see conftest)."""
    base = base_interpreter()
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    micro = f"{minor}.{sys.version_info[2]}"
    cfg = f"home = {os.path.dirname(base)}\ninclude-system-site-packages = false\nversion = {micro}\n"
    files: dict = {
        "bin/python": ("symlink", base),
        f"bin/python{minor}": ("symlink", "python"),
        "pyvenv.cfg": cfg.encode(),
    }
    for entry in shared_site.iterdir():
        files[f"lib/python{minor}/site-packages/{entry.name}"] = ("symlink", str(entry))
    return make_package(out_dir, "python", micro, "tdx_0", files, depends=depends)


def activation_package(out_dir: Path) -> Path:
    """An activation-script package that puts $CONDA_PREFIX/lib first on LD_LIBRARY_PATH (as
    some conda-forge packages do) and restores it on deactivation."""
    activate = (
        'export CONDA_BACKUP_LD_LIBRARY_PATH="${LD_LIBRARY_PATH-}"\n'
        'export LD_LIBRARY_PATH="${CONDA_PREFIX}/lib${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"\n'
    )
    deactivate = 'export LD_LIBRARY_PATH="${CONDA_BACKUP_LD_LIBRARY_PATH}"\nunset CONDA_BACKUP_LD_LIBRARY_PATH\n'
    return make_package(out_dir, "cuda-libpath-activation", "1.0", "0", {
        "etc/conda/activate.d/cuda-libpath.sh": activate.encode(),
        "etc/conda/deactivate.d/cuda-libpath.sh": deactivate.encode(),
    })


@contextlib.contextmanager
def mounted_tmpfs(path: Path, options: str) -> Iterator[None]:
    """A tmpfs mounted at `path` with `options` (ro, noexec, size=...) while the block runs;
    the test skips with the reason when this machine refuses to mount one."""
    import pytest

    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
