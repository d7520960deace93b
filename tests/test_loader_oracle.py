"""The loader model against glibc's real loader (issue 2 acceptance).

For PyTriton's `tritonserver`, every `triton_python_backend_stub`, `libtriton_python.so`, and at
least 300 shared objects of this system, under several environments, the model must agree with
`ld.so` in trace mode on every resolved path, every "not found", the load order, and every
missing symbol version (tests/oracle.py does the comparing).

Environments:
  plain      no LD_LIBRARY_PATH
  decoys     LD_LIBRARY_PATH of a nonexistent dir, an empty dir, a dir of wrong-class (32-bit) and
             wrong-machine files and a dangling symlink named like real sonames, a plain file,
             and an empty entry (the current directory, which holds another wrong-class decoy)
  prefix     a prefix whose lib/ shadows system libraries (copies and symlinks of libz,
             libstdc++, libgcc_s, liblzma, libbz2) first on LD_LIBRARY_PATH
  fatal      a text file named libz.so.1 first on LD_LIBRARY_PATH: ld.so gives up on any object
             that needs libz, and names the file
  oldcxx     an old libstdc++.so.6 (version nodes up to GLIBCXX_3.4.29) first on
             LD_LIBRARY_PATH: symbol-version errors for every object that needs a newer one
PyTriton's binaries also run under `pytriton` (nvidia_pytriton.libs appended to
LD_LIBRARY_PATH, as PyTriton's launcher does) and that combined with the others.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import tritondoctor.elf as elf_module
from elf_fixtures import Fixtures, have_gcc
from oracle import RTLD, Comparison, OracleResult, compare, system_shared_objects, trace
from tritondoctor.elf import elf_cache
from tritondoctor.loader import LoaderEnv, ResolvedTree, resolve

pytestmark = pytest.mark.skipif(not os.path.exists(RTLD), reason=f"the oracle is x86-64 glibc's {RTLD}")

MIN_SYSTEM_OBJECTS = 300
MAX_SYSTEM_OBJECTS = 400
SYSTEM_LIB = "/usr/lib/x86_64-linux-gnu"


@pytest.fixture(scope="module", autouse=True)
def private_elf_cache() -> Iterator[None]:
    """One in-memory ELF cache for the module: every run parses from scratch (what a fresh
    machine does), and the decoy and prefix copies stay out of the user's on-disk cache."""
    saved = elf_module._default_cache
    elf_module._default_cache = elf_cache(None)
    yield
    elf_module._default_cache = saved


@dataclass(frozen=True)
class Env:
    label: str
    environ: dict[str, str]
    cwd: str


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Env]:
    if not have_gcc():
        pytest.skip("gcc is needed to build the decoy libraries")
    root = tmp_path_factory.mktemp("oracle-envs")
    fx = Fixtures(root / "fx")
    decoys = fx.mkdir("decoys")
    for name in ("libc.so.6", "libstdc++.so.6", "libz.so.1", "libpcre2-8.so.0"):
        fx.wrong_class(f"decoys/{name}")
    for name in ("libm.so.6", "libgcc_s.so.1"):
        fx.wrong_machine(f"decoys/{name}")
    (decoys / "libpthread.so.0").symlink_to("/nonexistent/libpthread.so.0")
    here = fx.mkdir("cwd")
    fx.wrong_class("cwd/libdl.so.2")
    plain_file = fx.path("not-a-directory")
    plain_file.write_text("an LD_LIBRARY_PATH entry that is a file\n")
    empty = fx.mkdir("empty")
    decoy_path = f"/nonexistent/tritondoctor:{empty}:{decoys}:{plain_file}:"

    prefix = fx.mkdir("prefix/lib")
    for name in ("libz.so.1", "libstdc++.so.6", "libgcc_s.so.1"):
        shutil.copy2(os.path.realpath(f"{SYSTEM_LIB}/{name}"), prefix / name)
    for name in ("liblzma.so.5", "libbz2.so.1.0"):
        if os.path.exists(f"{SYSTEM_LIB}/{name}"):
            (prefix / name).symlink_to(os.path.realpath(f"{SYSTEM_LIB}/{name}"))

    fatal = fx.mkdir("fatal")
    fx.not_elf("fatal/libz.so.1")

    old, _ = fx.old_libstdcxx("oldcxx/libstdc++.so.6")

    return {
        "plain": Env("plain", {}, "/"),
        "decoys": Env("decoys", {"LD_LIBRARY_PATH": decoy_path}, str(here)),
        "prefix": Env("prefix", {"LD_LIBRARY_PATH": str(prefix)}, "/"),
        "fatal": Env("fatal", {"LD_LIBRARY_PATH": str(fatal)}, "/"),
        "oldcxx": Env("oldcxx", {"LD_LIBRARY_PATH": str(old.parent)}, "/"),
    }


def run_both(files: list[str], env: Env) -> list[tuple[ResolvedTree, OracleResult, Comparison]]:
    """ld.so for every file in a thread pool (each its own process) while the model resolves
    them here; then the comparisons."""
    workers = min(8, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(trace, f, env.environ, env.cwd) for f in files]
        loader_env = LoaderEnv.from_system(environ=env.environ, cwd=env.cwd)
        trees = [resolve(f, loader_env) for f in files]
        truths = [f.result() for f in futures]
    return [(t, o, compare(t, o, env.label, env.cwd)) for t, o in zip(trees, truths)]


def assert_all_agree(results: list[tuple[ResolvedTree, OracleResult, Comparison]]) -> None:
    bad = [c for _, _, c in results if not c]
    assert not bad, f"{len(bad)} of {len(results)} disagree with ld.so:\n" + "\n".join(c.report() for c in bad[:10])


# ---------------------------------------------------------------------------------------------
# System shared objects
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def system_objects() -> list[str]:
    found = system_shared_objects()
    if len(found) < MIN_SYSTEM_OBJECTS:
        pytest.skip(f"this machine has only {len(found)} shared objects in its library directories")
    if len(found) > MAX_SYSTEM_OBJECTS:  # an even, deterministic spread over the sorted list
        found = [found[i * len(found) // MAX_SYSTEM_OBJECTS] for i in range(MAX_SYSTEM_OBJECTS)]
    return found


@pytest.mark.parametrize("label", ["plain", "decoys", "prefix", "fatal", "oldcxx"])
def test_system_objects_agree_with_ld_so(label: str, envs: dict[str, Env], system_objects: list[str]) -> None:
    env = envs[label]
    results = run_both(system_objects, env)
    assert len(results) >= MIN_SYSTEM_OBJECTS
    assert_all_agree(results)
    truths = [o for _, o, _ in results]
    resolved = sum(len(o.loaded) for o in truths)
    assert resolved > 2 * len(truths)  # the comparison was not vacuous
    # Each environment did what it is there for, in ld.so's own words:
    if label == "decoys":
        trees = [t for t, _, _ in results]
        rejected = {r.path for t in trees for lib in t.libraries for r in lib.rejected}
        assert any(p.endswith("/decoys/libc.so.6") for p in rejected)
        assert any(p.endswith("/decoys/libm.so.6") for p in rejected)
        assert all(o.load_error is None for o in truths)
    elif label == "prefix":
        assert sum(any("/prefix/lib/" in p for p in o.loaded) for o in truths) > 20
    elif label == "fatal":
        failed = [o for o in truths if o.load_error]
        assert len(failed) > 10 and all("libz.so.1: invalid ELF header" in (o.load_error or "") for o in failed)
        assert len(failed) < len(truths)
    elif label == "oldcxx":
        with_errors = [o for o in truths if o.version_errors]
        assert len(with_errors) > 5
        assert all(e.version.startswith(("GLIBCXX_", "CXXABI_")) for o in with_errors for e in o.version_errors)


# ---------------------------------------------------------------------------------------------
# PyTriton's binaries
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pytriton_files() -> tuple[list[str], Path]:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("nvidia-pytriton is not installed in the test environment")
    package = Path(list(spec.submodule_search_locations)[0])
    server = package / "tritonserver"
    stubs = sorted(server.glob("python_backend_stubs/*/triton_python_backend_stub"))
    files = [server / "bin/tritonserver", server / "backends/python/libtriton_python.so", *stubs]
    if not all(f.is_file() for f in files) or not stubs:
        pytest.skip(f"incomplete nvidia-pytriton install under {package}")
    return [str(f) for f in files], package.parent / "nvidia_pytriton.libs"


@pytest.mark.parametrize("label", ["plain", "pytriton", "decoys", "prefix", "fatal", "oldcxx"])
def test_pytriton_binaries_agree_with_ld_so(
    label: str, envs: dict[str, Env], pytriton_files: tuple[list[str], Path]
) -> None:
    files, bundled = pytriton_files
    stub_minors = {Path(f).parent.name for f in files if f.endswith("_stub")}
    assert {"3.8", "3.9", "3.10", "3.11", "3.12"} <= stub_minors
    base = envs["plain" if label == "pytriton" else label]
    environ = dict(base.environ)
    if label != "plain":
        # PyTriton's launcher appends its bundled libraries to LD_LIBRARY_PATH.
        llp = environ.get("LD_LIBRARY_PATH")
        environ["LD_LIBRARY_PATH"] = f"{llp}:{bundled}" if llp else str(bundled)
    env = Env(label, environ, base.cwd)
    results = run_both(files, env)
    assert_all_agree(results)
    server_tree, server_truth, _ = results[0]
    if label != "fatal":
        assert len(server_truth.loaded) > 30
    if label == "oldcxx":
        assert {e.version for e in server_truth.version_errors} == {"GLIBCXX_3.4.30"}
    if label == "fatal":
        assert server_truth.load_error is not None and server_tree.errors


# ---------------------------------------------------------------------------------------------
# The loader's own configuration, as it reports it
# ---------------------------------------------------------------------------------------------


def test_search_directories_match_ld_so_debug_output(tmp_path: Path) -> None:
    """glibc-hwcaps and legacy hwcaps subdirectories, in order, and the default directories:
    the model's LoaderEnv against LD_DEBUG=libs of a real lookup."""
    import re
    import subprocess

    probe = tmp_path / "llp"
    probe.mkdir()
    env = dict(os.environ, LD_DEBUG="libs", LD_LIBRARY_PATH=str(probe), LD_TRACE_LOADED_OBJECTS="1")
    env.pop("LD_PRELOAD", None)
    debug = subprocess.run([RTLD, "/bin/true"], env=env, capture_output=True, text=True).stderr
    searched = re.search(r"search path=(\S+)\s+\(LD_LIBRARY_PATH\)", debug)
    assert searched, debug[:2000]
    model = LoaderEnv.from_system(environ={"LD_LIBRARY_PATH": str(probe)})
    expected = [f"{probe}/glibc-hwcaps/{h}" for h in model.hwcaps_subdirs]
    expected += [f"{probe}/{sub}" if sub else str(probe) for sub in model.legacy_subdirs]
    assert searched[1].split(":") == expected
    help_text = subprocess.run([RTLD, "--help"], capture_output=True, text=True).stdout
    defaults = re.findall(r"^\s+(/\S+) \(system search path\)$", help_text, re.M)
    assert [d.rstrip("/") for d in defaults] == list(model.system_dirs)
