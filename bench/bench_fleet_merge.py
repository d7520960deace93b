"""`fleet merge` of 10,000 node reports against plain `json.load` of the same files, in one run.

    python bench/bench_fleet_merge.py [--python PATH] [--nodes N] [--runs R]

Target (issue "Beyond one shell", item 4): 10,000 node files merged in a few seconds. One real
`check --json` (of --python, default this interpreter's environment) is varied into N files in a
temporary directory: host names and ids, free space, and a few per cent of nodes with another
libstdc++ (GLIBCXX misses), Python, nvidia-pytriton, a GPU and port warnings, plus one truncated
and one empty file. The baseline reads every file with json.load; the merge reads, groups and
renders. Both run R times, alternately; the best of each is compared.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List


def real_report(python: str) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "tritondoctor", "check", "--json", "--python", python]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"check --json failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def _finding(report: Dict[str, Any], check_id: str) -> Dict[str, Any]:
    for finding in report["findings"]:
        if finding["id"] == check_id:
            return finding
    finding = {"id": check_id, "status": "ok", "title": check_id, "detail": "", "evidence": {}, "fix": None}
    report["findings"].append(finding)
    return finding


def _old_libstdcxx(report: Dict[str, Any], rng: random.Random) -> None:
    finding = _finding(report, "glibcxx")
    provider = f"/opt/conda/envs/serve{rng.randint(1, 3)}/lib/libstdc++.so.6"
    finding.update(status="error", title=f"{provider} lacks GLIBCXX_3.4.30, CXXABI_1.3.13",
                   evidence={"provider": provider, "missing": ["CXXABI_1.3.13", "GLIBCXX_3.4.30"],
                             "required_by": ["tritonserver"], "how": "LD_LIBRARY_PATH", "min_gcc": "12"})


def _other_python(report: Dict[str, Any], rng: random.Random) -> None:
    report["target"]["version"] = "3.11.9"
    evidence = _finding(report, "libpython")["evidence"]
    evidence["resolved_version"] = "3.11.9"


def _other_pytriton(report: Dict[str, Any], rng: random.Random) -> None:
    report["target"]["pytriton"] = "0.6.0"


def _gpu_ok(report: Dict[str, Any], rng: random.Random) -> None:
    _finding(report, "gpus").update(status="ok", title=f"{rng.choice([1, 2, 4, 8])} x NVIDIA H100 80GB HBM3")


def _port_busy(report: Dict[str, Any], rng: random.Random) -> None:
    _finding(report, "ports").update(status="warn", title="port 8000 is in use by another process")


VARIATIONS: List[tuple[float, Callable[[Dict[str, Any], random.Random], None]]] = [
    (0.02, _old_libstdcxx), (0.01, _other_python), (0.005, _other_pytriton), (0.9, _gpu_ok), (0.03, _port_busy),
]


def node_report(base: Dict[str, Any], index: int, rng: random.Random) -> Dict[str, Any]:
    report = copy.deepcopy(base)
    report["host"] = {"name": f"gpu-{index:05d}", "machine_id": f"{rng.getrandbits(128):032x}",
                      "node_id": f"{rng.getrandbits(224):056x}"}
    for finding in report["findings"]:
        if finding["id"] in ("workspace", "shm"):
            finding["title"] = f"{finding['title']} ({rng.uniform(1, 900):.1f} GiB free)"
    for share, vary in VARIATIONS:
        if rng.random() < share:
            vary(report, rng)
    return report


def write_fleet(base: Dict[str, Any], directory: str, nodes: int) -> None:
    rng = random.Random(20240501)
    for index in range(nodes - 2):
        with open(os.path.join(directory, f"gpu-{index:05d}.json"), "w") as fh:
            json.dump(node_report(base, index, rng), fh, indent=2)
    text = json.dumps(base, indent=2)
    with open(os.path.join(directory, f"gpu-{nodes - 2:05d}.json"), "w") as fh:
        fh.write(text[: len(text) // 2])  # a node whose check was killed mid-write
    open(os.path.join(directory, f"gpu-{nodes - 1:05d}.json"), "w").close()


def read_all(directory: str) -> int:
    count = 0
    for name in sorted(os.listdir(directory)):
        try:
            with open(os.path.join(directory, name)) as fh:
                json.load(fh)
        except ValueError:
            pass
        count += 1
    return count


def merge_all(directory: str) -> Dict[str, Any]:
    from rich.console import Console

    from tritondoctor.fleet.merge import load_paths, merge
    from tritondoctor.fleet.render import render_fleet

    summary = merge(load_paths([directory]))
    render_fleet(Console(file=io.StringIO(), width=120), summary)
    return summary


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="target interpreter of the one real check")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

    base = real_report(args.python)
    with tempfile.TemporaryDirectory(prefix="tritondoctor-fleet-bench-") as directory:
        write_fleet(base, directory, args.nodes)
        size = sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory))
        read_all(directory)  # warm the page cache for both
        load, merged = [], []
        for _ in range(args.runs):
            load.append(timed(lambda: read_all(directory)))
            merged.append(timed(lambda: merge_all(directory)))
        summary = merge_all(directory)
    print(f"{args.nodes} node files, {size / 2**20:.0f} MiB: {len(summary['groups'])} groups, "
          f"{len(summary['unreadable'])} unreadable, {summary['nodes_with_errors']} nodes with errors")
    print(f"json.load of every file: {min(load):.2f} s (best of {args.runs})")
    print(f"fleet merge (read, group, render): {min(merged):.2f} s (best of {args.runs})")
    print(f"ratio merge / json.load: {min(merged) / min(load):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
