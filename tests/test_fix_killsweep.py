"""SIGKILL `tritondoctor fix` at every write step of its journal, then `fix --undo` once: the
environment must be byte-identical to before (every file's hash and mode, every directory and
link) and no lock may be held.

TRITONDOCTOR_TEST_KILL_AT=N makes the run SIGKILL itself before its Nth change on disk (state
directory, lock, journal, backups, temporary files, renames, the environment's own files). The
sweep goes N = 1, 2, ... until a run gets to the end, on a real venv (venv-hooks) and on a real
conda prefix built with py-rattler (libstdcxx install + conda-hooks).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from fixkit import tree_state, tritondoctor, venv_activated

from tritondoctor.journal import PrefixBusy, PrefixLock

try:  # the conda prefix and its channel, as test_fix_conda builds them (py-rattler)
    from test_fix_conda import activated, channel, conda_env  # noqa: F401 - fixtures
except pytest.skip.Exception:
    activated = None

SWEEP_LOG = "TRITONDOCTOR_KILLSWEEP_LOG"


def fix_killed_at(step: int, args: tuple[str, ...], environ: Mapping[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritondoctor", "fix", "--yes", "--no-smoke", *args],
                          env=dict(environ, TRITONDOCTOR_TEST_KILL_AT=str(step)), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def assert_unlocked(prefix: Path) -> None:
    try:
        with PrefixLock(str(prefix), timeout=0):
            pass
    except PrefixBusy:  # pragma: no cover - the failure being tested for
        pytest.fail(f"{prefix}: a lock is still held")


def sweep(prefix: Path, args: tuple[str, ...], environ: Mapping[str, str]) -> int:
    """Kill at step 1, 2, ... (undoing after each) until a run completes; the number of kills."""
    pristine = tree_state(prefix)
    step = 1
    while True:
        killed = fix_killed_at(step, args, environ)
        undo = tritondoctor("fix", "--undo", environ=environ)
        where = f"killed at step {step}: fix rc={killed.returncode}\n{killed.stderr[-1500:]}\nundo: {undo.stderr}"
        assert "Traceback" not in undo.stderr and "internal error" not in undo.stderr, where
        nothing = "no fix to undo" in undo.stdout + undo.stderr
        assert undo.returncode == 0 or (undo.returncode == 1 and nothing), where
        assert tree_state(prefix) == pristine, where
        assert_unlocked(prefix)
        assert tree_state(prefix) == pristine, where  # the check itself left nothing behind
        if killed.returncode != -9:
            assert killed.returncode == 0, where
            assert undo.returncode == 0 and not nothing and "undone" in undo.stdout, where  # really undone
            return step - 1
        step += 1


def _log(name: str, kills: int, seconds: float) -> None:
    print(f"kill sweep {name}: {kills} kills in {seconds:.1f}s")
    path = os.environ.get(SWEEP_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{name} {kills} {seconds:.1f}\n")


def test_kill_sweep_venv(layered_venv, clean_environ: dict[str, str]) -> None:
    venv_dir = layered_venv("venv")
    environ = venv_activated(venv_dir, clean_environ)
    dry = tritondoctor("fix", "--dry-run", environ=environ)
    if "venv-hooks" not in dry.stdout:
        pytest.skip("nothing for venv-hooks to fix on this machine (no libpython mismatch)")
    start = time.monotonic()
    kills = sweep(venv_dir, (), environ)
    _log("venv", kills, time.monotonic() - start)
    assert kills >= 15


@pytest.mark.skipif(activated is None, reason="py-rattler or conda-package-handling is not installed")
def test_kill_sweep_conda(conda_env: Path, channel: dict[str, Path], clean_environ: dict[str, str]) -> None:
    environ = activated(conda_env, clean_environ)
    args = ("--package", str(channel["new"]))
    start = time.monotonic()
    kills = sweep(conda_env, args, environ)
    _log("conda", kills, time.monotonic() - start)
    assert kills >= 40


def undo_sweep(prefix: Path, environ: Mapping[str, str]) -> int:
    """Fix completely, SIGKILL `fix --undo` at its step 1, 2, ... and undo again after each: the
    environment must come back byte-identical every time; the number of kills."""
    pristine = tree_state(prefix)
    step = 1
    while True:
        fixed = fix_killed_at(0, (), dict(environ, TRITONDOCTOR_TEST_KILL_AT=""))
        assert fixed.returncode == 0, fixed.stderr
        killed = subprocess.run([sys.executable, "-m", "tritondoctor", "fix", "--undo"], capture_output=True,
                                text=True, stdin=subprocess.DEVNULL, timeout=300,
                                env=dict(environ, TRITONDOCTOR_TEST_KILL_AT=str(step)))
        again = tritondoctor("fix", "--undo", environ=environ)
        where = f"undo killed at step {step}: rc={killed.returncode}\n{killed.stderr[-1500:]}\nagain: {again.stderr}"
        assert "Traceback" not in again.stderr and "internal error" not in again.stderr, where
        assert again.returncode == 0, where
        assert tree_state(prefix) == pristine, where
        assert_unlocked(prefix)
        if killed.returncode != -9:
            assert killed.returncode == 0 and "no fix to undo" in again.stdout, where
            return step - 1
        step += 1


def test_kill_sweep_of_undo_venv(layered_venv, clean_environ: dict[str, str]) -> None:
    venv_dir = layered_venv("venv-undo")
    environ = venv_activated(venv_dir, clean_environ)
    dry = tritondoctor("fix", "--dry-run", environ=environ)
    if "venv-hooks" not in dry.stdout:
        pytest.skip("nothing for venv-hooks to fix on this machine (no libpython mismatch)")
    start = time.monotonic()
    kills = undo_sweep(venv_dir, environ)
    _log("venv-undo", kills, time.monotonic() - start)
    assert kills >= 5
