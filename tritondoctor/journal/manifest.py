"""The manifest of one journal: what this version writes, and its strict check on read.

A journal is input from disk (anyone who can write the environment can edit it), so on read every
field must have exactly the shape tritondoctor writes: paths relative, normalized, inside the
prefix and outside tritondoctor's own state directory; backups exactly `files/<n>`; modes without
set-id bits. Anything else refuses the whole journal before anything is touched.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tritondoctor.journal.errors import UnsafeState

FORMAT = 1
STATE_DIR = ".tritondoctor"
MANIFEST = "manifest.json"
STATUSES = ("open", "complete", "rollback-failed", "undo-failed")
TOP_KEYS = frozenset({"format", "prefix", "created", "fixes", "command", "status", "entries", "created_dirs"})
ENTRY_KEYS = frozenset({"path", "before", "after", "backup"})
STATE_KEYS = {
    "absent": frozenset({"type"}),
    "file": frozenset({"type", "sha256", "size", "mode", "mtime_ns", "uid", "gid"}),
    "symlink": frozenset({"type", "target", "mtime_ns"}),
    "dir": frozenset({"type", "mode"}),
    "other": frozenset({"type", "mode"}),
}
BACKUP = re.compile(r"files/(0|[1-9][0-9]{0,8})\Z")
SHA256 = re.compile(r"[0-9a-f]{64}\Z")
JOURNAL_NAME = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-([0-9]{1,10})\Z")


class Bad(Exception):
    """Why a manifest is not one this version writes."""


def encode(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def check_rel(rel: Any) -> str:
    """A path as the journal records it: relative, normalized, no `..`, not in the state dir."""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        raise Bad(f"path {rel!r} is not a path")
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Bad(f"path {rel!r} leaves the environment or is not normalized")
    if parts[0] == STATE_DIR:
        raise Bad(f"path {rel!r} is inside tritondoctor's own state directory")
    return rel


def _int(value: Any, what: str, low: int = 0, high: int = 1 << 63) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value < high:
        raise Bad(f"{what} {value!r} is out of range")


def check_state(state: Any, what: str) -> None:
    if not isinstance(state, dict) or state.get("type") not in STATE_KEYS:
        raise Bad(f"{what} is not a path state")
    if set(state) != STATE_KEYS[state["type"]]:
        raise Bad(f"{what} has the fields {sorted(state)}")
    kind = state["type"]
    if kind == "file":
        if not isinstance(state["sha256"], str) or not SHA256.match(state["sha256"]):
            raise Bad(f"{what} has no sha256")
        _int(state["mode"], f"{what} mode", 0, 0o1000)  # never a set-id or sticky bit
        for key in ("size", "uid", "gid"):
            _int(state[key], f"{what} {key}")
        _int(state["mtime_ns"], f"{what} mtime", -(1 << 63))
    elif kind == "symlink":
        target = state["target"]
        if not isinstance(target, str) or not target or "\0" in target:
            raise Bad(f"{what} has no link target")
        _int(state["mtime_ns"], f"{what} mtime", -(1 << 63))
    elif kind in ("dir", "other"):
        _int(state["mode"], f"{what} mode", 0, 1 << 32)


def check_entry(entry: Any, n: int) -> None:
    if not isinstance(entry, dict) or set(entry) != ENTRY_KEYS:
        raise Bad(f"entry {n} has other fields than {sorted(ENTRY_KEYS)}")
    check_rel(entry["path"])
    check_state(entry["before"], f"entry {n} before")
    if entry["before"]["type"] not in ("absent", "file", "symlink"):
        raise Bad(f"entry {n}: a {entry['before']['type']} is never backed up")
    if entry["after"] is not None:
        check_state(entry["after"], f"entry {n} after")
    backup = entry["backup"]
    if entry["before"]["type"] == "file":
        if not isinstance(backup, str) or not BACKUP.match(backup):
            raise Bad(f"entry {n}: backup {backup!r} is not inside the journal")
    elif backup is not None:
        raise Bad(f"entry {n}: a backup for a {entry['before']['type']}")


def check_manifest(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Bad("not an object")
    if data.get("format") != FORMAT:
        raise Bad(f"format {data.get('format')!r} is not {FORMAT}")
    if set(data) != TOP_KEYS:
        raise Bad(f"fields {sorted(data)}")
    if data["status"] not in STATUSES:
        raise Bad(f"status {data['status']!r}")
    if not isinstance(data["prefix"], str) or not isinstance(data["command"], str) \
            or not isinstance(data["created"], str):
        raise Bad("prefix, command and created are not text")
    if not isinstance(data["fixes"], list) or not all(isinstance(f, str) for f in data["fixes"]):
        raise Bad("fixes is not a list of names")
    entries, dirs = data["entries"], data["created_dirs"]
    if not isinstance(entries, list) or not isinstance(dirs, list):
        raise Bad("entries and created_dirs are not lists")
    for n, entry in enumerate(entries):
        check_entry(entry, n)
    for rel in dirs:
        check_rel(rel)
    paths = [e["path"] for e in entries]
    backups = [e["backup"] for e in entries if e["backup"]]
    if len(set(paths)) != len(paths) or len(set(backups)) != len(backups) or len(set(dirs)) != len(dirs):
        raise Bad("a path or backup is named twice")
    return data


def parse(raw: bytes, shown: str) -> dict[str, Any]:
    try:
        return check_manifest(json.loads(raw.decode("utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsafeState(f"{shown}: unreadable journal ({exc}); nothing was undone") from None
    except Bad as exc:
        raise UnsafeState(f"{shown}: not a journal this tritondoctor writes ({exc}); nothing was undone") from None
