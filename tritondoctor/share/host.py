"""Which machine a report was taken on: host name, a hash of the machine id, and the node name
a cluster engine gave this process (Slurm, Kubernetes), so reports from many nodes can be told
apart and compared."""

from __future__ import annotations

import os
from typing import Any, Mapping

MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")

# First match wins. SLURM_NODEID is the node's index within the job, SLURMD_NODENAME its name.
# NODE_NAME / MY_NODE_NAME are the usual names for spec.nodeName passed in by the Downward API.
NODE_ID_VARIABLES = ("TRITONDOCTOR_NODE_ID", "SLURMD_NODENAME", "SLURM_NODEID", "NODE_NAME", "MY_NODE_NAME")

SHORT_HASH = 16


def short_hash(text: str, length: int = SHORT_HASH) -> str:
    import hashlib  # only here: check's start-up does not pay for it

    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:length]


def machine_id(files: tuple[str, ...] = MACHINE_ID_FILES) -> str | None:
    """sha256 of the machine id, shortened: stable per machine, and not the id itself (systemd
    asks that the raw id not be exposed to the network)."""
    for path in files:
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                raw = fh.read().strip()
        except OSError:
            continue
        if raw:
            return short_hash(raw)
    return None


def host_name() -> str:
    try:
        return os.uname().nodename  # what socket.gethostname() returns, without importing socket
    except OSError:
        return ""


def node_id(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(node id, the variable it came from), or (None, None) outside any engine."""
    for name in NODE_ID_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value, name
    return None, None


def host_json(environ: Mapping[str, str], files: tuple[str, ...] = MACHINE_ID_FILES) -> dict[str, Any]:
    node, source = node_id(environ)
    return {"name": host_name(), "machine_id": machine_id(files), "node_id": node, "node_id_from": source}
