"""The loader model with a huge LD_LIBRARY_PATH against ld.so itself, in one run.

    python bench/bench_ldpath.py [--runs N] [--file ELF ...]

For 10, 1,000 and 5,000 LD_LIBRARY_PATH entries (all but every 50th a nonexistent directory,
those real and empty; the libraries themselves come from the cache), reported as the median
of N runs, the two alternating so that machine load hits both alike:
  * model: `resolve` of each file in this process (a new resolution each time, the parsed-ELF
    cache warm and in memory only);
  * ld.so: `LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2 FILE` for each file, one
    process each (process start included).
Then the ratio time(5000) / time(10) of each: the model's should stay close to ld.so's (its
cost linear in the number of entries) rather than grow with the square of it.

The default file is a small gcc-built program needing libz and libm (or, without gcc, this
interpreter); `--file` takes others, e.g. PyTriton's tritonserver.
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
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
RTLD = "/lib64/ld-linux-x86-64.so.2"
COUNTS = (10, 1000, 5000)
REAL_EVERY = 50


def ld_library_path(count: int, scratch: Path) -> str:
    """`count` entries, kept short: ld.so refuses an environment string over 128 KiB."""
    entries = []
    for i in range(count):
        if i % REAL_EVERY == 0:
            real = scratch / f"{count}" / f"{i}"
            real.mkdir(parents=True, exist_ok=True)
            entries.append(str(real))
        else:
            entries.append(f"/nx/{i}")
    return ":".join(entries)


def small_program(scratch: Path) -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        return os.path.realpath(sys.executable)
    source = scratch / "app.c"
    source.write_text("int main(void) { return 0; }\n")
    out = scratch / "app"
    subprocess.run([gcc, "-o", str(out), str(source), "-Wl,--no-as-needed", "-lz", "-lm"], check=True)
    return str(out)


def median_time(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(files: list[str], count: int, scratch: Path, runs: int) -> tuple[float, float]:
    from tritondoctor.loader import LoaderEnv, resolve

    environ = {"LD_LIBRARY_PATH": ld_library_path(count, scratch)}
    env = LoaderEnv.from_system(environ=environ, cwd=str(scratch))
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    child_env.update(environ, LD_TRACE_LOADED_OBJECTS="1")

    def model() -> None:
        for file in files:
            resolve(file, env)

    def ld_so() -> None:
        for file in files:
            subprocess.run([RTLD, file], env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    model()  # fills the in-memory ELF cache
    model_times, ld_so_times = [], []
    for _ in range(runs):
        model_times.append(median_time(model, 1))
        ld_so_times.append(median_time(ld_so, 1))
    return statistics.median(model_times), statistics.median(ld_so_times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--file", action="append", default=[], help="ELF file to resolve (repeatable)")
    args = parser.parse_args()
    if not os.path.exists(RTLD):
        print(f"needs x86-64 glibc's {RTLD}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    import tritondoctor.elf as elf_module

    elf_module._default_cache = elf_module.elf_cache(None)  # in memory: leave the user's cache alone
    with tempfile.TemporaryDirectory(prefix="bench-ldpath-") as tmp:
        scratch = Path(tmp)
        files = args.file or [small_program(scratch)]
        print(f"files: {' '.join(files)}; median of {args.runs} runs")
        print(f"{'entries':>8} {'model s':>10} {'ld.so s':>10} {'model/ld.so':>12}")
        results = {}
        for count in COUNTS:
            model, ld_so = measure(files, count, scratch, args.runs)
            results[count] = (model, ld_so)
            print(f"{count:>8} {model:>10.4f} {ld_so:>10.4f} {model / ld_so:>12.2f}")
    low, high = results[COUNTS[0]], results[COUNTS[-1]]
    print(f"ratio {COUNTS[-1]}/{COUNTS[0]}: model {high[0] / low[0]:.1f}x, ld.so {high[1] / low[1]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
