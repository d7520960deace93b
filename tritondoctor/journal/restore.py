"""Putting an environment back from a journal: rollback of a failed run, and `fix --undo`."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

from tritondoctor.journal import safefs
from tritondoctor.journal.errors import JournalError, NothingToUndo, UnsafeState
from tritondoctor.journal.lock import JOURNAL_DIR, PrefixLock, is_garbage
from tritondoctor.journal.manifest import (
    JOURNAL_NAME,
    MANIFEST,
    STATE_DIR,
    encode,
    parse,
)
from tritondoctor.journal.states import same_metadata, same_state, state_at, state_in
from tritondoctor.plan import sha256_bytes


@dataclass(frozen=True)
class RollbackReport:
    """What putting an environment back did: paths it restored (rewrote, relinked or removed),
    paths it found already as they were (never touched), and one line per path it could not
    restore. Paths are relative to the prefix."""

    restored: tuple[str, ...] = ()
    untouched: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    removed_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class UndoResult:
    journal: str
    fixes: tuple[str, ...]
    restored: tuple[str, ...]
    removed: tuple[str, ...]
    removed_dirs: tuple[str, ...]
    kept_copies: tuple[str, ...]
    report: RollbackReport = field(default_factory=RollbackReport)


@dataclass
class _Restorer:
    prefix_fd: int
    prefix: str
    journal_fd: int
    journal_shown: str
    pid: int
    trusted: frozenset[int]

    def backup(self, entry: dict[str, Any]) -> bytes:
        files_name, number = entry["backup"].split("/")
        shown = os.path.join(self.journal_shown, entry["backup"])
        files = safefs.open_dir(files_name, self.journal_fd, shown)
        try:
            data, _ = safefs.read_at(files, number, shown, self.trusted, single_link=True)
        finally:
            os.close(files)
        if sha256_bytes(data) != entry["before"]["sha256"]:
            raise UnsafeState(f"{os.path.join(self.prefix, entry['path'])}: its backup is damaged; left as it is")
        return data

    def one(self, entry: dict[str, Any]) -> bool:
        """Put one path back; False when it already was as before (nothing written)."""
        rel, before = entry["path"], entry["before"]
        parent = safefs.walk_to_parent(self.prefix_fd, rel, self.prefix, make=before["type"] != "absent")
        if parent is None:
            return False
        name, full = os.path.basename(rel), os.path.join(self.prefix, rel)
        try:
            self.sweep_temps(parent, name)
            now = state_at(parent, name, full)
            if same_metadata(now, before) or (before["type"] == "absent" and now["type"] == "absent"):
                return False
            if same_state(now, before):
                self.put_metadata(parent, name, before)  # only the mtime (or owner) differs
            else:
                self.put_content(parent, name, full, now, before, entry)
            if not same_state(state_at(parent, name, full), before):
                raise UnsafeState(f"{full}: not restored")
            return True
        finally:
            os.close(parent)

    def put_content(self, parent: int, name: str, full: str, now: dict[str, Any], before: dict[str, Any],
                    entry: dict[str, Any]) -> None:
        if now["type"] == "dir":
            raise UnsafeState(f"{full}: a directory now; left as it is")
        if before["type"] == "absent":
            safefs.step()
            os.unlink(name, dir_fd=parent)
            return
        if before["type"] == "file":
            with safefs.no_space_as(full):
                safefs.write_at(parent, name, self.backup(entry), before["mode"], (before["uid"], before["gid"]))
        else:
            safefs.symlink_at(parent, name, before["target"])
        self.put_metadata(parent, name, before)

    @staticmethod
    def put_metadata(parent: int, name: str, before: dict[str, Any]) -> None:
        with contextlib.suppress(OSError, NotImplementedError):
            if before["type"] == "file" and safefs.is_root():
                os.chown(name, before["uid"], before["gid"], dir_fd=parent, follow_symlinks=False)
            os.utime(name, ns=(before["mtime_ns"], before["mtime_ns"]), dir_fd=parent, follow_symlinks=False)

    def sweep_temps(self, parent: int, name: str) -> None:
        """The temporary files killed runs (this fix's, or an undo's) left for `name`:
        `.NAME.tdx-PID-XXXXXXXX`, a name nothing but tritondoctor makes."""
        pattern = re.compile(rf"\.{re.escape(name)}{re.escape(safefs.TEMP_MARK)}[0-9]+-[0-9a-f]{{8}}\Z")
        for other in os.listdir(parent):
            st = safefs.lstat_at(parent, other) if pattern.match(other) else None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                safefs.step()
                os.unlink(other, dir_fd=parent)

    def remove_dirs(self, created_dirs: list[str]) -> tuple[str, ...]:
        removed = []
        for rel in sorted(created_dirs, key=lambda d: d.count("/"), reverse=True):
            parent = safefs.walk_to_parent(self.prefix_fd, rel, self.prefix)
            if parent is None:
                continue
            try:
                safefs.step()
                os.rmdir(os.path.basename(rel), dir_fd=parent)
                removed.append(rel)
            except OSError:
                pass  # not empty (the user put something there) or already gone: keep it
            finally:
                os.close(parent)
        return tuple(removed)


def restore(prefix_fd: int, prefix: str, entries: list[dict[str, Any]], created_dirs: list[str], journal_fd: int,
            journal_shown: str, pid: int, trusted: frozenset[int]) -> RollbackReport:
    """Put every entry back as it was before, newest first, rewriting only what differs."""
    worker = _Restorer(prefix_fd, prefix, journal_fd, journal_shown, pid, trusted)
    restored: list[str] = []
    untouched: list[str] = []
    failed: list[str] = []
    for entry in reversed(entries):
        try:
            (restored if worker.one(entry) else untouched).append(entry["path"])
        except JournalError as exc:
            failed.append(str(exc))
        except OSError as exc:
            failed.append(f"{os.path.join(prefix, entry['path'])}: {safefs.describe(exc)}")
    return RollbackReport(tuple(restored), tuple(untouched), tuple(failed), worker.remove_dirs(created_dirs))


def drop_journal(root_fd: int, name: str) -> None:
    """Renamed to a dot name first: a half-removed journal is never mistaken for a journal."""
    gone = f".{name}.drop"
    with contextlib.suppress(OSError):
        safefs.step()
        os.rename(name, gone, src_dir_fd=root_fd, dst_dir_fd=root_fd)
        name = gone
    safefs.rmtree_at(root_fd, name)


# ---------------------------------------------------------------------------------------------
# Undo
# ---------------------------------------------------------------------------------------------


def journals(prefix: str) -> list[str]:
    """The journal directories of `prefix`, oldest first (by name: its UTC stamp)."""
    root = os.path.join(os.path.realpath(prefix), STATE_DIR, JOURNAL_DIR)
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [os.path.join(root, n) for n in names if not is_garbage(n)]


def load_manifest(directory: str) -> dict[str, Any]:
    """The checked manifest of a journal directory (path-based; undo reads through descriptors)."""
    try:
        fd = safefs.open_dir(directory, None, directory)
    except OSError as exc:
        raise JournalError(f"{directory}: unreadable journal ({safefs.describe(exc)})") from None
    try:
        raw, _ = safefs.read_at(fd, MANIFEST, os.path.join(directory, MANIFEST))
    except OSError as exc:
        raise JournalError(f"{directory}: unreadable journal ({safefs.describe(exc)})") from None
    finally:
        os.close(fd)
    return parse(raw, directory)


def _keep_later_edits(lock: PrefixLock, entries: list[dict[str, Any]], force: bool) -> list[str]:
    """Paths changed since the fix: refused, or with `force` kept as <name>.tritondoctor-undo."""
    assert lock.prefix_fd is not None
    conflicts = []
    for entry in entries:
        now = state_in(lock.prefix_fd, lock.prefix, entry["path"])
        after = entry["after"]
        if after is not None and not same_state(now, after) and not same_state(now, entry["before"]):
            conflicts.append((entry["path"], now))
    if conflicts and not force:
        shown = ", ".join(c[0] for c in conflicts[:3]) + (" ..." if len(conflicts) > 3 else "")
        raise JournalError(f"changed since the fix: {shown} (in {lock.prefix}); nothing was undone; "
                           f"--force restores anyway and keeps the current files as <name>.tritondoctor-undo")
    kept = []
    for rel, now in conflicts:
        if now["type"] != "file":
            continue
        parent = safefs.walk_to_parent(lock.prefix_fd, rel, lock.prefix)
        assert parent is not None
        try:
            name = os.path.basename(rel)
            data, _ = safefs.read_at(parent, name, os.path.join(lock.prefix, rel))
            safefs.write_at(parent, name + ".tritondoctor-undo", data, now["mode"])
        finally:
            os.close(parent)
        kept.append(os.path.join(lock.prefix, rel) + ".tritondoctor-undo")
    return kept


def _undo_journal(lock: PrefixLock, root_fd: int, name: str, force: bool) -> UndoResult:
    shown = os.path.join(lock.state_dir, JOURNAL_DIR, name)
    jfd = safefs.open_dir(name, root_fd, shown)
    try:
        safefs.check_dir(jfd, shown, lock.trusted)
        raw, _ = safefs.read_at(jfd, MANIFEST, os.path.join(shown, MANIFEST), lock.trusted, single_link=True)
        manifest = parse(raw, shown)
        if manifest["prefix"] != lock.prefix:
            raise JournalError(f"{shown}: journal of {manifest['prefix']}, not of {lock.prefix} "
                               "(was the environment moved?); nothing was undone")
        entries = manifest["entries"]
        kept = _keep_later_edits(lock, entries, force)
        match = JOURNAL_NAME.match(name)
        assert match is not None and lock.prefix_fd is not None
        report = restore(lock.prefix_fd, lock.prefix, entries, manifest["created_dirs"], jfd, shown,
                         int(match.group(1)), lock.trusted)
        if report.failed:
            manifest["status"] = "undo-failed"
            with contextlib.suppress(OSError):
                safefs.write_at(jfd, MANIFEST, encode(manifest), 0o644, lock.owner)
            raise JournalError("undo incomplete: " + "; ".join(report.failed[:3]))
    finally:
        os.close(jfd)
    drop_journal(root_fd, name)
    absent = {e["path"] for e in entries if e["before"]["type"] == "absent"}
    return UndoResult(shown, tuple(manifest["fixes"]), tuple(p for p in report.restored if p not in absent),
                      tuple(p for p in report.restored if p in absent), report.removed_dirs, tuple(kept), report)


def undo_last(prefix: str, force: bool = False, timeout: float | None = None) -> UndoResult:
    """Restore the environment to its state before the last fix recorded in its journal (a run
    that was killed half way included). NothingToUndo when none is left."""
    with PrefixLock(prefix, timeout=timeout) as lock:
        root = lock.journal_root(make=False)
        if root is None:
            raise NothingToUndo(f"no fix to undo in {lock.prefix}")
        try:
            lock.sweep_garbage(root)
            names = sorted(n for n in os.listdir(root) if not is_garbage(n))
            if not names:
                raise NothingToUndo(f"no fix to undo in {lock.prefix}")
            return _undo_journal(lock, root, names[-1], force)
        finally:
            os.close(root)
