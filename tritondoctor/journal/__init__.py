"""Backups, a manifest and a lock for every change `tritondoctor fix` makes to an environment.

Layout, inside the environment it changes (so it travels and disappears with the environment):

    $PREFIX/.tritondoctor/lock                         fcntl lock: one fix / undo at a time
    $PREFIX/.tritondoctor/journal/<UTC stamp>-<pid>/
        manifest.json                                  every path, its state before and after
        files/<n>                                      byte copies of what was there before

Rules: a path (and a directory to be made) is recorded in the fsynced manifest, and a file backed
up, before it is touched; new content goes to a temporary file in the same directory, renamed over
the old one. `undo` puts back what differs from the state before the last fix (a run killed half
way included) byte for byte (content, mode, symlink targets, mtime), removes what it added and
the directories it made when they are empty again, and refuses, unless forced, when a file was
changed after the fix. The state directory, lock and journals are reached without following a
symlink and must belong to the environment's owner (or root); a manifest is checked field by
field on read (see manifest.py) before anything is touched.

Errors are JournalError subclasses with one line for the user: PrefixBusy, NothingToUndo,
UnsafeState (refused: not what tritondoctor made), NoSpace (a full disk or quota).
"""

from __future__ import annotations

import os

from tritondoctor.journal import safefs
from tritondoctor.journal.errors import (
    JournalError,
    NoSpace,
    NothingToUndo,
    PrefixBusy,
    UnsafeState,
)
from tritondoctor.journal.lock import (
    DEFAULT_LOCK_TIMEOUT,
    JOURNAL_DIR,
    LOCK_FILE,
    PrefixLock,
    lock_timeout,
)
from tritondoctor.journal.manifest import FORMAT, MANIFEST, STATE_DIR
from tritondoctor.journal.record import Journal
from tritondoctor.journal.restore import (
    RollbackReport,
    UndoResult,
    journals,
    load_manifest,
    undo_last,
)
from tritondoctor.journal.states import path_state, same_state

__all__ = [
    "DEFAULT_LOCK_TIMEOUT", "FORMAT", "JOURNAL_DIR", "LOCK_FILE", "MANIFEST", "STATE_DIR", "Journal", "JournalError",
    "NoSpace", "NothingToUndo", "PrefixBusy", "PrefixLock", "RollbackReport", "UndoResult", "UnsafeState",
    "atomic_symlink", "atomic_write", "journals", "load_manifest", "lock_timeout", "path_state", "same_state",
    "undo_last",
]


def _parent_fd(path: str) -> tuple[int, str]:
    directory, name = os.path.split(os.path.abspath(path))
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), name


def atomic_write(path: str, data: bytes, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    fd, name = _parent_fd(path)
    try:
        with safefs.no_space_as(path):
            safefs.write_at(fd, name, data, mode, owner)
    finally:
        os.close(fd)


def atomic_symlink(path: str, target: str) -> None:
    fd, name = _parent_fd(path)
    try:
        safefs.symlink_at(fd, name, target)
    finally:
        os.close(fd)
