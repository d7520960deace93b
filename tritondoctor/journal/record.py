"""The journal of one fix run: intent recorded (and fsynced) before each change on disk."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from tritondoctor.journal import safefs
from tritondoctor.journal.errors import JournalError, NoSpace, UnsafeState
from tritondoctor.journal.lock import JOURNAL_DIR, PrefixLock, held_lock, is_garbage
from tritondoctor.journal.manifest import FORMAT, MANIFEST, STATE_DIR, encode, parse
from tritondoctor.journal.restore import RollbackReport, drop_journal, restore
from tritondoctor.journal.states import same_state, state_in
from tritondoctor.plan import sha256_bytes

FILES = "files"


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def unfinished(lock: PrefixLock, root_fd: int) -> str | None:
    """The last journal, when its run died or could not roll back (it must be undone first)."""
    names = sorted(n for n in os.listdir(root_fd) if not is_garbage(n))
    if not names:
        return None
    shown = os.path.join(lock.state_dir, JOURNAL_DIR, names[-1])
    try:
        jfd = safefs.open_dir(names[-1], root_fd, shown)
    except FileNotFoundError:
        return None
    try:
        raw, _ = safefs.read_at(jfd, MANIFEST, shown, lock.trusted, single_link=True)
        status = parse(raw, shown)["status"]
    except (OSError, JournalError):
        return shown
    finally:
        os.close(jfd)
    return None if status == "complete" else shown


def _backup(journal: Journal, rel: str, full: str, before: dict[str, Any]) -> str:
    """A byte copy of `rel` in the journal (files/<n>), checked against its recorded hash."""
    parent = safefs.walk_to_parent(journal.prefix_fd, rel, journal.prefix)
    if parent is None:
        raise JournalError(f"{full}: changed while it was being backed up; nothing was changed")
    try:
        data, _ = safefs.read_at(parent, os.path.basename(rel), full)
    finally:
        os.close(parent)
    if sha256_bytes(data) != before["sha256"]:
        raise JournalError(f"{full}: changed while it was being backed up; nothing was changed")
    backup = f"{FILES}/{len(journal.entries)}"
    files = safefs.open_dir(FILES, journal.fd, os.path.join(journal.dir, FILES))
    try:
        with safefs.no_space_as(journal.dir):
            safefs.write_at(files, backup.split("/")[1], data, 0o600, journal.lock.owner)
    finally:
        os.close(files)
    return backup


def _walk(journal: Journal, rel: str, make: bool = False) -> int:
    fd = safefs.walk_to_parent(journal.prefix_fd, rel, journal.prefix, make=make)
    if fd is None:
        raise JournalError(f"{journal.abspath(rel)}: its directory is missing")
    return fd


class Journal:
    """Records and backs up every path one fix run changes, under a held PrefixLock. Write-ahead:
    each path (and directory to be made) is in the fsynced manifest before the disk is touched."""

    def __init__(self, prefix: str, fixes: Iterable[str] = (), command: str = "") -> None:
        self.prefix = os.path.realpath(prefix)
        self._own_lock: PrefixLock | None = None
        lock = held_lock(self.prefix)
        if lock is None:  # callers should hold one; keep working (and safe) without
            lock = self._own_lock = PrefixLock(self.prefix).__enter__()
        self.lock = lock
        self.entries: list[dict[str, Any]] = []
        self.created_dirs: list[str] = []
        self._index: dict[str, dict[str, Any]] = {}
        self.manifest: dict[str, Any] = {
            "format": FORMAT, "prefix": self.prefix, "created": datetime.now(timezone.utc).isoformat(),
            "fixes": list(fixes), "command": command, "status": "open",
            "entries": self.entries, "created_dirs": self.created_dirs,
        }
        self.last_rollback: RollbackReport | None = None
        self.fd = self.root_fd = -1  # descriptors of the journal and of the journal root; -1: closed
        self.name = f"{_stamp()}-{os.getpid()}"
        self.dir = os.path.join(self.prefix, STATE_DIR, JOURNAL_DIR, self.name)
        try:
            with safefs.no_space_as(os.path.join(self.prefix, STATE_DIR)):
                root = lock.journal_root(make=True)
                assert root is not None
                self.root_fd = root
                self._refuse_unfinished()
                self.fd = self._create()
        except NoSpace as exc:
            self._close()
            raise NoSpace(f"{exc}; nothing was changed") from None
        except BaseException:
            self._close()
            raise

    @property
    def prefix_fd(self) -> int:
        assert self.lock.prefix_fd is not None
        return self.lock.prefix_fd

    def _refuse_unfinished(self) -> None:
        left = unfinished(self.lock, self.root_fd)
        if left is not None:
            raise JournalError(f"an interrupted tritondoctor fix left {self.prefix} half changed (journal {left}); "
                               "run `tritondoctor fix --undo` first; nothing was changed")

    def _create(self) -> int:
        """Made under a dot name and renamed once its manifest is on disk: a journal directory
        without a manifest is never left behind."""
        tmp = f".{self.name}.new"
        shown = self.dir + ".new"
        fd, _ = safefs.ensure_dir(tmp, self.root_fd, shown, self.lock.owner, self.lock.trusted)
        try:
            files, _ = safefs.ensure_dir(FILES, fd, shown, self.lock.owner, self.lock.trusted, 0o700)
            os.close(files)
            self._save(fd)
            safefs.step()
            os.rename(tmp, self.name, src_dir_fd=self.root_fd, dst_dir_fd=self.root_fd)
            safefs.fsync_fd(self.root_fd)
        except BaseException:
            os.close(fd)
            safefs.rmtree_at(self.root_fd, tmp)
            raise
        return fd

    # -- bookkeeping ------------------------------------------------------------------------------

    def _save(self, fd: int | None = None) -> None:
        with safefs.no_space_as(self.dir):
            safefs.write_at(self.fd if fd is None else fd, MANIFEST, encode(self.manifest), 0o644, self.lock.owner)

    def rel(self, path: str) -> str:
        full = os.path.abspath(path)
        parent = os.path.realpath(os.path.dirname(full))
        full = os.path.join(parent, os.path.basename(full))
        if not (full + "/").startswith(self.prefix.rstrip("/") + "/") or full == self.prefix:
            raise JournalError(f"{path}: outside the environment {self.prefix}; tritondoctor changes nothing there")
        rel = os.path.relpath(full, self.prefix)
        if rel.split(os.sep)[0] == STATE_DIR:
            raise JournalError(f"{path}: inside tritondoctor's own state directory")
        return rel

    def abspath(self, rel: str) -> str:
        return os.path.join(self.prefix, rel)

    def state(self, rel: str) -> dict[str, Any]:
        return state_in(self.prefix_fd, self.prefix, rel)

    def track(self, path: str) -> dict[str, Any]:
        """Record (once) what `path` holds now and keep a byte copy: call before changing it."""
        rel = self.rel(path)
        if rel in self._index:
            return self._index[rel]
        full = self.abspath(rel)
        before = self.state(rel)
        if before["type"] in ("dir", "other"):
            what = "a directory" if before["type"] == "dir" else "a special file"
            raise JournalError(f"{full}: is {what}, not a file; nothing was changed")
        if before["type"] == "file" and before["mode"] & ~0o777:
            raise JournalError(f"{full}: has set-id or sticky bits; tritondoctor does not change it")
        entry: dict[str, Any] = {"path": rel, "before": before, "after": None, "backup": None}
        if before["type"] == "file":
            entry["backup"] = _backup(self, rel, full, before)
        self.entries.append(entry)
        self._index[rel] = entry
        self._save()
        return entry

    def note_dirs_for(self, path: str) -> None:
        """Record, then create, the missing parent directories of `path` (removed by undo)."""
        rel = self.rel(path)
        parts = rel.split("/")[:-1]
        missing: list[str] = []
        for sub in ("/".join(parts[:n]) for n in range(1, len(parts) + 1)):
            if missing or self.state(sub)["type"] == "absent":
                missing.append(sub)
        new = [d for d in missing if d not in self.created_dirs]
        if new:
            self.created_dirs.extend(new)
            self._save()
        if missing:
            os.close(_walk(self, rel, make=True))

    def note_created_dirs(self, dirs: Iterable[str]) -> None:
        """Directories something else (an installer) created: removed by undo when empty."""
        for directory in dirs:
            rel = self.rel(directory)
            if rel not in self.created_dirs:
                self.created_dirs.append(rel)
        self._save()

    def note_created(self, path: str) -> None:
        """Something else (an installer) created `path`, which was not there before: undo removes
        it (a directory: the files in it, then the directory when empty)."""
        full = self.abspath(self.rel(path))
        if os.path.isdir(full) and not os.path.islink(full):
            for dirpath, dirnames, filenames in os.walk(full):
                for name in filenames:
                    self.note_created(os.path.join(dirpath, name))
                for name in dirnames:
                    if os.path.islink(os.path.join(dirpath, name)):
                        self.note_created(os.path.join(dirpath, name))
            self.note_created_dirs([dp for dp, _, _ in os.walk(full)])
            return
        rel = self.rel(full)
        if rel in self._index:
            return
        entry = {"path": rel, "before": {"type": "absent"}, "after": self.state(rel), "backup": None}
        self.entries.append(entry)
        self._index[rel] = entry
        self._save()

    # -- changes ----------------------------------------------------------------------------------

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        entry = self.track(path)
        self.note_dirs_for(path)
        before = entry["before"]
        if mode is None:
            mode = before.get("mode", 0o644) if before["type"] == "file" else 0o644
        owner = (before["uid"], before["gid"]) if before["type"] == "file" else None
        rel = entry["path"]
        parent = _walk(self, rel)
        try:
            with safefs.no_space_as(self.abspath(rel)):
                safefs.write_at(parent, os.path.basename(rel), data, stat.S_IMODE(mode) & 0o777, owner)
        finally:
            os.close(parent)
        entry["after"] = self.state(rel)
        self._save()

    def remove(self, path: str) -> None:
        entry = self.track(path)
        rel = entry["path"]
        parent = safefs.walk_to_parent(self.prefix_fd, rel, self.prefix)
        if parent is not None:
            try:
                if safefs.lstat_at(parent, os.path.basename(rel)) is not None:
                    safefs.step()
                    os.unlink(os.path.basename(rel), dir_fd=parent)
            finally:
                os.close(parent)
        entry["after"] = {"type": "absent"}
        self._save()

    def settle(self) -> None:
        """Record the state after the changes of every tracked path (after an installer ran)."""
        for entry in self.entries:
            entry["after"] = self.state(entry["path"])
        self._save()

    @property
    def changed(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["after"] is not None and not same_state(e["before"], e["after"])]

    def commit(self) -> None:
        self.settle()
        # Paths tracked but left as they were are not part of the fix (the manifest says so
        # first; their backups go after).
        kept = self.changed
        dropped = [e["backup"] for e in self.entries if e not in kept and e["backup"]]
        self.entries[:] = kept
        self.created_dirs[:] = [d for d in self.created_dirs if self.state(d)["type"] == "dir"]
        if not self.entries and not self.created_dirs:
            self.discard()
            return
        self.manifest["status"] = "complete"
        self._save()
        for backup in dropped:
            with contextlib.suppress(OSError):
                os.unlink(backup, dir_fd=self.fd)
        self._close()

    def discard(self) -> None:
        """Drop a journal that recorded no change (or was rolled back)."""
        drop_journal(self.root_fd, self.name)
        self._close()

    def _close(self) -> None:
        for fd in (self.fd, self.root_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.root_fd = -1
        if self._own_lock is not None:
            self._own_lock.__exit__(None, None, None)
            self._own_lock = None

    def rollback(self) -> list[str]:
        """Put back every path the run changed (after a failed apply): only what differs from its
        recorded state is rewritten. Returns what could not be restored; `last_rollback` tells
        what was restored, what was found untouched and what failed."""
        if self.fd < 0:
            raise UnsafeState(f"{self.dir}: this journal is already closed")
        with contextlib.suppress(OSError, JournalError):
            self.settle()  # best effort: a full disk must not stop the rollback
        report = restore(self.prefix_fd, self.prefix, self.entries, self.created_dirs, self.fd, self.dir,
                         os.getpid(), self.lock.trusted)
        self.last_rollback = report
        if not report.failed:
            self.discard()
        else:
            self.manifest["status"] = "rollback-failed"
            with contextlib.suppress(OSError, JournalError):
                self._save()
            self._close()
        return list(report.failed)
