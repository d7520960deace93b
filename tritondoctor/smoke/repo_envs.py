"""The execution environments Triton's python backend unpacks for a run (`/tmp/python_env_XXXXXX`,
TMPDIR ignored): removed when the run ends, whatever ended it. The backend removes them itself only
on a clean unload, which a stopped or killed server never reaches.

A directory is the run's when it appeared after the run started, belongs to this user, and no
process still maps a file from it or works in it: another server's environments are left alone.
"""

from __future__ import annotations

import glob
import os
import shutil

UNPACK_GLOB = "/tmp/python_env_*"


def existing() -> set[str]:
    return set(glob.glob(UNPACK_GLOB))


def remove_new(before: set[str], since: float) -> list[str]:
    """Remove the unpacked environments this run made (see the module docstring); their paths."""
    removed = []
    for path in sorted(existing() - before):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid != os.getuid() or st.st_mtime < since - 1 or not os.path.isdir(path) or os.path.islink(path):
            continue
        if _in_use(path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _in_use(path: str) -> bool:
    prefix = path.rstrip("/") + "/"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(prefix):
                return True
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
                if prefix in fh.read():
                    return True
        except OSError:
            continue
    return False
