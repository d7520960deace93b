"""Whole-process `tritondoctor check` wall time against `ldd tritonserver`, in one run.

    python bench/bench_check.py [--python PATH] [--runs N]

Target (issue 3): median <= 0.5 s on the 2-core CI machine. Both commands run as fresh
processes, alternately, so that machine load affects them alike; the first (cold-cache) check
run is reported separately and left out of the median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="target interpreter (must have nvidia-pytriton)")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from tritondoctor.facts.pytriton import locate
    from tritondoctor.facts.target import probe

    target = probe(args.python, os.environ)
    install = locate(target, os.environ)
    if install is None:
        print(f"{args.python} has no nvidia-pytriton; pass --python of an environment that has it", file=sys.stderr)
        return 2
    ldd = shutil.which("ldd")
    if ldd is None:
        print("ldd not found", file=sys.stderr)
        return 2
    env = dict(os.environ)
    check = [sys.executable, "-m", "tritondoctor", "check", "--python", args.python, "--json"]
    ldd_cmd = [ldd, install.tritonserver]

    cold_env = dict(env, TRITONDOCTOR_CACHE_DIR=os.path.join("/tmp", f"tritondoctor-bench-{os.getpid()}"))
    cold = wall(check, cold_env)
    shutil.rmtree(cold_env["TRITONDOCTOR_CACHE_DIR"], ignore_errors=True)
    wall(check, env)  # warm the on-disk caches the way a second run by the user would

    checks, ldds = [], []
    for _ in range(args.runs):
        checks.append(wall(check, env))
        ldds.append(wall(ldd_cmd, env))
    check_median, ldd_median = statistics.median(checks), statistics.median(ldds)
    print(f"target: {args.python} (Python {target.version_string}, nvidia-pytriton {install.version})")
    print(f"tritondoctor check (whole process, median of {args.runs}): {check_median * 1000:7.1f} ms   budget 500 ms")
    print(f"tritondoctor check, cold caches (first run):         {cold * 1000:7.1f} ms")
    print(f"ldd tritonserver (median of {args.runs}):                  {ldd_median * 1000:7.1f} ms")
    print(f"ratio check / ldd: {check_median / ldd_median:.2f}  (check also probes the interpreter, resolves 3 binaries, "
          f"checks symbol versions, GPU, ports, shm and processes)")
    print(f"verdict: {'within' if check_median <= 0.5 else 'OVER'} the 0.5 s budget")
    return 0 if check_median <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
