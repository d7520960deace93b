"""`tree --stub` against a real stub process: what /proc/<stub>/maps holds vs the static model.

A real tritonserver (nvidia-pytriton's, laid out as PyTriton does) serves a Python-backend model
that imports numpy (through triton_python_backend_utils) and grpc's Cython core; once the model
is ready, the shared objects its stub has mapped are compared with stub_process_tree's list, by
soname/basename and by the file each resolves to (realpaths).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from repo_server_fixtures import write_add_sub
from tritondoctor.elf import read_elf
from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts.target import probe
from tritondoctor.smoke import repo_layout, repo_server
from tritondoctor.smoke.procs import free_ports
from tritondoctor.stubtree import stub_process_tree

pytestmark = pytest.mark.slow
EXTRA_MODULE = "grpc._cython.cygrpc"
# Standard-library extension modules the real stub maps that no import statement run at import
# time names, so the static walk cannot see them (documented limits of tritondoctor.stubtree):
#  - _blake2: hashlib builds its constructors by *calling* a function at import time, and that
#    function does `import _blake2`;
#  - _datetime, random's _random/_sha512/_bisect, _hashlib (hmac), zlib: imported by code that
#    runs rather than by a statement the walk reaches (the stub's C++ and grpc's Cython init
#    import Python modules from native code, and functions called at startup import more).
# Each must be a lib-dynload module that brings no library of its own outside the model's list,
# so the resolution of every library is still checked.
RUNTIME_IMPORTS = {"_blake2", "_datetime", "_random", "_sha512", "_bisect", "_hashlib", "zlib"}


def is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def mapped_objects(pid: int) -> set[str]:
    """Realpaths of the ELF files mapped into `pid`. Left out, with reason: anonymous and
    special mappings ([vdso], [heap]...: no file; the vDSO is never in the model's list either),
    /dev/shm segments (the backend's shared memory, mapped by mmap, not by the loader) and other
    non-ELF files (locale archive, gconv cache)."""
    out = set()
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            fields = line.split(None, 5)
            path = fields[5].strip() if len(fields) == 6 else ""
            if not path.startswith("/") or path.startswith("/dev/shm/") or path.endswith(" (deleted)"):
                continue
            if is_elf(path):
                out.add(os.path.realpath(path))
    return out


def _stub_of(server: repo_server.Server, model_dir: str, deadline: float) -> psutil.Process:
    while time.monotonic() < deadline:
        for proc in psutil.Process(server.proc.pid).children(recursive=True):
            try:
                if proc.name() == "triton_python_backend_stub" and model_dir in " ".join(proc.cmdline()):
                    return proc
            except psutil.Error:
                continue
        time.sleep(0.2)
    raise AssertionError("no stub for the model")


@pytest.fixture
def served(tmp_path: Path, clean_environ: dict[str, str]) -> Iterator[tuple[dict[str, str], int, str]]:
    env = dict(clean_environ)
    env["LD_LIBRARY_PATH"] = sysconfig.get_config_var("LIBDIR") or ""
    target = probe(sys.executable, env)
    install = pytriton_facts.locate(target, env)
    assert install is not None
    repo = tmp_path / "repo"
    write_add_sub(repo, "uses_grpc", imports=[EXTRA_MODULE])
    work = tmp_path / "work"
    work.mkdir()
    layout = repo_layout.bundled_layout(install, target.minor, str(work))
    ports = dict(zip(("http", "grpc", "metrics"), free_ports(3)))
    prefix = repo_server.new_shm_prefix()
    cmd = repo_layout.server_command(layout, [str(repo)], ports, prefix)
    server = repo_server.start(cmd, repo_layout.server_environ(env, layout, install, target),
                               str(work / "log"), prefix)
    try:
        assert repo_server.wait_live(server, ports["http"], time.monotonic() + 120) == "live", server.text()[-3000:]
        status, _ = repo_server.request(ports["http"], "/v2/models/uses_grpc/ready")
        assert status == 200, server.text()[-3000:]
        stub = _stub_of(server, str(repo / "uses_grpc"), time.monotonic() + 30)
        yield env, stub.pid, str(stub.exe())
    finally:
        repo_server.stop(server)


def test_stub_maps_match_the_model(served: tuple[dict[str, str], int, str]) -> None:
    env, pid, stub_exe = served
    real = mapped_objects(pid) - {os.path.realpath(stub_exe)}  # the program itself: the kernel maps it
    target = probe(sys.executable, env)
    install = pytriton_facts.locate(target, env)
    modelled = stub_process_tree(target, install, env, [EXTRA_MODULE])
    assert not modelled["errors"] and not modelled["version_errors"]
    paths = [lib["path"] for lib in modelled["libraries"] if lib["path"] and lib["via"] != "main"]
    predicted = {os.path.realpath(p) for p in paths}
    by_name = {os.path.basename(p): p for p in predicted}
    # Same files, same names: any library the process has under a basename the model resolved
    # elsewhere is a wrong resolution.
    wrong = {os.path.basename(p): (p, by_name[os.path.basename(p)]) for p in real
             if os.path.basename(p) in by_name and by_name[os.path.basename(p)] != p}
    assert not wrong, wrong
    unseen = {p for p in real - predicted if os.path.basename(p).split(".")[0] in RUNTIME_IMPORTS}
    assert real - predicted - unseen == set(), f"mapped but not modelled: {sorted(real - predicted - unseen)}"
    assert all("/lib-dynload/" in p for p in unseen), unseen
    known_names = {os.path.basename(p) for p in predicted} | {
        lib["name"] for lib in modelled["libraries"] if lib["path"]}
    for path in unseen:
        info = read_elf(path)
        assert {name for _, name in info.dependencies} <= known_names, (path, info.dependencies)
    assert predicted - real == set(), f"modelled but not mapped: {sorted(predicted - real)}"
