"""The smoke run's supervisor: parent of the model script and owner of the run's process tree.

The runner starts it (`python supervisor.py`, tritondoctor's own interpreter and environment) in
a session of its own, with a pipe on stdin. The first line is the launch request (JSON: argv,
environment, events fd, run directory, token); later, "stop <grace>" asks it to end the run
(SIGINT to the script, then SIGKILL for the whole tree). End of file without "stop" - the runner
died, even by SIGKILL - or SIGTERM/SIGHUP (its parent-death signal included) means the run is
abandoned: it kills the whole tree at once and removes what the run left (see leftovers).

It is a child subreaper: whatever in the run loses its parent (tritonserver when the script dies,
the stub's helpers when the server dies) becomes its child, so nothing escapes the tree and
everything is reaped here rather than left to PID 1. When the script exits it writes a
`script-exit` event on the events pipe and lets go of the pipes, so the runner sees them close.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

if __package__:
    from tritondoctor.smoke import leftovers
else:  # run as a file by the runner: stay clear of tritondoctor's (slower) imports
    import leftovers  # type: ignore[no-redef, import-not-found]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
EXIT_ENDED = 0
EXIT_SURVIVORS = 3
EXIT_LAUNCH_FAILED = 4
KILL_WAIT_S = 5.0


class Abandoned(Exception):
    """The runner is gone: end everything now."""


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _abandon(_signum: int, _frame: Any) -> None:
    raise Abandoned


class Supervisor:
    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request
        self.workdir = str(request["workdir"])
        self.token = str(request["token"])
        self.events_fd: int | None = int(request["events_fd"])
        self.script: subprocess.Popen | None = None
        self.script_ident: dict[str, Any] | None = None
        self.script_code: int | None = None
        self.segments: set = set()

    def _record(self) -> None:
        leftovers.write_json(os.path.join(self.workdir, leftovers.SUPERVISOR_FILE),
                             {"supervisor": leftovers.identity(os.getpid()), "script": self.script_ident})

    def launch(self) -> bool:
        self._record()
        try:
            self.script = subprocess.Popen(
                self.request["argv"], env=self.request["env"], cwd=self.workdir,
                stdin=subprocess.DEVNULL, pass_fds=(self.events_fd,) if self.events_fd is not None else (),
            )
        except OSError as exc:
            self._emit({"ev": "launch-failed", "message": exc.strerror or str(exc)})
            return False
        self.script_ident = leftovers.identity(self.script.pid)
        self._record()
        return True

    def _emit(self, event: dict[str, Any]) -> None:
        if self.events_fd is None:
            return
        try:
            os.write(self.events_fd, (json.dumps(event) + "\n").encode())
        except OSError:
            pass

    def _script_exited(self, status: int) -> None:
        self.script_code = os.waitstatus_to_exitcode(status)
        self._emit({"ev": "script-exit", "code": self.script_code})
        # Let go of the runner's pipes: they close once the server (if any) is gone too.
        if self.events_fd is not None:
            os.close(self.events_fd)
            self.events_fd = None
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.script is not None and pid == self.script.pid and self.script_code is None:
                self._script_exited(status)

    def wait_for_stop(self) -> float:
        """Follow until the runner says "stop <grace>" (returns grace); Abandoned on its death."""
        buffered = b""
        while True:
            ready, _, _ = select.select([0], [], [], 0.1)
            if ready:
                data = os.read(0, 4096)
                if not data:
                    raise Abandoned
                buffered += data
                if b"\n" in buffered:
                    words = buffered.split(b"\n", 1)[0].split()
                    if words[:1] == [b"stop"]:
                        return float(words[1]) if len(words) > 1 else 0.0
                    buffered = b""
            self.reap()
            if os.getppid() != self.request.get("parent"):
                raise Abandoned

    def interrupt_script(self, grace: float) -> None:
        """SIGINT first: PyTriton then stops its server and cleans its workspace itself."""
        if self.script is None or self.script_code is not None or grace <= 0:
            return
        try:
            os.kill(self.script.pid, signal.SIGINT)
        except OSError:
            return
        deadline = time.monotonic() + grace
        while self.script_code is None and time.monotonic() < deadline:
            time.sleep(0.05)
            self.reap()

    def end_tree(self) -> list[int]:
        """SIGKILL every process of the run until none is left; returns those that would not go."""
        deadline = time.monotonic() + KILL_WAIT_S
        me = os.getpid()
        while True:
            members = (set(leftovers.descendants(me)) | set(leftovers.carrying(self.token))) - {me}
            alive = [pid for pid in members if leftovers.is_alive({"pid": pid})]
            self.segments |= leftovers.mapped_segments(alive)
            if not alive or time.monotonic() >= deadline:
                break
            leftovers.kill_all(alive)
            time.sleep(0.02)
            self.reap()
        self.reap()
        if not alive:
            leftovers.unlink_segments(self.segments)
            leftovers.unlink_segments(leftovers.script_segments(self.script_ident))
        return alive


def _read_request() -> dict[str, Any]:
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            raise Abandoned
        line += chunk
    try:
        request = json.loads(line.split(b"\n", 1)[0])
    except ValueError:  # "stop" before any request: the runner gave up while starting
        raise Abandoned from None
    if not isinstance(request, dict):
        raise Abandoned
    return request


def _setup() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the runner's "stop" ends the run gently
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _abandon)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _finish(supervisor: Supervisor | None, abandoned: bool) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})
    if supervisor is None:
        return EXIT_ENDED
    survivors = supervisor.end_tree()
    if abandoned:
        workdir = supervisor.workdir
        leftovers.remove_files(workdir, leftovers.read_json(os.path.join(workdir, leftovers.RUN_FILE)),
                               {"script": supervisor.script_ident})
    return EXIT_SURVIVORS if survivors else EXIT_ENDED


def run() -> tuple[int, bool]:
    supervisor: Supervisor | None = None
    try:
        _setup()
        supervisor = Supervisor(_read_request())
        if os.getppid() != supervisor.request.get("parent"):
            raise Abandoned  # the runner died before the parent-death signal was armed
        if not supervisor.launch():
            return _finish(supervisor, abandoned=False) or EXIT_LAUNCH_FAILED, False
        grace = supervisor.wait_for_stop()
        supervisor.interrupt_script(grace)
    except Abandoned:
        return _finish(supervisor, abandoned=True), True
    return _finish(supervisor, abandoned=False), False


def main() -> int:
    return run()[0]


if __name__ == "__main__":
    sys.exit(main())
