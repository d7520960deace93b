"""What runs on each Ray node: one `check --json` in a subprocess.

Standard library only: `fleet run` ships this module by value, so a node needs no tritondoctor
to run it (the check itself does need tritondoctor in the node's Python, and says so if not).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any, Dict, List, Optional

STDERR_KEPT = 2000  # characters of the check's stderr sent back


def check_argv(python: Optional[str]) -> List[str]:
    """The check, run by the node's own Python, inspecting that Python's environment by default."""
    return [sys.executable, "-m", "tritondoctor", "check", "--json", "--python", python or sys.executable]


def _this_node() -> Optional[str]:
    """The Ray node this task runs on, as Ray sees it (None outside a Ray worker)."""
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # noqa: BLE001 - not in a Ray worker, or an old Ray: not judged
        return None


def run_check(node_id: str, timeout: float, python: Optional[str], argv: Optional[List[str]] = None) -> Dict[str, Any]:
    """Run the check on this node; returns its output, or why there is none."""
    command = [sys.executable if part == "{python}" else part for part in argv] if argv else check_argv(python)
    environ = dict(os.environ, TRITONDOCTOR_NODE_ID=node_id)
    answer: Dict[str, Any] = {"hostname": socket.gethostname(), "node_id": node_id, "python": sys.executable,
                              "ran_on": _this_node()}
    if answer["ran_on"] not in (None, node_id):
        answer["error"] = f"the task meant for node {node_id} ran on node {answer['ran_on']}"
        return answer
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environ,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        answer["error"] = f"the check did not finish within {timeout:g} s on this node (killed)"
        return answer
    except OSError as exc:
        answer["error"] = f"could not start {command[0]}: {exc.strerror or exc}"
        return answer
    answer.update(returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr[-STDERR_KEPT:])
    return answer
