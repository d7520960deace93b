"""`check --model-repository` against `check` alone: a repository of 100 Python-backend models
sharing one packed execution environment.

    python bench/bench_model_repository.py [--python PATH] [--models N] [--runs N]

`check` runs as a fresh process; the repository part (gather_repositories + the check) is timed
inside a fresh process too, excluding interpreter start-up, until the CLI carries the option.
Prints both medians and (check + repository) / check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

_CHILD = r"""
import json, os, sys, time
start = time.perf_counter()
from tritondoctor.checks.model_repository import run_repositories
from tritondoctor.facts.target import probe
from tritondoctor.repository import gather_repositories
target = probe(sys.argv[1], os.environ)
facts = gather_repositories([sys.argv[2]], target, os.environ, None)
findings = run_repositories(facts)
print(json.dumps({"seconds": time.perf_counter() - start, "findings": len(findings),
                  "errors": sum(f.status.value == "error" for f in findings)}))
"""


def build_repository(root: Path, models: int) -> Path:
    from repo_fixtures import env_prefix, have_pyenv, pack, write_model

    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not have_pyenv(minor):
        raise SystemExit(f"needs pyenv's shared build of Python {minor} for the environment")
    archive = pack(env_prefix(root / "env", minor), root / "env.tar.gz")
    repo = root / "repo"
    for i in range(models):
        write_model(repo, f"model_{i:03d}", env=str(archive), model_py="import os\nimport json\n")
    return repo


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def repository_seconds(python: str, repo: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _CHILD, python, str(repo)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="target interpreter (with nvidia-pytriton)")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tritondoctor-bench-repo-") as tmp:
        repo = build_repository(Path(tmp), args.models)
        check = [sys.executable, "-m", "tritondoctor", "check", "--python", args.python, "--json"]
        wall(check)  # warm the on-disk caches
        repository_seconds(args.python, repo)
        checks, repos = [], []
        for _ in range(args.runs):
            checks.append(wall(check))
            result = repository_seconds(args.python, repo)
            repos.append(result["seconds"])
    check_median, repo_median = statistics.median(checks), statistics.median(repos)
    print(f"models: {args.models} sharing one packed environment; findings: {result['findings']} "
          f"({result['errors']} errors)")
    print(f"check alone:                 median {check_median:.3f} s over {args.runs} runs")
    print(f"model repository part:       median {repo_median:.3f} s")
    print(f"check --model-repository / check: {(check_median + repo_median) / check_median:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
