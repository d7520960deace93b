"""Start-up of `tritondoctor check --json` as a ratio to a bare `python -c pass`, in one run.

    python bench/bench_startup.py [--python PATH] [--runs N]

Targets (architecture issue): <= 4x with a warm disk cache, <= 8x with a cold one. The two
commands run as fresh processes in pairs (A B A B ...), so machine load hits both alike; the
ratio is taken pair by pair and its median printed. The warm runs use a private cache directory
filled by one run first (what a user's second run finds); the cold runs point
TRITONDOCTOR_CACHE_DIR at a new empty directory each time. Bytecode is written and used as a
pip-installed package has it (PYTHONDONTWRITEBYTECODE is dropped for the runs).

It also prints the floor under those ratios, measured the same way: `python -c "import typer"`
(the command line library the issue asks to keep; any typer command pays it) and, for the cold
cache, that import with pyelftools' ELFFile (the card's ELF reader, needed when nothing is cached)
plus the target interpreter's probe run on its own (a cache miss must start the target Python
once). No version of `check` built on those parts can start faster than the floor. Last, the time
Python spends creating the dataclasses that importing `check`'s modules defines (the frozen
snapshot records), measured inside fresh processes: the largest single cost above the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from tritondoctor.facts.target import probe_script


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


# Run in a fresh process: times dataclasses' class processing (a private function of the
# standard library, fine for a measurement) while the modules `check --json` needs are imported.
DATACLASS_COST = r"""
import dataclasses, time
spent = []
real = dataclasses._process_class
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return real(*args, **kwargs)
    finally:
        spent.append(time.perf_counter() - start)
dataclasses._process_class = timed
import tritondoctor.cli, tritondoctor.commands.check, tritondoctor.snapshot, tritondoctor.checks
import tritondoctor.registry, tritondoctor.render.findings
print(len(spent), sum(spent))
"""


def dataclass_cost(env: dict[str, str], runs: int) -> tuple[int, float]:
    """How many dataclasses importing check's modules creates, and the median seconds spent."""
    counts, seconds = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", DATACLASS_COST], env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        counts.append(int(out[0]))
        seconds.append(float(out[1]))
    return max(counts), statistics.median(seconds)


def paired_ratio(cmd: list[str], bare: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall time of `cmd` and median ratio to `bare`, in pairs."""
    times, ratios = [], []
    for _ in range(runs):
        c = wall(cmd, env)
        ratios.append(c / wall(bare, env))
        times.append(c)
    return statistics.median(times), statistics.median(ratios)


def paired(check: list[str], bare: list[str], env: dict[str, str], runs: int, cold: bool) -> tuple[float, float, float]:
    ratios, checks, bares = [], [], []
    for _ in range(runs):
        run_env = dict(env)
        cache = tempfile.mkdtemp(prefix="tritondoctor-bench-") if cold else None
        if cache:
            run_env["TRITONDOCTOR_CACHE_DIR"] = cache
        c = wall(check, run_env)
        b = wall(bare, env)
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
        checks.append(c)
        bares.append(b)
        ratios.append(c / b)
    return statistics.median(checks), statistics.median(bares), statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="target interpreter (with nvidia-pytriton)")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    check = [sys.executable, "-m", "tritondoctor", "check", "--json", "--python", args.python]
    bare = [sys.executable, "-c", "pass"]
    warm_cache = tempfile.mkdtemp(prefix="tritondoctor-bench-warm-")
    try:
        warm_env = dict(env, TRITONDOCTOR_CACHE_DIR=warm_cache)
        wall(check, warm_env)  # fills the cache and writes the bytecode
        results = {"warm": paired(check, bare, warm_env, args.runs, cold=False),
                   "cold": paired(check, bare, env, args.runs, cold=True)}
    finally:
        shutil.rmtree(warm_cache, ignore_errors=True)
    typer_s, typer_ratio = paired_ratio([sys.executable, "-c", "import typer"], bare, env, args.runs)
    elf_s, elf_ratio = paired_ratio([sys.executable, "-c", "import typer; from elftools.elf.elffile import ELFFile"],
                                    bare, env, args.runs)
    probe_s, probe_ratio = paired_ratio([args.python, "-c", probe_script()], bare, env, args.runs)
    classes, classes_s = dataclass_cost(env, args.runs)
    ok = True
    for label, target in (("warm", 4.0), ("cold", 8.0)):
        check_s, bare_s, ratio = results[label]
        within = ratio <= target
        ok = ok and within
        print(f"{label}: check --json {check_s * 1000:6.1f} ms, python -c pass {bare_s * 1000:5.1f} ms, "
              f"ratio {ratio:4.2f} (median of {args.runs} pairs; target <= {target:.0f}) "
              f"{'within' if within else 'OVER'}")
    print(f"floor: import typer {typer_s * 1000:5.1f} ms (ratio {typer_ratio:4.2f}); with pyelftools "
          f"{elf_s * 1000:5.1f} ms ({elf_ratio:4.2f}); the interpreter probe alone {probe_s * 1000:5.1f} ms "
          f"({probe_ratio:4.2f})")
    print(f"floor: warm >= {typer_ratio:4.2f}, cold >= {elf_ratio + probe_ratio:4.2f} before tritondoctor's own "
          "modules are imported or anything is read")
    bare_s = results["warm"][1]
    print(f"above it: creating the {classes} dataclasses check's modules define takes {classes_s * 1000:5.1f} ms "
          f"(ratio {classes_s / bare_s:4.2f}): warm >= {typer_ratio + classes_s / bare_s:4.2f} with them")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
