"""`$PREFIX/.tritondoctor/lock`: one fix or undo at a time on an environment."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time

from tritondoctor.journal import safefs
from tritondoctor.journal.errors import JournalError, PrefixBusy
from tritondoctor.journal.manifest import JOURNAL_NAME, MANIFEST, STATE_DIR

JOURNAL_DIR = "journal"
LOCK_FILE = "lock"
DEFAULT_LOCK_TIMEOUT = 120.0
_LOCK_MAX_SIZE = 32  # "<pid>\n": a bigger file is not a lock this tritondoctor made
_held: dict[str, PrefixLock] = {}


def lock_timeout() -> float:
    raw = os.environ.get("TRITONDOCTOR_LOCK_TIMEOUT")
    try:
        return float(raw) if raw else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT


def held_lock(prefix: str) -> PrefixLock | None:
    """The lock this process holds on `prefix` (realpath), if any."""
    return _held.get(prefix)


def is_garbage(name: str) -> bool:
    """A journal directory no run will come back to: one being created, dropped or undone when its
    process died (dot names), or anything not named as tritondoctor names a journal."""
    return name.startswith(".") or not JOURNAL_NAME.match(name)


class PrefixLock:
    """An exclusive fcntl lock on `$PREFIX/.tritondoctor/lock`, waited for up to `timeout` seconds.

    The state directory and the lock file are opened without following a symlink and must be
    owned by the environment's owner (or root, or this user); the lock file is only ever
    truncated when it is a single-link small regular file there. The lock file may be removed by
    a run that leaves no journal behind; a waiter that then holds a lock on the removed file
    notices (its inode differs from the path's) and retries.
    """

    def __init__(self, prefix: str, timeout: float | None = None, poll: float = 0.05) -> None:
        self.prefix = os.path.realpath(prefix)
        self.state_dir = os.path.join(self.prefix, STATE_DIR)
        self.path = os.path.join(self.state_dir, LOCK_FILE)
        self.timeout = lock_timeout() if timeout is None else timeout
        self.poll = poll
        self.fd: int | None = None
        self.prefix_fd: int | None = None
        self.state_fd: int | None = None
        self.owner = (-1, -1)
        self.trusted: frozenset[int] = frozenset()
        self.created_state_dir = False
        self.waited = 0.0

    def __enter__(self) -> PrefixLock:
        try:
            self.prefix_fd = os.open(self.prefix, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise JournalError(f"cannot open {self.prefix}: {safefs.describe(exc)}") from None
        st = os.fstat(self.prefix_fd)
        self.owner = (st.st_uid, st.st_gid)
        self.trusted = safefs.trusted_uids(st.st_uid)
        try:
            self._acquire(time.monotonic())
        except BaseException:
            self._close()
            raise
        _held[self.prefix] = self
        return self

    def _acquire(self, start: float) -> None:
        deadline = start + self.timeout
        while True:
            fd = self._open_lock()
            if fd is None:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise JournalError(f"cannot lock {self.path}: {safefs.describe(exc)}") from None
                if time.monotonic() >= deadline:
                    raise PrefixBusy(
                        f"another tritondoctor fix is changing {self.prefix}{self._holder()}; waited "
                        f"{self.timeout:g}s for it (TRITONDOCTOR_LOCK_TIMEOUT); nothing was changed") from None
                time.sleep(self.poll)
                continue
            if not self._still_linked(fd):
                os.close(fd)
                continue
            self._write_pid(fd)
            self.fd = fd
            self.waited = time.monotonic() - start
            return

    def _open_state_dir(self) -> None:
        if self.state_fd is not None:
            os.close(self.state_fd)
            self.state_fd = None
        assert self.prefix_fd is not None
        try:
            with safefs.no_space_as(self.state_dir, "; nothing was changed"):
                self.state_fd, created = safefs.ensure_dir(STATE_DIR, self.prefix_fd, self.state_dir, self.owner,
                                                           self.trusted)
        except (JournalError, FileNotFoundError):
            raise
        except OSError as exc:
            raise JournalError(f"cannot write into {self.prefix}: {safefs.describe(exc)}") from None
        self.created_state_dir = self.created_state_dir or created

    def _open_lock(self) -> int | None:
        """The lock file's descriptor, checked; None: the state directory went away, try again."""
        self._open_state_dir()
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            safefs.step()
            fd = os.open(LOCK_FILE, flags, 0o644, dir_fd=self.state_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise safefs.refuse_not_ours(self.path, "a symlink") from None
            raise JournalError(f"cannot lock {self.path}: {safefs.describe(exc)}") from None
        st = os.fstat(fd)
        why = ("not a regular file" if not stat.S_ISREG(st.st_mode) else
               f"{st.st_nlink} hard links" if st.st_nlink != 1 else
               f"{st.st_size} bytes, not a lock file" if st.st_size > _LOCK_MAX_SIZE else
               f"owned by uid {st.st_uid}" if st.st_uid not in self.trusted else "")
        if why:
            os.close(fd)
            raise safefs.refuse_not_ours(self.path, why)
        if st.st_uid != self.owner[0] and safefs.is_root():
            os.fchown(fd, *self.owner)
        return fd

    def _still_linked(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(LOCK_FILE, dir_fd=self.state_fd, follow_symlinks=False))
        except FileNotFoundError:
            return False

    @staticmethod
    def _write_pid(fd: int) -> None:
        # Only for the "held by pid N" message: a full disk must not stop the lock.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> str:
        try:
            data, _ = safefs.read_at(self.state_fd, LOCK_FILE, self.path) if self.state_fd is not None else (b"", None)
            pid = data.decode("ascii", "replace").strip()
            return f" (pid {pid})" if pid.isdigit() else ""
        except (OSError, JournalError):
            return ""

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            self.remove_if_unused()
        self.release()

    def release(self) -> None:
        if _held.get(self.prefix) is self:
            del _held[self.prefix]
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self._close()

    def _close(self) -> None:
        for name in ("state_fd", "prefix_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def journal_root(self, make: bool) -> int | None:
        """The descriptor of `.tritondoctor/journal` (checked; made when `make`), or None."""
        assert self.state_fd is not None, "the lock is not held"
        shown = os.path.join(self.state_dir, JOURNAL_DIR)
        if not make:
            try:
                fd = safefs.open_dir(JOURNAL_DIR, self.state_fd, shown)
            except FileNotFoundError:
                return None
            try:
                safefs.check_dir(fd, shown, self.trusted)
            except BaseException:
                os.close(fd)
                raise
            return fd
        return safefs.ensure_dir(JOURNAL_DIR, self.state_fd, shown, self.owner, self.trusted)[0]

    def sweep_garbage(self, root_fd: int) -> None:
        """Remove what dead runs left in the journal directory: dot-named directories (being
        created, dropped or undone) and journal directories without a manifest."""
        for name in os.listdir(root_fd):
            st = safefs.lstat_at(root_fd, name)
            if st is None or st.st_uid not in self.trusted:
                continue
            if is_garbage(name) or (stat.S_ISDIR(st.st_mode) and safefs.lstat_at(root_fd, f"{name}/{MANIFEST}") is None):
                safefs.rmtree_at(root_fd, name)

    def remove_if_unused(self) -> None:
        """While still held: remove the lock file, the journal directory and the state directory
        when no journal is left in them (an undone environment carries nothing of ours)."""
        if self.state_fd is None or self.prefix_fd is None:
            return
        with contextlib.suppress(OSError, JournalError):
            root = self.journal_root(make=False)
            if root is not None:
                try:
                    self.sweep_garbage(root)
                    empty = not os.listdir(root)
                finally:
                    os.close(root)
                if empty:
                    os.rmdir(JOURNAL_DIR, dir_fd=self.state_fd)
            if JOURNAL_DIR not in os.listdir(self.state_fd):
                os.unlink(LOCK_FILE, dir_fd=self.state_fd)
                os.rmdir(STATE_DIR, dir_fd=self.prefix_fd)  # fails, harmlessly, when not empty
