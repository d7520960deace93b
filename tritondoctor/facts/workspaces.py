"""PyTriton workspaces under PYTRITON_HOME, told apart into live and stale (catalog row 29).

PyTriton 0.7.0 copies ~22 MB of Triton into `$PYTRITON_HOME/workspace_XXXXXXXX` at each start
and removes it at a clean exit; a run killed with SIGKILL (OOM killer, notebook restart, CI
timeout) leaves it behind. A workspace is live when a running process uses it: its executable,
working directory, a command-line argument or an open file lies inside, or one of PyTriton's
AF_UNIX sockets bound inside it still exists in the kernel (/proc/net/unix). One created a
moment ago counts as live too: its server may still be starting.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts.inputs import EnvReads
from tritondoctor.facts.workspace import _dir_size

READS = pytriton_facts.READS | EnvReads(files=("/proc", "/proc/net/unix"))

PREFIX = "workspace_"
# A workspace younger than this may belong to a PyTriton that is still copying or starting.
STARTING_GRACE_S = 120.0


@dataclass(frozen=True)
class Workspace:
    path: str
    size: int = field(compare=False)  # moves while a live server writes; not the snapshot's identity
    age_s: float = field(compare=False)
    live: bool
    held_by: tuple[int, ...] = ()  # pids seen using it
    why_live: str = ""  # "pid 123 executable", "bound socket", "created 5 s ago"


@dataclass(frozen=True)
class WorkspaceScan:
    home: str
    workspaces: tuple[Workspace, ...] = ()
    error: Optional[str] = None

    @property
    def stale(self) -> tuple[Workspace, ...]:
        return tuple(w for w in self.workspaces if not w.live)

    @property
    def live(self) -> tuple[Workspace, ...]:
        return tuple(w for w in self.workspaces if w.live)


def _links(pid: str, proc: str) -> Iterable[str]:
    for name in ("exe", "cwd"):
        try:
            yield os.readlink(f"{proc}/{pid}/{name}")
        except OSError:
            pass
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as fh:
            for arg in fh.read().split(b"\0"):
                if arg:
                    yield arg.decode("utf-8", "replace")
    except OSError:
        pass
    try:
        fds = os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return
    for fd in fds:
        try:
            yield os.readlink(f"{proc}/{pid}/fd/{fd}")
        except OSError:
            pass


def _inside(text: str, roots: list[str]) -> Optional[str]:
    for root in roots:
        if root in text:  # an argument may be "--model-repository=<ws>/model-store"
            return root
    return None


def _users(roots: list[str], proc: str = "/proc") -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found
    me = str(os.getpid())
    for pid in pids:
        if pid == me:
            continue
        for text in _links(pid, proc):
            root = _inside(text, roots)
            if root is not None:
                found.setdefault(root, []).append(int(pid))
                break
    return found


def _bound_sockets(roots: list[str], proc: str = "/proc") -> set[str]:
    out: set[str] = set()
    try:
        with open(f"{proc}/net/unix", encoding="utf-8", errors="replace") as fh:
            next(fh, None)
            for line in fh:
                parts = line.split()
                root = _inside(parts[-1], roots) if len(parts) >= 8 else None
                if root is not None:
                    out.add(root)
    except OSError:
        pass
    return out


def _list(home: str) -> list[str]:
    try:
        with os.scandir(home) as it:
            return sorted(e.path for e in it if e.name.startswith(PREFIX) and e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def scan(home: str, proc: str = "/proc", now: Optional[float] = None) -> WorkspaceScan:
    paths = _list(home)
    if not paths:
        return WorkspaceScan(home)
    roots = [p + os.sep for p in paths]
    users = _users(roots, proc)
    sockets = _bound_sockets(roots, proc)
    now = time.time() if now is None else now
    out = []
    for path, root in zip(paths, roots):
        try:
            age = max(0.0, now - os.stat(path).st_mtime)
        except OSError:
            continue
        pids = tuple(sorted(users.get(root, ())))
        why = (f"used by pid {', '.join(map(str, pids))}" if pids else "a socket bound inside is open"
               if root in sockets else f"created {age:.0f} s ago (may be starting)" if age < STARTING_GRACE_S else "")
        out.append(Workspace(path, _dir_size(path), age, bool(why), pids, why))
    return WorkspaceScan(home, tuple(out))


def gather(environ: Mapping[str, str], home: Optional[str] = None) -> WorkspaceScan:
    home = home or pytriton_facts.pytriton_home(environ)
    try:
        return scan(home)
    except Exception as exc:  # never raise from a fact
        return WorkspaceScan(home, error=f"{exc.__class__.__name__}: {exc}")
