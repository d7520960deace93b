"""`tritondoctor fleet run --ray` on a real local Ray cluster: a head and two worker nodes.

Everything binds to loopback: the cluster's nodes are given 127.0.0.1, and the driver (the
command under test, a subprocess) gets RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which makes Ray use
the loopback address for itself instead of the machine's first interface.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, Iterator, List

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install 'tritondoctor[ray]'): fleet run --ray is not tested")

from ray.cluster_utils import Cluster  # noqa: E402

NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 * 2**20, "node_ip_address": "127.0.0.1"}
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    saved = {k: os.environ.get(k) for k in LOOPBACK_ENV}
    os.environ.update(LOOPBACK_ENV)
    ray_cluster = Cluster(initialize_head=True, head_node_args={**NODE_ARGS, "include_dashboard": False})
    try:
        for _ in range(2):
            ray_cluster.add_node(**NODE_ARGS)
        ray_cluster.wait_for_nodes()
        yield ray_cluster
    finally:
        ray_cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def node_ids(cluster: Cluster) -> set:
    return {n.node_id for n in cluster.list_all_nodes()}


def run(args: List[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **LOOPBACK_ENV})


def test_no_cluster_to_find_names_this_commands_address_argument(tmp_path: Any) -> None:
    """`auto` finds no cluster (Ray looks under its temp directory, empty here, and for a running
    gcs_server): the hint names this command's ADDRESS argument and RAY_ADDRESS, not the
    --address flag of Ray's own CLI. Placed before the tests that start the module's cluster."""
    import psutil

    if any(p.info["name"] == "gcs_server" for p in psutil.process_iter(["name"])):
        pytest.skip("a Ray cluster is running on this machine: `auto` would find it")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-m", "tritondoctor", "fleet", "run", "--ray"], capture_output=True,
                          text=True, timeout=60, env={**env, **LOOPBACK_ENV, "RAY_TMPDIR": str(tmp_path)})
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        "tritondoctor: error: no running Ray cluster found from this machine: give its address "
        "(tritondoctor fleet run --ray HOST:PORT) or set RAY_ADDRESS"], proc.stderr


def test_one_check_per_node_pinned_there(cluster: Cluster) -> None:
    proc = run(["-m", "tritondoctor", "fleet", "run", "--ray", cluster.address, "--json", "--timeout", "120"])
    assert "Traceback" not in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["nodes"] == 3 and summary["readable"] == 3, summary["unreadable"]
    seen = [i for group in summary["groups"] for i in group["node_ids"]]
    assert sorted(seen) == sorted(node_ids(cluster))  # one each, and the id is the Ray node's
    assert proc.returncode == summary["exit_status"] == (1 if summary["nodes_with_errors"] else 0)
    # Same machine, same env: one group, hosts told apart by node id.
    assert len(summary["groups"]) == 1 and len(set(summary["groups"][0]["hosts"])) == 3


HANG_ON_ONE = """
import json, os, sys, time
if os.environ["TRITONDOCTOR_NODE_ID"] == sys.argv[1]:
    time.sleep(120)
print(json.dumps({"tool_version": "0", "target": {}, "findings": [{"id": "platform", "status": "ok", "title": ""}]}))
"""

COLLECT = """
import json, sys
from tritondoctor.fleet.merge import merge
from tritondoctor.fleet.ray_run import run_fleet
nodes = run_fleet(sys.argv[1], None, 3.0, argv=["{python}", "-c", sys.argv[2], sys.argv[3]])
print(json.dumps({"merged": merge(nodes), "errors": {n.node_id: n.error for n in nodes}}))
"""


def test_a_node_that_does_not_answer_is_reported(cluster: Cluster) -> None:
    slow = sorted(node_ids(cluster))[0]
    proc = run(["-c", COLLECT, cluster.address, HANG_ON_ONE, slow])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: Dict[str, Any] = json.loads(proc.stdout)
    merged = result["merged"]
    assert merged["nodes"] == 3 and merged["readable"] == 2 and merged["exit_status"] == 2
    assert [u["node_id"] for u in merged["unreadable"]] == [slow]
    assert "did not finish within 3 s" in result["errors"][slow]
    assert sorted(merged["groups"][0]["node_ids"]) == sorted(node_ids(cluster) - {slow})


def test_python_option_is_passed_to_each_node(cluster: Cluster, tmp_path: Any) -> None:
    missing = str(tmp_path / "no-such-python")
    proc = run(["-m", "tritondoctor", "fleet", "run", "--ray", cluster.address, "--json", "--python", missing])
    summary = json.loads(proc.stdout)
    assert proc.returncode == 2 and summary["readable"] == 0 and len(summary["unreadable"]) == 3
    assert all(missing in u["error"] for u in summary["unreadable"]), summary["unreadable"]


def test_an_address_where_nothing_listens_is_one_line_at_once() -> None:
    """Ray itself retries such an address for minutes; tritondoctor says so before calling it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        proc = run(["-m", "tritondoctor", "fleet", "run", "--ray", address], timeout=60)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert proc.stderr.splitlines() == [
            f"tritondoctor: error: cannot connect to a Ray cluster at {address}: connection refused"]

