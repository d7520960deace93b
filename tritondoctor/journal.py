"""Backups, a manifest and a lock for every change `tritondoctor fix` makes to an environment.

Layout, inside the environment it changes (so it travels and disappears with the environment):

    $PREFIX/.tritondoctor/lock                         fcntl lock: one fix / undo at a time
    $PREFIX/.tritondoctor/journal/<UTC stamp>-<pid>/
        manifest.json                                  every path, its state before and after
        files/<n>                                      byte copies of what was there before

Rules: a file is backed up (and the manifest that names the backup written and fsynced) before
it is touched; new content is written to a temporary file in the same directory and renamed over
the old one, so a reader never sees half a file; `undo` restores the states before the last fix
byte for byte (content, mode, symlink targets, mtime), removes what it added, including the
directories it created when they are empty again, and refuses, unless forced, when a file was
changed after the fix (the user's later edits are never overwritten silently).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from tritondoctor.plan import sha256_bytes

STATE_DIR = ".tritondoctor"
JOURNAL_DIR = "journal"
LOCK_FILE = "lock"
MANIFEST = "manifest.json"
FORMAT = 1
DEFAULT_LOCK_TIMEOUT = 120.0


class JournalError(Exception):
    """A one-line message for the user."""


class PrefixBusy(JournalError):
    """Another tritondoctor process holds the environment's lock."""


class NothingToUndo(JournalError):
    pass


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_name(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.tdx-{os.getpid()}-{os.urandom(4).hex()}")


def atomic_write(path: str, data: bytes, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, stat.S_IMODE(mode))
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(os.path.dirname(path) or ".")


def atomic_symlink(path: str, target: str) -> None:
    tmp = _temp_name(path)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# Path states
# ---------------------------------------------------------------------------------------------


def path_state(path: str) -> dict[str, Any]:
    """What is at `path` now: absent, a file (sha256, mode, mtime), a symlink (target) or a dir."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"type": "absent"}
    if stat.S_ISLNK(st.st_mode):
        return {"type": "symlink", "target": os.readlink(path), "mtime_ns": st.st_mtime_ns}
    if stat.S_ISDIR(st.st_mode):
        return {"type": "dir", "mode": stat.S_IMODE(st.st_mode)}
    if not stat.S_ISREG(st.st_mode):
        return {"type": "other", "mode": st.st_mode}
    with open(path, "rb") as fh:
        data = fh.read()
    return {
        "type": "file",
        "sha256": sha256_bytes(data),
        "size": len(data),
        "mode": stat.S_IMODE(st.st_mode),
        "mtime_ns": st.st_mtime_ns,
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def same_state(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equal content: type, bytes, mode, link target (mtime and owner are not content)."""
    if a is None or b is None:
        return a is b
    keys = {"type", "sha256", "mode", "target"}
    return {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}


# ---------------------------------------------------------------------------------------------
# The lock
# ---------------------------------------------------------------------------------------------


def lock_timeout() -> float:
    raw = os.environ.get("TRITONDOCTOR_LOCK_TIMEOUT")
    try:
        return float(raw) if raw else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT


class PrefixLock:
    """An exclusive fcntl lock on `$PREFIX/.tritondoctor/lock`, waited for up to `timeout` seconds.

    The lock file may be removed by an undo that leaves no journal behind; a waiter that then
    holds a lock on the removed file notices (its inode differs from the path's) and retries.
    """

    def __init__(self, prefix: str, timeout: float | None = None, poll: float = 0.05) -> None:
        self.prefix = os.path.realpath(prefix)
        self.state_dir = os.path.join(self.prefix, STATE_DIR)
        self.path = os.path.join(self.state_dir, LOCK_FILE)
        self.timeout = lock_timeout() if timeout is None else timeout
        self.poll = poll
        self.fd: int | None = None
        self.created_state_dir = False
        self.waited = 0.0

    def __enter__(self) -> "PrefixLock":
        start = time.monotonic()
        deadline = start + self.timeout
        while True:
            if not os.path.isdir(self.state_dir):
                try:
                    os.mkdir(self.state_dir, 0o755)
                    self.created_state_dir = True
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise JournalError(f"cannot write into {self.prefix}: {exc.strerror}") from None
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue  # the directory was removed under us: make it again
            except OSError as exc:
                raise JournalError(f"cannot lock {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise JournalError(f"cannot lock {self.path}: {exc.strerror}") from None
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    raise PrefixBusy(
                        f"another tritondoctor fix is changing {self.prefix}{holder}; waited "
                        f"{self.timeout:g}s for it (TRITONDOCTOR_LOCK_TIMEOUT); nothing was changed"
                    ) from None
                time.sleep(self.poll)
                continue
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            self.waited = time.monotonic() - start
            return self

    def _holder(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as fh:
                pid = fh.read().strip()
            return f" (pid {pid})" if pid.isdigit() else ""
        except OSError:
            return ""

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def remove_if_unused(self) -> None:
        """While still held: remove the lock file, the journal directory and the state directory
        when no journal is left in them (an undone environment carries nothing of ours)."""
        journal_root = os.path.join(self.state_dir, JOURNAL_DIR)
        try:
            if os.path.isdir(journal_root) and not os.listdir(journal_root):
                os.rmdir(journal_root)
            if set(os.listdir(self.state_dir)) <= {LOCK_FILE}:
                os.unlink(self.path)
                os.rmdir(self.state_dir)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# The journal of one fix run
# ---------------------------------------------------------------------------------------------


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


class Journal:
    """Records and backs up every path one fix run changes. Use under a held PrefixLock."""

    def __init__(self, prefix: str, fixes: Iterable[str] = (), command: str = "") -> None:
        self.prefix = os.path.realpath(prefix)
        root = os.path.join(self.prefix, STATE_DIR, JOURNAL_DIR)
        os.makedirs(root, exist_ok=True)
        self.dir = os.path.join(root, f"{_stamp()}-{os.getpid()}")
        os.mkdir(self.dir)
        os.mkdir(os.path.join(self.dir, "files"))
        self.entries: list[dict[str, Any]] = []
        self.created_dirs: list[str] = []
        self._index: dict[str, dict[str, Any]] = {}
        self.manifest: dict[str, Any] = {
            "format": FORMAT,
            "prefix": self.prefix,
            "created": datetime.now(timezone.utc).isoformat(),
            "fixes": list(fixes),
            "command": command,
            "status": "open",
            "entries": self.entries,
            "created_dirs": self.created_dirs,
        }
        self._save()

    # -- bookkeeping ------------------------------------------------------------------------------

    def _save(self) -> None:
        data = json.dumps(self.manifest, indent=1, sort_keys=True).encode()
        atomic_write(os.path.join(self.dir, MANIFEST), data, 0o644)

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

    def track(self, path: str) -> dict[str, Any]:
        """Record (once) what `path` holds now and keep a byte copy: call before changing it."""
        rel = self.rel(path)
        if rel in self._index:
            return self._index[rel]
        full = self.abspath(rel)
        before = path_state(full)
        if before["type"] in ("dir", "other"):
            what = "a directory" if before["type"] == "dir" else "a special file"
            raise JournalError(f"{full}: is {what}, not a file; nothing was changed")
        entry: dict[str, Any] = {"path": rel, "before": before, "after": None, "backup": None}
        if before["type"] == "file":
            backup = os.path.join("files", str(len(self.entries)))
            with open(full, "rb") as fh:
                data = fh.read()
            if sha256_bytes(data) != before["sha256"]:
                raise JournalError(f"{full}: changed while it was being backed up; nothing was changed")
            atomic_write(os.path.join(self.dir, backup), data, 0o600)
            entry["backup"] = backup
        self.entries.append(entry)
        self._index[rel] = entry
        self._save()
        return entry

    def note_dirs_for(self, path: str) -> None:
        """Create the missing parent directories of `path` and remember them for undo."""
        parent = os.path.dirname(self.abspath(self.rel(path)))
        missing: list[str] = []
        while not os.path.isdir(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            os.mkdir(directory, 0o755)
            self.created_dirs.append(os.path.relpath(directory, self.prefix))
        if missing:
            self._save()

    def note_created_dirs(self, dirs: Iterable[str]) -> None:
        """Directories something else (an installer) created: removed by undo when empty."""
        for directory in dirs:
            rel = os.path.relpath(os.path.abspath(directory), self.prefix)
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
            self.note_created_dirs([os.path.join(dp) for dp, _, _ in os.walk(full)])
            return
        rel = self.rel(full)
        if rel in self._index:
            return
        entry = {"path": rel, "before": {"type": "absent"}, "after": path_state(full), "backup": None}
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
        full = self.abspath(entry["path"])
        if before["type"] == "symlink":
            os.unlink(full)  # replace the link itself, never the file it points to
        atomic_write(full, data, mode, owner)
        entry["after"] = path_state(full)
        self._save()

    def remove(self, path: str) -> None:
        entry = self.track(path)
        full = self.abspath(entry["path"])
        if os.path.lexists(full):
            os.unlink(full)
        entry["after"] = {"type": "absent"}
        self._save()

    def settle(self) -> None:
        """Record the state after the changes of every tracked path (after an installer ran)."""
        for entry in self.entries:
            entry["after"] = path_state(self.abspath(entry["path"]))
        self._save()

    @property
    def changed(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["after"] is not None and not same_state(e["before"], e["after"])]

    def commit(self) -> None:
        self.settle()
        # Paths tracked but left as they were are not part of the fix.
        kept = self.changed
        for entry in [e for e in self.entries if e not in kept]:
            if entry["backup"]:
                try:
                    os.unlink(os.path.join(self.dir, entry["backup"]))
                except OSError:
                    pass
        self.entries[:] = kept
        self.created_dirs[:] = [d for d in self.created_dirs if os.path.isdir(self.abspath(d))]
        if not self.entries and not self.created_dirs:
            self.discard()
            return
        self.manifest["status"] = "complete"
        self._save()

    def discard(self) -> None:
        """Drop a journal that recorded no change."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def rollback(self) -> list[str]:
        """Put every tracked path back (after a failed apply). Returns what could not be restored."""
        self.settle()
        problems = _restore(self.prefix, self.entries, self.created_dirs, self.dir)
        if not problems:
            self.discard()
        else:
            self.manifest["status"] = "rollback-failed"
            self._save()
        return problems


# ---------------------------------------------------------------------------------------------
# Undo
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UndoResult:
    journal: str
    fixes: tuple[str, ...]
    restored: tuple[str, ...]
    removed: tuple[str, ...]
    removed_dirs: tuple[str, ...]
    kept_copies: tuple[str, ...]


def journals(prefix: str) -> list[str]:
    root = os.path.join(os.path.realpath(prefix), STATE_DIR, JOURNAL_DIR)
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [os.path.join(root, n) for n in names if os.path.isfile(os.path.join(root, n, MANIFEST))]


def load_manifest(directory: str) -> dict[str, Any]:
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise JournalError(f"{directory}: unreadable journal ({exc})") from None
    if data.get("format") != FORMAT:
        raise JournalError(f"{directory}: journal format {data.get('format')!r} is not {FORMAT}")
    return data


def _restore(prefix: str, entries: list[dict[str, Any]], created_dirs: list[str], journal_dir: str) -> list[str]:
    problems: list[str] = []
    for entry in reversed(entries):
        full = os.path.join(prefix, entry["path"])
        before = entry["before"]
        try:
            if before["type"] == "absent":
                if os.path.islink(full) or (os.path.lexists(full) and not os.path.isdir(full)):
                    os.unlink(full)
            elif before["type"] == "file":
                with open(os.path.join(journal_dir, entry["backup"]), "rb") as fh:
                    data = fh.read()
                if sha256_bytes(data) != before["sha256"]:
                    problems.append(f"{full}: its backup is damaged; left as it is")
                    continue
                os.makedirs(os.path.dirname(full), exist_ok=True)
                if os.path.islink(full):
                    os.unlink(full)
                atomic_write(full, data, before["mode"], (before.get("uid", -1), before.get("gid", -1)))
                os.utime(full, ns=(before["mtime_ns"], before["mtime_ns"]))
            elif before["type"] == "symlink":
                os.makedirs(os.path.dirname(full), exist_ok=True)
                atomic_symlink(full, before["target"])
                try:
                    os.utime(full, ns=(before["mtime_ns"], before["mtime_ns"]), follow_symlinks=False)
                except (OSError, NotImplementedError):
                    pass
        except OSError as exc:
            problems.append(f"{full}: {exc.strerror or exc}")
            continue
        if not same_state(path_state(full), before):
            problems.append(f"{full}: not restored")
    for rel in sorted(created_dirs, key=lambda d: d.count(os.sep), reverse=True):
        try:
            os.rmdir(os.path.join(prefix, rel))
        except OSError:
            pass  # not empty (the user put something there) or already gone: keep it
    return problems


def undo_last(prefix: str, force: bool = False, timeout: float | None = None) -> UndoResult:
    """Restore the environment to its state before the last fix recorded in its journal."""
    with PrefixLock(prefix, timeout=timeout) as lock:
        runs = journals(prefix)
        if not runs:
            lock.remove_if_unused()
            raise NothingToUndo(f"no fix to undo in {os.path.realpath(prefix)}")
        last = runs[-1]
        manifest = load_manifest(last)
        root = manifest["prefix"]
        if os.path.realpath(root) != os.path.realpath(prefix):
            raise JournalError(f"{last}: journal of {root}, not of {prefix} (was the environment moved?)")
        entries = manifest["entries"]
        conflicts = []
        for entry in entries:
            now = path_state(os.path.join(root, entry["path"]))
            after = entry.get("after")
            if after is not None and not same_state(now, after) and not same_state(now, entry["before"]):
                conflicts.append(entry["path"])
        kept: list[str] = []
        if conflicts:
            if not force:
                shown = ", ".join(conflicts[:3]) + (" ..." if len(conflicts) > 3 else "")
                raise JournalError(
                    f"changed since the fix: {shown} (in {root}); nothing was undone; "
                    f"--force restores anyway and keeps the current files as <name>.tritondoctor-undo"
                )
            for rel in conflicts:
                full = os.path.join(root, rel)
                if os.path.isfile(full) and not os.path.islink(full):
                    copy = full + ".tritondoctor-undo"
                    shutil.copy2(full, copy)
                    kept.append(copy)
        problems = _restore(root, entries, manifest.get("created_dirs", []), last)
        if problems:
            manifest["status"] = "undo-failed"
            atomic_write(os.path.join(last, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True).encode())
            raise JournalError("undo incomplete: " + "; ".join(problems[:3]))
        restored = tuple(e["path"] for e in entries if e["before"]["type"] != "absent")
        removed = tuple(e["path"] for e in entries if e["before"]["type"] == "absent")
        removed_dirs = tuple(d for d in manifest.get("created_dirs", []) if not os.path.isdir(os.path.join(root, d)))
        shutil.rmtree(last, ignore_errors=True)
        lock.remove_if_unused()
        return UndoResult(last, tuple(manifest.get("fixes", ())), restored, removed, removed_dirs, tuple(kept))
