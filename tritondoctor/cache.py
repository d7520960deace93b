"""tritondoctor's on-disk caches: where they live and the one mechanism they share."""

from __future__ import annotations

import atexit
import json
import os
import threading
from typing import Any


def user_cache_base() -> str:
    return os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")


def cache_dir() -> str | None:
    """$TRITONDOCTOR_CACHE_DIR, else $XDG_CACHE_HOME/tritondoctor; an empty
    TRITONDOCTOR_CACHE_DIR turns the disk caches off (None)."""
    configured = os.environ.get("TRITONDOCTOR_CACHE_DIR")
    if configured is not None:
        return configured or None
    return os.path.join(user_cache_base(), "tritondoctor")


def make_private_dirs(directory: str) -> None:
    """Create `directory` and its missing parents 0755 or tighter whatever the umask (os.makedirs
    gives the parents 0777 minus the umask: world-writable under umask 000)."""
    missing = []
    path = os.path.abspath(directory)
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass


class UserCacheDir:
    """The directory cache_dir() names when a cache is first used (a module-level cache is made
    at import, before a test or an embedding caller has set TRITONDOCTOR_CACHE_DIR)."""


USER_CACHE_DIR = UserCacheDir()


class JsonCache:
    """A table of JSON values in memory, mirrored to one file in `directory` (None: memory only;
    USER_CACHE_DIR: cache_dir() at first use).

    Loaded on first use, written once when the process ends (atomically), least recently used
    entries dropped beyond `max_entries` so that the file stays quick to load.
    """

    def __init__(self, directory: str | None | UserCacheDir, filename: str, max_entries: int) -> None:
        self._directory = directory
        self._filename = filename
        self._max_entries = max_entries
        self._memory: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._loaded = False
        self._save_at_exit = False
        self._used: set[str] = set()
        self._lock = threading.Lock()

    @property
    def _file(self) -> str | None:
        if isinstance(self._directory, UserCacheDir):
            self._directory = cache_dir()
        return os.path.join(self._directory, self._filename) if self._directory else None

    def _load(self) -> None:
        self._loaded = True
        if not self._file:
            return
        try:
            with open(self._file, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, dict):
                self._memory.update(data)
        except (OSError, ValueError):
            pass

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if not self._loaded:
                self._load()
            hit = self._memory.get(key)
            if hit is not None:
                self._used.add(key)
            return hit

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            if not self._loaded:
                self._load()  # so that saving keeps what the file already held
            self._memory[key] = value
            self._used.add(key)
            if not self._dirty and self._file and not self._save_at_exit:
                # Written once when the process ends, not after every put: rewriting the whole
                # file per resolve made N resolves in one process cost O(N^2).
                atexit.register(self.save)
                self._save_at_exit = True
            self._dirty = True

    def save(self) -> None:
        """Write the disk copy atomically; a cache that cannot be written is silently skipped."""
        with self._lock:
            if not self._dirty or not self._file:
                return
            try:
                assert isinstance(self._directory, str)  # resolved by _file
                make_private_dirs(self._directory)
                # Least recently used first, so the file stays small enough to load in a few ms:
                # entries this run used go to the end, the oldest beyond the cap are dropped.
                order = [k for k in self._memory if k not in self._used] + [k for k in self._memory if k in self._used]
                kept = {k: self._memory[k] for k in order[-self._max_entries:]}
                import tempfile  # only when something new is written, at exit

                fd, tmp = tempfile.mkstemp(dir=self._directory, prefix=f".{self._filename}-")
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(kept, fh, separators=(",", ":"))
                os.replace(tmp, self._file)
                self._dirty = False
            except OSError:
                pass
