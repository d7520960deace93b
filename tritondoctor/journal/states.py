"""What a path holds: absent, a file (sha256, mode, mtime, owner), a symlink (target) or a dir."""

from __future__ import annotations

import os
import stat
from typing import Any

from tritondoctor.journal.safefs import UnsafeState, lstat_at, read_at, walk_to_parent
from tritondoctor.plan import sha256_bytes

State = dict[str, Any]


def _state(st: os.stat_result | None, read: Any) -> State:
    if st is None:
        return {"type": "absent"}
    if stat.S_ISLNK(st.st_mode):
        return {"type": "symlink", "target": read("link"), "mtime_ns": st.st_mtime_ns}
    if stat.S_ISDIR(st.st_mode):
        return {"type": "dir", "mode": stat.S_IMODE(st.st_mode)}
    if not stat.S_ISREG(st.st_mode):
        return {"type": "other", "mode": st.st_mode}
    data = read("file")
    return {"type": "file", "sha256": sha256_bytes(data), "size": len(data), "mode": stat.S_IMODE(st.st_mode),
            "mtime_ns": st.st_mtime_ns, "uid": st.st_uid, "gid": st.st_gid}


def path_state(path: str) -> State:
    """What is at `path` now (its last component is not followed)."""
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None

    def read(kind: str) -> Any:
        if kind == "link":
            return os.readlink(path)
        with open(path, "rb") as fh:
            return fh.read()

    return _state(st, read)


def state_at(dir_fd: int, name: str, shown: str) -> State:
    st = lstat_at(dir_fd, name)

    def read(kind: str) -> Any:
        if kind == "link":
            return os.readlink(name, dir_fd=dir_fd)
        try:
            return read_at(dir_fd, name, shown)[0]
        except UnsafeState:
            raise UnsafeState(f"{shown}: changed while it was read") from None

    return _state(st, read)


def state_in(prefix_fd: int, prefix: str, rel: str) -> State:
    """What `rel` holds under the prefix, reached without following a symlink on the way."""
    parent = walk_to_parent(prefix_fd, rel, prefix)
    if parent is None:
        return {"type": "absent"}
    try:
        return state_at(parent, rel.rsplit("/", 1)[-1], os.path.join(prefix, rel))
    finally:
        os.close(parent)


def same_state(a: State | None, b: State | None) -> bool:
    """Equal content: type, bytes, mode, link target (mtime and owner are not content)."""
    if a is None or b is None:
        return a is b
    keys = {"type", "sha256", "mode", "target"}
    return {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}


def same_metadata(a: State, b: State) -> bool:
    """Equal content and also equal mtime and owner."""
    keys = {"mtime_ns", "uid", "gid"}
    return same_state(a, b) and {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}
