"""The Slurm and Kubernetes recipes in contrib/: the sbatch script run under a fake `srun` that
does what srun does for one task per node (runs the step once per node with SLURMD_NODENAME and
SLURM_NODEID set), the manifests validated against the Kubernetes schema, and the log collector
run against a fake `kubectl`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
SBATCH = ROOT / "contrib" / "slurm" / "tritondoctor-fleet.sbatch"
K8S = ROOT / "contrib" / "k8s"

FAKE_SRUN = """#!/bin/bash
# srun inside an allocation, one task per node: skip srun's options, run the step once per node.
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
i=0; pids=()
for node in $FAKE_NODES; do
    case " ${FAKE_SRUN_SKIP:-} " in *" $node "*) i=$((i + 1)); continue;; esac
    SLURMD_NODENAME=$node SLURM_NODEID=$i SLURM_PROCID=$i SLURM_LOCALID=0 "$@" & pids+=($!)
    i=$((i + 1))
done
rc=0; for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done; exit $rc
"""

FAKE_SCONTROL = """#!/bin/sh
[ "$1 $2" = "show hostnames" ] && for node in $FAKE_NODES; do echo "$node"; done
"""


def shim(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)


def run_sbatch(tmp_path: Path, nodes: List[str], skip: str = "") -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim(bin_dir, "srun", FAKE_SRUN)
    shim(bin_dir, "scontrol", FAKE_SCONTROL)
    env = {
        **os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_NODES": " ".join(nodes), "FAKE_SRUN_SKIP": skip,
        "SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": str(len(nodes)), "SLURM_JOB_NODELIST": ",".join(nodes),
        "SLURM_SUBMIT_DIR": str(tmp_path), "TRITONDOCTOR_PYTHON": sys.executable,
    }
    return subprocess.run(["bash", str(SBATCH)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_sbatch_one_report_per_node_then_merge(tmp_path: Path) -> None:
    proc = run_sbatch(tmp_path, ["gpu01", "gpu02", "gpu03"])
    out = tmp_path / "tritondoctor-fleet-4242"
    assert sorted(p.name for p in out.glob("*.json")) == ["gpu01.json", "gpu02.json", "gpu03.json"], proc.stderr
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert [r["host"]["node_id"] for r in reports] == ["gpu01", "gpu02", "gpu03"]  # SLURMD_NODENAME
    assert all(r["target"]["python"] == sys.executable for r in reports)
    assert "3 nodes in 1 group" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == (1 if any(f["status"] == "error" for f in reports[0]["findings"]) else 0)


def test_sbatch_a_node_without_a_step_is_reported(tmp_path: Path) -> None:
    proc = run_sbatch(tmp_path, ["gpu01", "gpu02", "gpu03"], skip="gpu02")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "1 could not be read" in proc.stdout
    assert "no report: the srun step did not run on gpu02" in proc.stdout


def manifests() -> List[Dict[str, Any]]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_manifests_are_valid_kubernetes() -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (it is in the test extra)")
    docs = manifests()
    assert {d["kind"] for d in docs} == {"DaemonSet", "Job"}
    for doc in docs:
        # strict: unknown fields (a typo such as `valueFrm`) are errors too
        kubernetes_validate.validate(doc, kubernetes_validate.utils.latest_version(), strict=True)


def test_manifests_run_the_check_with_the_node_name() -> None:
    for doc in manifests():
        spec = doc["spec"]["template"]["spec"]
        containers = spec.get("initContainers", []) + spec["containers"]
        check = next(c for c in containers if any("tritondoctor check --json" in a for a in c.get("args", [])))
        env = {e["name"]: e for e in check["env"]}
        assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


FAKE_KUBECTL = """#!/bin/sh
case "$1" in
  get) printf 'tritondoctor-a node-a\\ntritondoctor-b node-b\\ntritondoctor-c \\n' ;;
  logs) [ "$2" = tritondoctor-b ] && { echo "error: container report is waiting to start" >&2; exit 1; }
        cat "$FAKE_LOGS/$2.json" ;;
esac
"""


def test_k8s_collect_then_merge(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    report = subprocess.run([sys.executable, "-m", "tritondoctor", "check", "--json", "--python", sys.executable],
                            capture_output=True, text=True, env={**os.environ, "NODE_NAME": "node-a"}, timeout=120)
    (logs / "tritondoctor-a.json").write_text(report.stdout)
    shim(tmp_path, "kubectl", FAKE_KUBECTL)
    fleet = tmp_path / "fleet"
    env = {**os.environ, "KUBECTL": str(tmp_path / "kubectl"), "FAKE_LOGS": str(logs)}
    collect = subprocess.run(["sh", str(K8S / "collect.sh"), "app.kubernetes.io/name=tritondoctor", "report", str(fleet)],
                             capture_output=True, text=True, env=env, timeout=60)
    assert collect.returncode == 0, collect.stderr
    merged = subprocess.run([sys.executable, "-m", "tritondoctor", "fleet", "merge", "--json", str(fleet)],
                            capture_output=True, text=True, timeout=60)
    summary = json.loads(merged.stdout)
    assert merged.returncode == 2 and summary["nodes"] == 3 and summary["readable"] == 1
    assert summary["groups"][0]["node_ids"] == ["node-a"]
    errors = {u["host"]: u["error"] for u in summary["unreadable"]}
    assert errors == {"node-b": "no log from pod tritondoctor-b: error: container report is waiting to start",
                      "tritondoctor-c": "pod tritondoctor-c is not scheduled on any node"}
