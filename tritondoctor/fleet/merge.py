"""Merge per-node `check --json` reports: nodes that look the same form one group.

Two nodes look the same when their findings (ids and statuses) and their key resolutions (tool,
Python and nvidia-pytriton versions, which libpython and libstdc++ the loader picks) are equal.
Titles and other evidence are not compared: they carry per-node paths and free space.

A node whose report cannot be read is kept as such (`unreadable`), never dropped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError

# The resolutions compared between nodes, in the order they are shown.
RESOLUTION_KEYS = ("tool_version", "python", "pytriton", "libpython", "libstdcxx")
RESOLUTION_LABELS = {
    "tool_version": "tritondoctor",
    "python": "Python",
    "pytriton": "nvidia-pytriton",
    "libpython": "libpython",
    "libstdcxx": "libstdc++",
}

Signature = Tuple[Tuple[Tuple[str, str], ...], Tuple[Optional[str], ...]]


Finding = Tuple[str, str, str]  # id, status, title


@dataclass
class NodeReport:
    """One node: what its report says that a merge compares, or why there is no report.

    Only this much of a report is kept (not the parsed whole): holding ten thousand parsed reports
    makes the garbage collector walk them all again and again while the next ones are read.
    """

    source: str  # the file it came from, or "ray:<node id>"
    findings: Optional[List[Finding]] = None  # None: no readable report
    resolved: Tuple[Optional[str], ...] = ()  # values of RESOLUTION_KEYS
    error: Optional[str] = None
    host: Optional[str] = None  # a name known without the report: file stem, Ray hostname
    node_id: Optional[str] = None

    @property
    def readable(self) -> bool:
        return self.findings is not None


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def collect_paths(paths: Sequence[str]) -> List[str]:
    """Files as given; directories give their `*.json` files (not recursive), sorted by name."""
    files: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            with os.scandir(path) as entries:
                found = sorted(e.path for e in entries if e.name.endswith(".json") and e.is_file())
            files += found
        elif os.path.exists(path):
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    if not files:
        raise UsageError(f"no *.json reports in {', '.join(paths)}")
    return files


def load_paths(paths: Sequence[str]) -> List[NodeReport]:
    return [read_report(path) for path in collect_paths(paths)]


def _stem(path: str) -> str:
    name = os.path.basename(path)
    return name[:-5] if name.endswith(".json") else name


def read_report(path: str) -> NodeReport:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        return NodeReport(path, error=f"cannot read: {exc.strerror or exc}", host=_stem(path))
    if not raw.strip():
        return NodeReport(path, error="empty file: the check wrote nothing", host=_stem(path))
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return NodeReport(path, error=f"not JSON: {exc}", host=_stem(path))
    return as_node(path, data, host=_stem(path))


def as_node(source: str, data: Any, host: Optional[str] = None, node_id: Optional[str] = None) -> NodeReport:
    """A parsed object as a node: a check report, an error record, or unreadable."""
    node = NodeReport(source, host=host, node_id=node_id)
    if not isinstance(data, dict):
        node.error = f"not a tritondoctor check report (a JSON {type(data).__name__})"
        return node
    known = data.get("host")
    if isinstance(known, dict):
        node.host = known.get("name") or node.host
        node.node_id = known.get("node_id") or node.node_id
    findings = _findings(data.get("findings"))
    if findings is not None:
        node.findings = findings
        resolved = resolutions(data)
        node.resolved = tuple(resolved[k] for k in RESOLUTION_KEYS)
    elif isinstance(data.get("error"), str):  # a record a collector wrote for a node without a report
        node.error = data["error"]
    else:
        node.error = "not a tritondoctor check report (no findings list)"
    return node


def _findings(items: Any) -> Optional[List[Finding]]:
    """(id, status, title) of each finding; None unless every one has a string id and status."""
    if not isinstance(items, list):
        return None
    try:
        found = [(f["id"], f["status"], f.get("title") or "") for f in items]
        if found:
            ids, statuses, _ = zip(*found)
            "".join(ids + statuses)  # a TypeError unless all are strings; at C speed, 10,000 reports matter
    except (TypeError, KeyError, AttributeError):
        return None
    return found


# ---------------------------------------------------------------------------------------------
# What a node looks like
# ---------------------------------------------------------------------------------------------


def _evidence(findings: List[Dict[str, Any]], check_id: str) -> List[Dict[str, Any]]:
    return [f["evidence"] for f in findings if f["id"] == check_id and isinstance(f.get("evidence"), dict)]


def _libpython(findings: List[Dict[str, Any]]) -> Optional[str]:
    for evidence in _evidence(findings, "libpython"):
        if evidence.get("resolved"):
            version = evidence.get("resolved_version")
            return f"{evidence['resolved']} ({version})" if version else str(evidence["resolved"])
        if evidence.get("needed"):
            return f"{evidence['needed']} not found"
    return None


def _libstdcxx(findings: List[Dict[str, Any]]) -> Optional[str]:
    seen: List[str] = []
    for evidence in _evidence(findings, "glibcxx"):
        paths, missing_versions = evidence.get("libstdcxx"), evidence.get("missing")
        seen += [str(path) for path in paths] if isinstance(paths, list) else []
        if evidence.get("provider"):
            missing = ", ".join(str(v) for v in missing_versions) if isinstance(missing_versions, list) else ""
            seen.append(f"{evidence['provider']} lacks {missing}" if missing else str(evidence["provider"]))
    return "; ".join(sorted(set(seen))) if seen else None


def resolutions(report: Dict[str, Any]) -> Dict[str, Optional[str]]:
    target = _mapping(report.get("target"))
    install = _mapping(target.get("pytriton_install"))
    findings = [f for f in report["findings"] if f["id"] in ("libpython", "glibcxx")]
    return {
        "tool_version": _text(report.get("tool_version")),
        "python": _text(target.get("version")),
        "pytriton": _text(target.get("pytriton") or install.get("version")),
        "libpython": _libpython(findings),
        "libstdcxx": _libstdcxx(findings),
    }


def _mapping(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> Optional[str]:
    """A string to compare (and hash): other JSON values, from a damaged report, as JSON text."""
    return value if value is None or isinstance(value, str) else json.dumps(value, sort_keys=True)


def signature(node: NodeReport) -> Signature:
    return tuple(sorted((f[0], f[1]) for f in node.findings or ())), node.resolved


def _statuses(findings: Iterable[Tuple[str, str]]) -> Dict[str, str]:
    """id -> its statuses ("ok", or "ok+warn" where one check gave several findings)."""
    by_id: Dict[str, List[str]] = {}
    for check_id, status in findings:
        by_id.setdefault(check_id, []).append(status)
    return {k: "+".join(v) for k, v in by_id.items()}


# ---------------------------------------------------------------------------------------------
# Merging
# ---------------------------------------------------------------------------------------------


def labels(nodes: Sequence[NodeReport]) -> List[str]:
    """A name per node: its host name, made unique with the node id (or source) where shared."""
    names = [n.host or n.node_id or n.source for n in nodes]
    counts: Dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    out = []
    for node, name in zip(nodes, names):
        if counts[name] > 1:
            name = f"{name}/{node.node_id[:12]}" if node.node_id and node.node_id != name else f"{name} ({node.source})"
        out.append(name)
    return out


def merge(nodes: Sequence[NodeReport]) -> Dict[str, Any]:
    """The fleet summary (`fleet merge --json`): groups, largest first, and the unreadable."""
    names = labels(nodes)
    members: Dict[Signature, List[int]] = {}
    unreadable = []
    for index, node in enumerate(nodes):
        if not node.readable:
            unreadable.append({"host": names[index], "node_id": node.node_id, "source": node.source, "error": node.error})
        else:
            members.setdefault(signature(node), []).append(index)
    ordered = sorted(members.items(), key=lambda item: (-len(item[1]), names[item[1][0]]))
    groups = [_group(nodes, names, sig, indices) for sig, indices in ordered]
    if groups:
        for group, (sig, _) in zip(groups[1:], ordered[1:]):
            group["differs_from_largest"] = _differences(sig, ordered[0][0])
    with_errors = sum(g["size"] for g in groups if g["summary"]["errors"])
    status = EXIT_USAGE if unreadable else EXIT_PROBLEMS if with_errors else EXIT_OK
    return {
        "nodes": len(nodes),
        "readable": len(nodes) - len(unreadable),
        "nodes_with_errors": with_errors,
        "unreadable": unreadable,
        "groups": groups,
        "exit_status": status,
    }


def _group(nodes: Sequence[NodeReport], names: List[str], sig: Signature, indices: List[int]) -> Dict[str, Any]:
    example = nodes[indices[0]].findings or []
    findings = [{"id": check_id, "status": status, "title": title} for check_id, status, title in example]
    return {
        "size": len(indices),
        "hosts": [names[i] for i in indices],
        "node_ids": [nodes[i].node_id for i in indices],
        "sources": [nodes[i].source for i in indices],
        "findings": findings,  # titles are the first host's: they may name its own paths
        "resolutions": dict(zip(RESOLUTION_KEYS, sig[1])),
        "summary": {
            "errors": sum(status == "error" for _, status in sig[0]),
            "warnings": sum(status == "warn" for _, status in sig[0]),
        },
    }


def _differences(sig: Signature, largest: Signature) -> Dict[str, Any]:
    ours, theirs = _statuses(sig[0]), _statuses(largest[0])
    findings = {
        check_id: {"this": ours.get(check_id, "absent"), "largest": theirs.get(check_id, "absent")}
        for check_id in sorted(set(ours) | set(theirs))
        if ours.get(check_id) != theirs.get(check_id)
    }
    resolved = {
        key: {"this": mine, "largest": other}
        for key, mine, other in zip(RESOLUTION_KEYS, sig[1], largest[1])
        if mine != other
    }
    return {"findings": findings, "resolutions": resolved}
