"""A read-only view of an execution environment's files: an unpacked directory as it is, or a
conda-pack tarball read as a stream: the member list and the members asked for come out of one
pass, written into a private temporary directory (deleted by `close`). Never executes anything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

MAX_WALK = 2000  # files listed under one package directory


@dataclass(frozen=True)
class Member:
    kind: str  # "file", "dir", "link" (symbolic), "other"
    size: int
    linkname: str = ""


def _norm(name: str) -> str | None:
    """A member name relative to the environment; None for one that would leave it."""
    name = posixpath.normpath(name.lstrip("/"))
    if name in (".", "") or name.startswith("../") or name == "..":
        return None
    return name


class View:
    """Paths given to a view are relative to the environment root ("lib/python3.9")."""

    root: str

    def children(self, rel: str) -> set[str]:
        raise NotImplementedError

    def is_dir(self, rel: str) -> bool:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def files_under(self, rel: str) -> list[str]:
        raise NotImplementedError

    def local(self, rel: str) -> str:
        """Where the file can be read on this machine (once unpacked, for an archive)."""
        return os.path.join(self.root, rel)

    def ensure(self, wanted: Callable[[str], bool]) -> None:
        """Make the members `wanted` accepts readable under `local`."""

    def close(self) -> None:
        pass


class DirectoryView(View):
    def __init__(self, root: str) -> None:
        self.root = root

    def children(self, rel: str) -> set[str]:
        try:
            return set(os.listdir(self.local(rel)))
        except OSError:
            return set()

    def is_dir(self, rel: str) -> bool:
        return os.path.isdir(self.local(rel))

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.local(rel))

    def files_under(self, rel: str) -> list[str]:
        out: list[str] = []
        for dirpath, _dirs, files in os.walk(self.local(rel)):
            base = os.path.relpath(dirpath, self.root)
            out += [os.path.join(base, f) for f in files]
            if len(out) >= MAX_WALK:
                break
        return out[:MAX_WALK]


class ArchiveError(Exception):
    pass


class ArchiveView(View):
    """A tarball (gzip, bzip2 or xz, as tarfile detects), read as a stream: never seeks."""

    def __init__(self, path: str, wanted: Callable[[str], bool] | None = None) -> None:
        """Lists the members and, in the same pass, unpacks those `wanted` accepts."""
        self.path = path
        self.members: dict[str, Member] = {}
        self.tree: dict[str, set[str]] = {}
        self.extracted: set[str] = set()
        self.root = tempfile.mkdtemp(prefix="tritondoctor-env-")
        try:
            self._scan(wanted or (lambda _name: False))
        except BaseException:
            self.close()
            raise

    def _stream(self) -> Iterable[tuple[tarfile.TarFile, tarfile.TarInfo]]:
        """Members in archive order; a read error, here or while the caller reads a member's
        data, becomes ArchiveError (the caller wraps its loop in _reading)."""
        with _reading(), tarfile.open(self.path, mode="r|*") as tar:
            for info in tar:
                yield tar, info

    def _scan(self, wanted: Callable[[str], bool]) -> None:
        pending: set[str] = set()  # targets of unpacked links that come later in the stream
        with _reading():
            self._scan_stream(wanted, pending)
        if not self.members:
            raise ArchiveError("the archive holds no files")

    def _scan_stream(self, wanted: Callable[[str], bool], pending: set[str]) -> None:
        for tar, info in self._stream():
            name = _norm(info.name)
            if name is None:
                continue
            kind = "file" if info.isfile() else "dir" if info.isdir() else "link" if info.issym() else "other"
            self.members[name] = Member(kind, info.size if info.isfile() else 0, info.linkname if info.issym() else "")
            self._add_to_tree(name)
            if kind in ("file", "link") and (name in pending or wanted(name)):
                self._unpack_member(tar, info, name)
                target = self.link_target(name)
                if target:
                    pending.add(target)

    def _add_to_tree(self, name: str) -> None:
        parent, base = posixpath.split(name)
        self.tree.setdefault(parent, set()).add(base)
        while parent:
            parent, base = posixpath.split(parent)
            self.tree.setdefault(parent, set()).add(base)

    def children(self, rel: str) -> set[str]:
        return set(self.tree.get(_norm(rel) or "", set()))

    def is_dir(self, rel: str) -> bool:
        name = _norm(rel) or ""
        return name in self.tree or (self.members.get(name) or Member("", 0)).kind == "dir"

    def exists(self, rel: str) -> bool:
        name = _norm(rel) or ""
        return name in self.members or name in self.tree

    def files_under(self, rel: str) -> list[str]:
        prefix = (_norm(rel) or "") + "/"
        found = [n for n, m in self.members.items() if n.startswith(prefix) and m.kind in ("file", "link")]
        return sorted(found)[:MAX_WALK]

    def link_target(self, rel: str) -> str | None:
        member = self.members.get(rel)
        if member is None or member.kind != "link" or member.linkname.startswith("/"):
            return None
        return _norm(posixpath.join(posixpath.dirname(rel), member.linkname))

    def unpacked_bytes(self) -> int:
        return sum(m.size for m in self.members.values())

    def ensure(self, wanted: Callable[[str], bool]) -> None:
        todo = {n for n, m in self.members.items() if m.kind in ("file", "link") and n not in self.extracted and wanted(n)}
        # A symbolic link is only useful with what it points to.
        for name in list(todo):
            target = self.link_target(name)
            while target and target not in self.extracted and target not in todo and target in self.members:
                todo.add(target)
                target = self.link_target(target)
        if todo:
            with _reading():
                for tar, info in self._stream():
                    member = _norm(info.name)
                    if member is not None and member in todo and member not in self.extracted:
                        self._unpack_member(tar, info, member)

    def _unpack_member(self, tar: tarfile.TarFile, info: tarfile.TarInfo, name: str) -> None:
        dest = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if not os.path.realpath(os.path.dirname(dest)).startswith(os.path.realpath(self.root) + os.sep):
            return  # a directory link inside the archive points out of it
        if os.path.lexists(dest):
            return  # the archive holds the name twice: the first one stays
        if info.issym():
            os.symlink(info.linkname, dest)
        elif info.isfile():
            _write_member(tar, info, dest)
        self.extracted.add(name)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
        raise ArchiveError(_archive_reason(exc)) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # our own temporary directory is full: not the archive's fault
        raise ArchiveError(_archive_reason(exc)) from None


def _write_member(tar: tarfile.TarFile, info: tarfile.TarInfo, dest: str) -> None:
    source = tar.extractfile(info)
    if source is None:
        return
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def _archive_reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError) or "unexpected end" in str(exc).lower():
        return f"the archive is truncated ({exc})"
    return f"the archive cannot be read ({exc.__class__.__name__}: {exc})"
