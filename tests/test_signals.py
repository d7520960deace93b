"""The one signal policy, for real: SIGINT and SIGTERM sent to `python -m tritondoctor` processes
at every moment of start-up and while a command is busy end with the "interrupted" line, the JSON
object under --json, exit 130 / 143, no traceback and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import tritondoctor

PACKAGE_DIR = os.path.dirname(os.path.abspath(tritondoctor.__file__))
STATUS: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


def base_environ(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, TRITONDOCTOR_CACHE_DIR="", XDG_CACHE_HOME=str(tmp_path / "cache"))


def hanging_python(directory: Path) -> Path:
    """A target whose interpreter probe never answers (and which starts a child of its own)."""
    script = directory / "python"
    script.write_text("#!/bin/sh\nsleep 300 &\nsleep 300\n")
    script.chmod(0o755)
    return script


def gone(proc: psutil.Process) -> bool:
    """Ended; a zombie waiting for PID 1 to reap it (containers' PID 1 may be slow to) is ended."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def assert_all_gone(procs: list[psutil.Process], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not all(gone(p) for p in procs):
        time.sleep(0.02)
    left = [f"{p.pid} {p.cmdline()}" for p in procs if not gone(p)]
    assert not left, f"left running: {left}"


def assert_interrupted(returncode: int, stdout: str, stderr: str, signum: int, json_out: bool = True) -> None:
    name = signal.Signals(signum).name
    assert returncode == STATUS[signum], (returncode, stdout, stderr)
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines() == [f"tritondoctor: interrupted ({name}); everything started was stopped"], stderr
    if json_out:
        assert json.loads(stdout) == {"interrupted": True, "signal": name, "exit_status": STATUS[signum]}


def descendants_when_busy(proc: subprocess.Popen[str], within: float = 60.0) -> list[psutil.Process]:
    """Wait until the hanging probe runs under `proc`: its shell and both sleeps (own session)."""
    root = psutil.Process(proc.pid)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = _tree(root)
        if sum(1 for p in found if _name(p) == "sleep") >= 2:
            return found
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"{proc.args!r} never got busy")


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return ""


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


# --- a busy command: the probe of a target that hangs ------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("command", [["check", "--json"], ["fix", "--dry-run", "--json"]], ids=["check", "fix"])
def test_signal_during_a_busy_command_stops_everything(command: list[str], signum: int, tmp_path: Path) -> None:
    target = hanging_python(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "tritondoctor", *command, "--python", str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base_environ(tmp_path))
    try:
        # The probe's shell and its two sleeps: the command is busy inside the probe.
        children = descendants_when_busy(proc)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert_interrupted(proc.returncode, stdout, stderr, signum)
    assert_all_gone(children)


def test_signal_after_the_command_finished_does_not_change_it(tmp_path: Path) -> None:
    """The status is decided once the output is written: a signal during the exit path (the caches'
    atexit writes) changes nothing and is never a traceback from atexit."""
    code = ("import atexit, os, signal; from tritondoctor import cli; "
            "atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM)); "
            "cli.run = lambda argv: 1; cli.main(['version'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=False, env=base_environ(tmp_path))
    assert (proc.returncode, proc.stderr) == (1, "")


# --- start-up: a signal at a precise moment, chosen by counting function calls -----------------

# Runs `python -m tritondoctor check --json` as runpy does for -m, and sends itself the signal at
# the Nth Python function call made once tritondoctor/__main__.py runs: every step of start-up
# (imports of cli, typer, rich, the commands; option parsing; the snapshot) for some N. (A signal
# before __main__'s first line is Python's: see the delay test below.)
DRIVER = r"""
import os, runpy, signal, sys
main_file = os.path.join(os.environ["TD_PACKAGE_DIR"], "__main__.py")
at = int(os.environ["TD_AT_CALL"])
signum = int(os.environ["TD_SIGNAL"])
started, calls = False, 0
def hook(frame, event, arg):
    global started, calls
    if event != "call":
        return None
    if not started:
        started = frame.f_code.co_filename == main_file
        return None
    calls += 1
    if calls == at:
        sys.settrace(None)
        with open(os.environ["TD_REPORT"], "w") as fh:
            fh.write("policy" if callable(signal.getsignal(signal.SIGTERM)) else "default")
        os.kill(os.getpid(), signum)
    return None
sys.settrace(hook)
runpy.run_module("tritondoctor", run_name="__main__", alter_sys=True)
"""

CALL_COUNTS = [1, 2, 5, 20, 60, 200, 700, 2500, 9000, 30000]


def run_interrupted_at(call: int, signum: int, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    report = tmp_path / f"fired-{call}-{signum}"
    env = dict(base_environ(tmp_path), TD_PACKAGE_DIR=PACKAGE_DIR, TD_AT_CALL=str(call), TD_SIGNAL=str(signum),
               TD_REPORT=str(report))
    proc = subprocess.run([sys.executable, "-c", DRIVER, "check", "--json"], capture_output=True, text=True, check=False,
                          env=env, timeout=120)
    return proc, report.read_text() if report.exists() else ""


@pytest.mark.parametrize("call", CALL_COUNTS)
def test_sigint_at_every_step_of_start_up_is_the_interrupted_line(call: int, tmp_path: Path) -> None:
    proc, fired = run_interrupted_at(call, signal.SIGINT, tmp_path)
    if not fired:  # start-up and the whole check took fewer calls: it finished normally
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
        return
    assert_interrupted(proc.returncode, proc.stdout, proc.stderr, signal.SIGINT)


@pytest.mark.parametrize("call", CALL_COUNTS)
def test_sigterm_at_every_step_of_start_up_is_the_interrupted_line(call: int, tmp_path: Path) -> None:
    proc, fired = run_interrupted_at(call, signal.SIGTERM, tmp_path)
    if not fired:
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
        return
    if fired == "default":  # inside __main__'s signal.signal(SIGTERM, ...): the default action
        assert proc.returncode == -signal.SIGTERM and not proc.stderr and not proc.stdout
        return
    assert_interrupted(proc.returncode, proc.stdout, proc.stderr, signal.SIGTERM)


def test_the_call_counts_reach_past_start_up(tmp_path: Path) -> None:
    """The largest count fires while check is still working (else the sweep above proves less)."""
    _, fired = run_interrupted_at(CALL_COUNTS[-1], signal.SIGINT, tmp_path)
    assert fired == "policy"


# --- start-up: a signal after a delay, as a user's Ctrl-C comes -------------------------------


def package_frames(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip().startswith("File ") and PACKAGE_DIR in line]


@pytest.mark.parametrize("delay", [0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2])
def test_ctrl_c_after_a_delay_never_shows_a_traceback_from_tritondoctor(delay: float, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tritondoctor", "check", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=base_environ(tmp_path))
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == -signal.SIGINT or "Traceback" in stderr:
        # Python's own start-up (before its handler exists: killed; in site or runpy: Python's
        # traceback) runs before any line of tritondoctor; nothing of ours may be in it.
        assert proc.returncode in (1, -signal.SIGINT) and not package_frames(stderr), stderr
        return
    if proc.returncode in (0, 1):
        assert "interrupted" not in json.loads(stdout), stdout  # it finished first
        return
    assert_interrupted(proc.returncode, stdout, stderr, signal.SIGINT)
