"""What a smoke run creates outside its own process, how it is marked, and how it is removed.

Every run owns one directory `tdsmoke-XXXXXXXX` under the temporary directory. Its `run.json`
(written by the runner) names the runner, the run's marker token, its model name and, when the
user set PYTRITON_HOME, the directories the run created there; `supervisor.json` (written by the
supervisor) names the supervisor and the model script; `workspace` (written by the model script)
names PyTriton's workspace. Whoever finds the run abandoned - its supervisor when the runner
dies, or a later run when both died - removes exactly those things: processes carrying the
run's token, /dev/shm segments of its model script, tritonserver's unpacked model folder with
the run's model name, the recorded workspace and created directories, and the run directory.

Standard library only: the supervisor loads this file without importing tritondoctor.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable
from typing import Any

PREFIX = "tdsmoke-"
RUN_FILE = "run.json"
SUPERVISOR_FILE = "supervisor.json"
WORKSPACE_FILE = "workspace"
MARKER_ENV = "TRITONDOCTOR_SMOKE_RUN"
# Segments a run's processes may leave: PyTriton's tensor store, the Python backend's region.
SHM_PREFIXES = ("pytrtion", "triton_python_backend_shm_region", "psm_")
# A run directory without run.json (killed right after creating it) is removed only this late.
UNRECORDED_AGE_S = 600.0


# --- processes, from /proc --------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; the command name may hold spaces and parens."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (with the pid, a unique identity)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def identity(pid: int) -> dict[str, Any]:
    return {"pid": pid, "start": start_time(pid)}


def is_alive(ident: dict[str, Any] | None) -> bool:
    """Whether the recorded process still runs (same pid and start time; a zombie counts as gone)."""
    if not ident or not ident.get("pid"):
        return False
    fields = _stat_fields(int(ident["pid"]))
    if not fields or fields[0] in ("Z", "X"):
        return False
    return ident.get("start") is None or int(fields[19]) == ident["start"]


def all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc: nothing can be found (tritonserver runs on Linux only)
        return []


def parents() -> dict[int, int]:
    out = {}
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields and len(fields) > 1:
            out[pid] = int(fields[1])
    return out


def descendants(root: int) -> list[int]:
    by_parent: dict[int, list[int]] = {}
    for pid, ppid in parents().items():
        by_parent.setdefault(ppid, []).append(pid)
    out: list[int] = []
    todo = list(by_parent.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(by_parent.get(pid, []))
    return out


def carrying(token: str) -> list[int]:
    """Processes whose environment holds this run's marker (every process the run started)."""
    needle = f"{MARKER_ENV}={token}".encode()
    found = []
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(pid)
    return found


def mapped_segments(pids: Iterable[int]) -> set[str]:
    """Names of the /dev/shm segments that these processes map and that a run may leave."""
    names: set[str] = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    parts = line.rstrip("\n").split(None, 5)
                    if len(parts) == 6 and parts[5].startswith("/dev/shm/"):
                        name = parts[5][len("/dev/shm/"):].replace(" (deleted)", "")
                        if name.startswith(SHM_PREFIXES):
                            names.add(name)
        except OSError:
            continue
    return names


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def reap_children() -> None:
    """Reap every exited child (as a subreaper: orphans of the run too)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# --- the record ------------------------------------------------------------------------------


def write_json(path: str, data: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a record."""
    partial = path + ".part"
    with open(partial, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(partial, path)


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_workspace(workdir: str) -> str | None:
    try:
        with open(os.path.join(workdir, WORKSPACE_FILE), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def missing_parents(path: str) -> list[str]:
    """The directories of `path` (itself included) that do not exist yet, deepest first."""
    out = []
    current = os.path.abspath(path)
    while current and not os.path.exists(current):
        out.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return out


# --- removing what a run left ----------------------------------------------------------------


def remove_model_folders(model_name: str) -> list[str]:
    """tritonserver unpacks a model loaded with inline files into /tmp/folderXXXXXX (the path is
    fixed in the server; TMPDIR does not move it) and removes it on unload, which a killed server
    never does. Remove ours, recognised by the run's unique model name."""
    removed = []
    wanted = f'name: "{model_name}"'
    for directory in glob.glob("/tmp/folder??????"):
        try:
            with open(os.path.join(directory, "config.pbtxt"), encoding="utf-8", errors="replace") as fh:
                first = fh.readline().strip()
        except OSError:
            continue
        if first == wanted:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def unlink_segments(names: Iterable[str]) -> None:
    for name in names:
        if name.startswith(SHM_PREFIXES) and "/" not in name:
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass


def script_segments(script: dict[str, Any] | None) -> list[str]:
    """PyTriton names its segments after the creating process: pytrtion<pid>-..."""
    if not script or not script.get("pid") or is_alive(script):
        return []
    return [os.path.basename(p) for p in glob.glob(f"/dev/shm/pytrtion{int(script['pid'])}-*")]


def remove_files(workdir: str, record: dict[str, Any] | None, supervisor: dict[str, Any] | None) -> None:
    """Everything but processes: segments, model folder, workspace, created dirs, the run dir."""
    unlink_segments(script_segments((supervisor or {}).get("script")))
    if record and record.get("model_name"):
        remove_model_folders(str(record["model_name"]))
    home = (record or {}).get("home")
    workspace = read_workspace(workdir)
    if home and workspace and os.path.dirname(workspace) == home and os.path.basename(workspace).startswith("workspace_"):
        shutil.rmtree(workspace, ignore_errors=True)
    for directory in (record or {}).get("home_created") or []:
        try:
            os.rmdir(directory)  # only when empty: the user may have put something there since
        except OSError:
            pass
    shutil.rmtree(workdir, ignore_errors=True)


def abandoned(workdir: str) -> bool:
    """Neither the runner nor the supervisor of this run is alive (or it has no record and is old)."""
    record = read_json(os.path.join(workdir, RUN_FILE))
    if record is None:
        try:
            return time.time() - os.stat(workdir).st_mtime > UNRECORDED_AGE_S
        except OSError:
            return False
    supervisor = read_json(os.path.join(workdir, SUPERVISOR_FILE)) or {}
    return not is_alive(record.get("runner")) and not is_alive(supervisor.get("supervisor"))


def clean_abandoned(workdir: str) -> None:
    record = read_json(os.path.join(workdir, RUN_FILE))
    supervisor = read_json(os.path.join(workdir, SUPERVISOR_FILE))
    token = (record or {}).get("token")
    if token:
        members = carrying(str(token))
        segments = mapped_segments(members)
        kill_all(members)
        unlink_segments(segments)
    remove_files(workdir, record, supervisor)


def run_dirs() -> list[str]:
    bases = {tempfile.gettempdir(), "/tmp"}
    found: set[str] = set()
    for base in bases:
        found.update(d for d in glob.glob(os.path.join(base, PREFIX + "*")) if os.path.isdir(d))
    return sorted(found)


def sweep_abandoned_runs(keep: Iterable[str] = ()) -> list[str]:
    """Clean every run directory whose run is over without having cleaned up; returns them."""
    skip = {os.path.abspath(p) for p in keep}
    cleaned = []
    for workdir in run_dirs():
        if os.path.abspath(workdir) not in skip and abandoned(workdir):
            clean_abandoned(workdir)
            cleaned.append(workdir)
    return cleaned
