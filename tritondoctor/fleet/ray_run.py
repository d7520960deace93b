"""`fleet run --ray`: one `check --json` on every alive node of a Ray cluster.

Each check is a Ray task pinned to its node (NodeAffinitySchedulingStrategy, soft=False: it runs
there or not at all) that asks for no CPU, so a busy cluster still answers. A node that does not
answer in time, or whose task fails, is reported as such.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

from tritondoctor.errors import UsageError
from tritondoctor.fleet.merge import NodeReport, as_node

INSTALL_HINT = "fleet run --ray needs Ray: pip install 'tritondoctor[ray]'"
# Beyond --timeout, for the task to be scheduled and a worker process to start on the node.
GRACE_S = 10.0
# Ray retries an address where nothing answers for minutes before it gives up; a GCS or Ray client
# server that is up accepts a TCP connection at once.
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _host_port(address: str) -> Optional[Tuple[str, int]]:
    """(host, port) of an explicit `host:port` or `ray://host:port` address; None for the forms
    Ray resolves itself (auto, local) or cannot parse (it says why)."""
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def unreachable(address: str) -> Optional[str]:
    """Why nothing at `address` accepts a connection; None when something does, or for addresses
    that are not host:port."""
    import socket

    endpoint = _host_port(address)
    if endpoint is None:
        return None
    try:
        socket.create_connection(endpoint, timeout=CONNECT_TIMEOUT_S).close()
    except socket.timeout:
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    return None


def connect(ray: Any, address: Optional[str]) -> None:
    target = address or os.environ.get("RAY_ADDRESS") or "auto"
    why = unreachable(target)
    if why:
        raise UsageError(f"cannot connect to a Ray cluster at {target}: {why}")
    try:
        ray.init(address=target, logging_level=logging.ERROR, log_to_driver=False)
    except ConnectionError as exc:
        if target != "auto":
            raise UsageError(f"cannot connect to a Ray cluster at {target}: {_first_line(exc)}") from None
        # Ray's own words name its CLI's --address flag, which this command does not have.
        raise UsageError("no running Ray cluster found from this machine: give its address "
                         "(tritondoctor fleet run --ray HOST:PORT) or set RAY_ADDRESS") from None
    except Exception as exc:  # noqa: BLE001 - Ray raises RuntimeError, ValueError...
        raise UsageError(f"cannot connect to a Ray cluster at {target}: {_first_line(exc)}") from None


def alive_nodes(ray: Any) -> List[Dict[str, Any]]:
    return sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: (n.get("NodeManagerHostname", ""), n["NodeID"]))


def run_fleet(address: Optional[str], python: Optional[str], timeout: float,
              argv: Optional[List[str]] = None) -> List[NodeReport]:
    """Connect, run one check per alive node, disconnect. `argv` replaces the check (tests)."""
    ray = import_ray()
    connect(ray, address)
    try:
        return collect(ray, alive_nodes(ray), python, timeout, argv)
    finally:
        ray.shutdown()


def collect(ray: Any, nodes: List[Dict[str, Any]], python: Optional[str], timeout: float,
            argv: Optional[List[str]] = None) -> List[NodeReport]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from tritondoctor.fleet import ray_task

    ray.cloudpickle.register_pickle_by_value(ray_task)
    remote = ray.remote(ray_task.run_check)
    refs = [
        remote.options(
            num_cpus=0, max_retries=0, name=f"tritondoctor-check-{node['NodeID'][:12]}",
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False),
        ).remote(node["NodeID"], timeout, python, argv)
        for node in nodes
    ]
    waited = timeout + GRACE_S
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=waited) if refs else ([], [])
    answered = set(ready)
    reports = []
    for node, ref in zip(nodes, refs):
        if ref in answered:
            reports.append(_answer(ray, node, ref))
        else:
            _cancel(ray, ref)
            reports.append(_unanswered(node, f"no answer within {waited:g} s (--timeout {timeout:g} s + {GRACE_S:g} s "
                                             "to schedule and start a worker)"))
    return reports


def _cancel(ray: Any, ref: Any) -> None:
    try:
        ray.cancel(ref, force=True)
    except Exception:  # noqa: BLE001 - the task may be finishing or its node gone: nothing to stop
        pass


def _unanswered(node: Dict[str, Any], error: str) -> NodeReport:
    return NodeReport(f"ray:{node['NodeID']}", error=error, host=node.get("NodeManagerHostname"), node_id=node["NodeID"])


def _answer(ray: Any, node: Dict[str, Any], ref: Any) -> NodeReport:
    try:
        answer = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - the node died, the task could not be scheduled...
        return _unanswered(node, f"the Ray task failed: {_first_line(exc)}")
    return node_from_answer(node, answer)


def node_from_answer(node: Dict[str, Any], answer: Dict[str, Any]) -> NodeReport:
    node_id = node["NodeID"]
    host = answer.get("hostname") or node.get("NodeManagerHostname")
    source = f"ray:{node_id}"
    if answer.get("error"):
        return NodeReport(source, error=answer["error"], host=host, node_id=node_id)
    try:
        data = json.loads(answer.get("stdout") or "")
    except ValueError:
        stderr = (answer.get("stderr") or "").strip().splitlines()
        why = stderr[-1] if stderr else "no output"
        return NodeReport(source, error=f"the check exited with status {answer.get('returncode')} and printed no "
                                        f"report ({answer.get('python')}): {why}", host=host, node_id=node_id)
    if isinstance(data, dict):
        _stamp_host(data, host, node_id)
    return as_node(source, data, host=host, node_id=node_id)


def _stamp_host(report: Dict[str, Any], host: Optional[str], node_id: str) -> None:
    """Where the check's own report lacks them (older tritondoctor), the Ray node id and host name."""
    known = report.get("host")
    if not isinstance(known, dict):
        known = report["host"] = {}
    if not known.get("node_id"):
        known["node_id"] = node_id
    if not known.get("name") and host:
        known["name"] = host
