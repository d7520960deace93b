"""Wall time of `tritondoctor smoke` against a bare PyTriton script doing bind / serve / one infer.

Both run in the same target interpreter and environment, alternating, in the same process run:
    python bench/bench_smoke.py [--python PATH] [--repeat 3] [--no-libdir]

By default the target's LIBDIR is put first on LD_LIBRARY_PATH so that both can pass on a host
with the libpython mismatch. Prints each wall time, the medians and smoke/bare (target <= 1.2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from tritondoctor.smoke import run_smoke
from tritondoctor.smoke.procs import free_ports

BARE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pytriton.client import ModelClient
    from pytriton.decorators import batch
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    http, grpc, metrics = (int(p) for p in sys.argv[1:4])
    weight = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)

    @batch
    def infer(x):
        return {"y": x @ weight.T}

    config = TritonConfig(http_address="127.0.0.1", http_port=http, grpc_address="127.0.0.1", grpc_port=grpc,
                          metrics_address="127.0.0.1", metrics_port=metrics)
    with Triton(config=config) as triton:
        triton.bind(model_name="bare", infer_func=infer,
                    inputs=[Tensor(name="x", dtype=np.float32, shape=(8,))],
                    outputs=[Tensor(name="y", dtype=np.float32, shape=(4,))],
                    config=ModelConfig(max_batch_size=16))
        x = np.ones((2, 8), np.float32)
        with ModelClient(f"http://127.0.0.1:{http}", "bare") as client:
            y = client.infer_batch(x=x)["y"]
        assert np.allclose(y, x @ weight.T, atol=1e-5)
    print("bare ok")
    """
)


def target_libdir(python: str) -> str:
    code = "import sysconfig; print(sysconfig.get_config_var('LIBDIR') or '')"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def time_bare(python: str, env: dict[str, str], script: str) -> float:
    home = tempfile.mkdtemp(prefix="tdbench-")
    try:
        started = time.monotonic()
        proc = subprocess.run([python, script, *map(str, free_ports(3))], env={**env, "PYTRITON_HOME": home},
                              capture_output=True, text=True, timeout=300)
        elapsed = time.monotonic() - started
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0 or "bare ok" not in proc.stdout:
        raise SystemExit(f"the bare PyTriton script failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def time_smoke(python: str, env: dict[str, str]) -> tuple[float, object]:
    started = time.monotonic()
    result = run_smoke(python, env, timeout=120)
    elapsed = time.monotonic() - started
    if not result.passed:
        titles = "; ".join(f.title for f in result.findings if f.status.value == "error")
        raise SystemExit(f"the smoke test failed: {titles} (log: {result.log_path})")
    return elapsed, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="target interpreter with nvidia-pytriton")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-libdir", action="store_true", help="do not put the target's LIBDIR on LD_LIBRARY_PATH")
    args = parser.parse_args()

    env = dict(os.environ)
    if not args.no_libdir:
        libdir = target_libdir(args.python)
        if libdir:
            env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    with tempfile.TemporaryDirectory(prefix="tdbench-") as scratch:
        script = os.path.join(scratch, "bare_pytriton.py")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(BARE)
        time_bare(args.python, env, script)  # warm the page cache and .pyc files for both
        bare, smoke = [], []
        last = None
        for i in range(args.repeat):
            bare.append(time_bare(args.python, env, script))
            elapsed, last = time_smoke(args.python, env)
            smoke.append(elapsed)
            print(f"run {i + 1}: bare {bare[-1]:.2f} s   smoke {smoke[-1]:.2f} s", flush=True)
    b, s = statistics.median(bare), statistics.median(smoke)
    t = last.timings  # type: ignore[attr-defined]
    print(f"median: bare {b:.2f} s   smoke {s:.2f} s   ratio smoke/bare {s / b:.2f} (target <= 1.2)")
    print(f"last smoke: server ready {t.server_ready_s} s, model ready {t.model_ready_s} s, first HTTP infer "
          f"{t.first_infer_s} s, gRPC {t.grpc_first_infer_s} s, burst p50 {t.p50_ms} ms p99 {t.p99_ms} ms "
          f"{t.throughput_rps} req/s, stop {t.stop_s} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
