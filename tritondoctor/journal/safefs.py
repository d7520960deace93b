"""File operations relative to directory descriptors that never follow a symlink.

tritondoctor often runs as root on environments other users can write, so everything it writes
under `$PREFIX` is reached by walking from the prefix's descriptor one component at a time with
O_NOFOLLOW: a symlink planted anywhere on the way is refused instead of followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
from collections.abc import Iterator

from tritondoctor.journal.errors import JournalError, NoSpace, UnsafeState

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a planted FIFO must not block
TEMP_MARK = ".tdx-"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_FOLLOWED = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)

# Test hook: TRITONDOCTOR_TEST_KILL_AT=N makes this process SIGKILL itself at its Nth write step.
_kill_at = int(os.environ.get("TRITONDOCTOR_TEST_KILL_AT") or 0)
_steps = 0


def step() -> None:
    """Called before each change on disk (a kill point for the SIGKILL tests)."""
    global _steps
    if _kill_at:
        _steps += 1
        if _steps == _kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def no_space_as(where: str, after: str = "") -> Iterator[None]:
    """ENOSPC / EDQUOT become one line (NoSpace) naming `where`; other errors pass through."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise NoSpace(f"no space left on the device of {where} ({exc.strerror}){after}") from None
        raise


def trusted_uids(owner_uid: int) -> frozenset[int]:
    """Whose files tritondoctor believes: the environment's owner, root, and itself."""
    return frozenset({owner_uid, 0, os.geteuid()})


def is_root() -> bool:
    return os.geteuid() == 0


def open_dir(name: str, dir_fd: int | None, shown: str) -> int:
    """Open a directory without following a symlink; FileNotFoundError passes through."""
    try:
        return os.open(name, O_DIR, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _NOT_FOLLOWED:
            raise UnsafeState(f"{shown}: a symlink or not a directory; tritondoctor does not write through it, "
                              "nothing was changed") from None
        raise


def check_owned(st: os.stat_result, shown: str, trusted: frozenset[int]) -> None:
    if st.st_uid not in trusted:
        raise UnsafeState(f"{shown}: owned by uid {st.st_uid}, not by the environment's owner; "
                          "tritondoctor does not trust it, nothing was changed")


def check_dir(fd: int, shown: str, trusted: frozenset[int]) -> None:
    """A directory of ours: a trusted owner, and no one else may write into it (tightened when
    an older tritondoctor made it group- or world-writable)."""
    st = os.fstat(fd)
    check_owned(st, shown, trusted)
    if st.st_mode & 0o022:
        if st.st_uid != os.geteuid() and not is_root():
            raise UnsafeState(f"{shown}: writable by others; tritondoctor does not trust it, nothing was changed")
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o022)


def ensure_dir(name: str, dir_fd: int, shown: str, owner: tuple[int, int], trusted: frozenset[int],
               mode: int = 0o755) -> tuple[int, bool]:
    """Open (making it, `mode` or tighter whatever the umask) a directory of ours; (fd, created)."""
    created = False
    try:
        fd = open_dir(name, dir_fd, shown)
    except FileNotFoundError:
        step()
        try:
            os.mkdir(name, mode, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            pass
        fd = open_dir(name, dir_fd, shown)
        if created and is_root():
            os.fchown(fd, *owner)
    try:
        check_dir(fd, shown, trusted)
    except BaseException:
        os.close(fd)
        raise
    return fd, created


def temp_name(name: str) -> str:
    return f".{name}{TEMP_MARK}{os.getpid()}-{os.urandom(4).hex()}"


def fsync_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.fsync(fd)


def write_at(dir_fd: int, name: str, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Replace `name` in `dir_fd` with `data` through a new temporary file and a rename (a reader
    never sees half a file; `name`, if a symlink, is replaced, never followed)."""
    tmp = temp_name(name)
    step()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            os.fchmod(fd, stat.S_IMODE(mode))
            if owner is not None and is_root() and owner[0] >= 0:
                os.fchown(fd, owner[0], owner[1])
        finally:
            os.close(fd)
        step()
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    fsync_fd(dir_fd)


def symlink_at(dir_fd: int, name: str, target: str) -> None:
    tmp = temp_name(name)
    step()
    os.symlink(target, tmp, dir_fd=dir_fd)
    try:
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def read_at(dir_fd: int, name: str, shown: str, trusted: frozenset[int] | None = None,
            single_link: bool = False) -> tuple[bytes, os.stat_result]:
    """A regular file's bytes, never through a symlink; with `trusted`, only from a trusted owner;
    with `single_link`, not a hard link (another name for a file elsewhere)."""
    try:
        fd = os.open(name, O_READ, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _NOT_FOLLOWED:
            raise UnsafeState(f"{shown}: a symlink; tritondoctor does not read through it") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeState(f"{shown}: not a regular file")
        if trusted is not None:
            check_owned(st, shown, trusted)
        if single_link and st.st_nlink != 1:
            raise UnsafeState(f"{shown}: has {st.st_nlink} hard links; tritondoctor does not trust it")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def walk_to_parent(prefix_fd: int, rel: str, prefix: str, make: bool = False) -> int | None:
    """The descriptor of the directory holding `rel`, reached without following a symlink (None:
    a directory on the way is missing and `make` is False). The caller closes it."""
    fd = os.dup(prefix_fd)
    parts = rel.split("/")[:-1]
    try:
        for n, part in enumerate(parts):
            shown = os.path.join(prefix, *parts[: n + 1])
            try:
                nxt = open_dir(part, fd, shown)
            except FileNotFoundError:
                if not make:
                    os.close(fd)
                    return None
                step()
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                nxt = open_dir(part, fd, shown)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def rmtree_at(dir_fd: int, name: str) -> None:
    """Remove the tree `name` in `dir_fd`, never following a symlink (best effort)."""
    try:
        fd = os.open(name, O_DIR, dir_fd=dir_fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        return
    try:
        for entry in list(os.scandir(fd)):
            if entry.is_dir(follow_symlinks=False):
                rmtree_at(fd, entry.name)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=dir_fd)


def describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def refuse_not_ours(shown: str, why: str) -> JournalError:
    return UnsafeState(f"{shown}: {why}; tritondoctor does not trust it, nothing was changed")
