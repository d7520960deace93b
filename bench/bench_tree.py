"""The loader model against `ldd` on PyTriton's binaries, in one run.

    python bench/bench_tree.py [--runs N] [--site-packages DIR]

The model resolves the whole closure of `tritonserver`, the python backend stub for the running
Python and `libtriton_python.so`, with symbol-version checks, under the environment PyTriton
gives them (`nvidia_pytriton.libs` appended to LD_LIBRARY_PATH); `ldd` lists the same three
files under the same environment. Target (issue 2): model / ldd <= 1.0.

Reported, each as the median of N runs, the two commands alternating so that machine load hits
both alike:
  * in-process, warm: `resolve` x3 in this process once its in-memory ELF cache is filled;
  * fresh process, warm disk cache: a new interpreter that imports tritondoctor and resolves
    (interpreter start-up included, like ldd's own process start), the time spent inside
    `resolve` shown beside it; its cache directory holds what one earlier run on these files
    left there;
  * fresh process, cold: the same with TRITONDOCTOR_CACHE_DIR set to a new empty directory;
  * `ldd` on the three files, one process.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from tritondoctor.loader import LoaderEnv, resolve
t1 = time.perf_counter()
env = LoaderEnv.from_system(environ=json.loads(sys.argv[1]), cwd="/")
trees = [resolve(f, env) for f in sys.argv[2:]]
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "resolve": t2 - t1, "libraries": sum(len(t.libraries) for t in trees),
                  "version_errors": sum(len(t.version_errors) for t in trees)}))
"""


def pytriton_files(site_packages: Path | None) -> tuple[list[str], Path]:
    if site_packages is None:
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("nvidia-pytriton is not installed here; pass --site-packages")
        package = Path(list(spec.submodule_search_locations)[0])
    else:
        package = site_packages / "pytriton"
    server = package / "tritonserver"
    stub = server / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" / "triton_python_backend_stub"
    files = [server / "bin" / "tritonserver", stub, server / "backends" / "python" / "libtriton_python.so"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"missing PyTriton files: {missing}")
    return [str(f) for f in files], package.parent / "nvidia_pytriton.libs"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--site-packages", type=Path, default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tritondoctor.loader import LoaderEnv, resolve

    files, bundled = pytriton_files(args.site_packages)
    ldd = shutil.which("ldd")
    if ldd is None:
        print("ldd not found", file=sys.stderr)
        return 2
    llp = os.environ.get("LD_LIBRARY_PATH")
    loader_environ = {"LD_LIBRARY_PATH": f"{llp}:{bundled}" if llp else str(bundled)}
    if os.environ.get("LD_PRELOAD"):
        loader_environ["LD_PRELOAD"] = os.environ["LD_PRELOAD"]
    ldd_env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    ldd_env.update(loader_environ)
    # The warm runs get a cache directory of their own, filled by one run on these files: what a
    # user's cache holds after one `tritondoctor` run, not whatever else this machine has seen.
    warm_dir = tempfile.mkdtemp(prefix="tritondoctor-bench-warm-")
    child_env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                     TRITONDOCTOR_CACHE_DIR=warm_dir)
    child = [sys.executable, "-c", CHILD, json.dumps(loader_environ), *files]

    # In-process: the first call reads every ELF file (or the disk cache), later ones hit memory.
    env = LoaderEnv.from_system(environ=loader_environ, cwd="/")
    start = time.perf_counter()
    trees = [resolve(f, env) for f in files]
    first_in_process = time.perf_counter() - start
    n_libs = sum(len(t.libraries) for t in trees)
    n_version_errors = sum(len(t.version_errors) for t in trees)
    timed(child, child_env)  # fills the warm cache directory
    bare = [sys.executable, "-c", "pass"]

    in_process, warm, warm_inner, cold, cold_inner, ldds, bares = [], [], [], [], [], [], []
    for _ in range(args.runs):
        bares.append(timed(bare, child_env)[0])

        start = time.perf_counter()
        for f in files:
            resolve(f, env)
        in_process.append(time.perf_counter() - start)

        elapsed, out = timed(child, child_env)
        warm.append(elapsed)
        warm_inner.append(json.loads(out)["resolve"])

        with tempfile.TemporaryDirectory(prefix="tritondoctor-bench-cold-") as empty:
            elapsed, out = timed(child, dict(child_env, TRITONDOCTOR_CACHE_DIR=empty))
        cold.append(elapsed)
        cold_inner.append(json.loads(out)["resolve"])

        elapsed, _ = timed([ldd, *files], ldd_env)
        ldds.append(elapsed)

    med = statistics.median
    ldd_ms = med(ldds) * 1000

    def row(label: str, seconds: float, extra: str = "") -> None:
        ms = seconds * 1000
        print(f"  {label:<44} {ms:8.1f} ms   model/ldd {ms / ldd_ms:5.2f}{extra}")

    print(f"files: {', '.join(os.path.relpath(f, Path(files[0]).parents[3]) for f in files)}")
    print(f"closure: {n_libs} library entries over 3 trees, {n_version_errors} missing symbol versions; "
          f"LD_LIBRARY_PATH={loader_environ['LD_LIBRARY_PATH']}")
    print(f"median of {args.runs} runs:")
    print(f"  {'ldd (3 files, one process)':<44} {ldd_ms:8.1f} ms")
    row("model, in-process, warm memory cache", med(in_process))
    row("model, fresh process, warm disk cache", med(warm), f"   (inside resolve: {med(warm_inner) * 1000:.1f} ms)")
    row("model, fresh process, cold (empty cache dir)", med(cold), f"   (inside resolve: {med(cold_inner) * 1000:.1f} ms)")
    print(f"  {'model, first call in this process':<44} {first_in_process * 1000:8.1f} ms")
    print(f"  {'(bare `python -c pass` start-up, for scale)':<44} {med(bares) * 1000:8.1f} ms")
    shutil.rmtree(warm_dir, ignore_errors=True)
    ok = med(in_process) * 1000 <= ldd_ms
    print(f"verdict (in-process warm vs ldd, target <= 1.0): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
