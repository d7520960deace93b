"""`tree --stub` against a real stub process: what /proc/<stub>/maps holds vs the static model.

A real tritonserver (nvidia-pytriton's, laid out as PyTriton does) serves a Python-backend model
that imports numpy (through triton_python_backend_utils) and grpc's Cython core; once the model
is ready, the shared objects its stub has mapped are compared with stub_process_tree's list, by
soname/basename and by the file each resolves to (realpaths).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psutil
import pytest
from repo_fixtures import have_pyenv, numpy_dir, packed_serving_env
from repo_server_fixtures import write_add_sub

from tritondoctor.elf import read_elf
from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts.target import probe
from tritondoctor.repository.trees import model_stub_trees
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
ENV_PARAM = 'parameters: { key: "EXECUTION_ENV_PATH" value: { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }\n'
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


@dataclass
class Served:
    env: dict[str, str]  # the user's environment
    pid: int  # the model's stub process
    stub_exe: str
    repo: Path
    backend_directory: str  # the server's private layout
    server_env: dict[str, str]  # what tritonserver was started with
    work: Path


def _serve(tmp_path: Path, clean_environ: dict[str, str], repo: Path, model: str) -> Iterator[Served]:
    """nvidia-pytriton's server on `repo` (its own layout in tmp_path/work) until `model` is ready."""
    env = dict(clean_environ)
    env["LD_LIBRARY_PATH"] = sysconfig.get_config_var("LIBDIR") or ""
    target = probe(sys.executable, env)
    install = pytriton_facts.locate(target, env)
    assert install is not None
    work = tmp_path / "work"
    work.mkdir()
    layout = repo_layout.bundled_layout(install, target.minor, str(work))
    ports = dict(zip(("http", "grpc", "metrics"), free_ports(3)))
    prefix = repo_server.new_shm_prefix()
    cmd = repo_layout.server_command(layout, [str(repo)], ports, prefix)
    server_env = repo_layout.server_environ(env, layout, install, target)
    server = repo_server.start(cmd, server_env, str(work / "log"), prefix)
    try:
        assert repo_server.wait_live(server, ports["http"], time.monotonic() + 120) == "live", server.text()[-3000:]
        status, _ = repo_server.request(ports["http"], f"/v2/models/{model}/ready")
        assert status == 200, server.text()[-3000:]
        stub = _stub_of(server, str(repo / model), time.monotonic() + 30)
        assert layout.backend_directory is not None
        yield Served(env, stub.pid, str(stub.exe()), repo, layout.backend_directory, dict(server_env), work)
    finally:
        repo_server.stop(server)


@pytest.fixture
def served(tmp_path: Path, clean_environ: dict[str, str]) -> Iterator[Served]:
    repo = tmp_path / "repo"
    write_add_sub(repo, "uses_grpc", imports=[EXTRA_MODULE])
    yield from _serve(tmp_path, clean_environ, repo, "uses_grpc")


@pytest.fixture
def served_packed(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
                  clean_environ: dict[str, str]) -> Iterator[Served]:
    if not (have_pyenv("3.11") and numpy_dir("3.11")):
        pytest.skip("needs pyenv's 3.11.7 and numpy<2 (the packed execution environment is made from them)")
    repo = tmp_path / "repo"
    model = write_add_sub(repo, "packed")
    shutil.copy(packed_serving_env(tmp_path_factory.getbasetemp(), "3.11"), model / "env.tar.gz")
    (model / "config.pbtxt").write_text((model / "config.pbtxt").read_text() + ENV_PARAM)
    yield from _serve(tmp_path, clean_environ, repo, "packed")


def test_stub_maps_match_the_model(served: Served) -> None:
    target = probe(sys.executable, served.env)
    install = pytriton_facts.locate(target, served.env)
    modelled = stub_process_tree(target, install, served.env, [EXTRA_MODULE])
    assert_maps_match(served, modelled)


def test_the_models_own_tree_in_its_repository_matches_its_stub(served: Served) -> None:
    """`tree --stub --model-repository`: the model's imports come from its model.py (it imports
    EXTRA_MODULE; nothing is named on the command line), its stub is the backend directory's."""
    target = probe(sys.executable, served.env)
    trees = model_stub_trees([str(served.repo)], target, served.server_env, served.backend_directory, [],
                             cwd=str(served.work))
    (modelled,) = trees["models"]
    assert modelled["model"] == "uses_grpc" and modelled["extensions_from"] == "imports" and not trees["errors"]
    assert os.path.realpath(modelled["file"]) == os.path.realpath(served.stub_exe)
    assert any(e["module"] == EXTRA_MODULE for e in modelled["extensions"])
    assert_maps_match(served, modelled)


def assert_maps_match(served: Served, modelled: dict) -> None:
    real = mapped_objects(served.pid) - {os.path.realpath(served.stub_exe)}  # the program itself: the kernel maps it
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


def test_a_packed_envs_model_tree_matches_its_stub(served_packed: Served) -> None:
    """With EXECUTION_ENV_PATH a tarball: the stub's closure is resolved with the env's lib/ first,
    inside the tarball (shown as <tarball>!<member>), and matches what the real stub mapped from
    the directory the backend unpacked it into; numpy's extension modules are an upper bound
    (every one in the package), so each of those the process mapped is in the model."""
    target = probe(sys.executable, served_packed.env)
    trees = model_stub_trees([str(served_packed.repo)], target, served_packed.server_env,
                             served_packed.backend_directory, [], cwd=str(served_packed.work))
    (modelled,) = trees["models"]
    tarball = str(served_packed.repo / "packed" / "env.tar.gz")
    assert modelled["env"] == tarball and modelled["extensions_from"] == "packages", modelled["errors"]
    assert not modelled["errors"] and not modelled["version_errors"]

    def where(path: str) -> str:  # a member of the env, or a file of this machine
        if path.startswith(tarball + "!"):
            return "env:" + os.path.normpath(path[len(tarball) + 1:])  # RPATH $ORIGIN/../x, spelt out
        unpacked = re.match(r"/tmp/python_env_[^/]+/0/(.*)", path)
        return "env:" + unpacked.group(1) if unpacked else os.path.realpath(path)

    real_paths = {where(p): p for p in mapped_objects(served_packed.pid)}
    real = set(real_paths) - {where(served_packed.stub_exe)}
    closure = {where(lib["path"]) for lib in modelled["libraries"]
               if lib["path"] and lib["via"] not in ("main", "dlopen") and not lib["needed_by"][0].startswith(
                   tarball + "!lib/python3.11/site-packages/")}
    assert "env:lib/libpython3.11.so.1.0" in closure
    assert closure - real == set(), f"modelled but not mapped: {sorted(closure - real)}"
    modelled_all = {where(lib["path"]) for lib in modelled["libraries"] if lib["path"]}
    numpy_mapped = {p for p in real if p.startswith("env:lib/python3.11/site-packages/numpy")}
    assert numpy_mapped and numpy_mapped - modelled_all == set(), sorted(numpy_mapped - modelled_all)
    rest = real - modelled_all - numpy_mapped
    # Not modelled inside a packed env: the standard library's extension modules the stub's
    # Python imports from the env (its sources are not unpacked, so its imports are not followed),
    # and the system libraries those need (libffi for _ctypes, libcrypto for _hashlib).
    dynload = {p for p in rest if p.startswith("env:lib/python3.11/lib-dynload/")}
    needed = {name for p in dynload for _, name in read_elf(real_paths[p]).dependencies}
    for path in rest - dynload:
        name = os.path.basename(real_paths[path])  # a realpath: the soname, or the soname plus a version
        assert any(name == n or name.startswith(n + ".") for n in needed), (path, sorted(needed))
