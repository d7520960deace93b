"""Two `tritondoctor fix` runs on one environment: one waits (or gives up with a clear message);
the environment ends up changed once, with no half-written file and one journal entry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fixkit import own_libdir, tree_state, tritondoctor, venv_activated
from tritondoctor import hooks

HOLDER = textwrap.dedent("""
    import sys, time
    from tritondoctor.journal import PrefixLock
    with PrefixLock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold_lock(prefix: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(prefix), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def broken_venv(venv_needing_hooks):  # type: ignore[no-untyped-def]
    return venv_needing_hooks


def test_a_run_that_cannot_get_the_lock_refuses_and_changes_nothing(broken_venv) -> None:
    venv_dir, environ = broken_venv
    pristine = tree_state(venv_dir)
    holder = hold_lock(venv_dir, 30)
    try:
        proc = tritondoctor("fix", "--yes", "--no-smoke", environ=dict(environ, TRITONDOCTOR_LOCK_TIMEOUT="1"))
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1
    assert f"another tritondoctor fix is changing {venv_dir}" in proc.stderr
    assert f"(pid {holder.pid})" in proc.stderr and "nothing was changed" in proc.stderr
    assert "Traceback" not in proc.stderr
    state = tree_state(venv_dir)
    assert {k: v for k, v in state.items() if not k.startswith(".tritondoctor")} == pristine


def test_two_concurrent_runs_change_the_environment_once(broken_venv) -> None:
    venv_dir, environ = broken_venv
    pristine = tree_state(venv_dir)
    original = (venv_dir / "bin" / "activate").read_text()
    # Both runs plan while a third process holds the lock, so both must wait; the first to get
    # it applies, the second finds the files changed under it, plans again and has nothing to do.
    holder = hold_lock(venv_dir, 3)
    runs = [subprocess.Popen([sys.executable, "-m", "tritondoctor", "fix", "--yes", "--no-smoke"], env=environ,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
            for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in runs]
    holder.wait()

    assert [r.returncode for r in runs] == [0, 0], outputs
    assert sum("already made these changes" in out for out, _ in outputs) == 1
    text = (venv_dir / "bin" / "activate").read_text()
    assert text.count(hooks.BEGIN) == 2 and text.count(hooks.END) == 2  # one restore + one apply block
    assert hooks.strip_blocks(text) == original  # whole blocks, nothing else touched
    assert len(list((venv_dir / ".tritondoctor" / "journal").iterdir())) == 1
    assert not [p for p in (venv_dir / "bin").iterdir() if ".tdx-" in p.name]  # no temporary file left
    activated = venv_activated(venv_dir, environ)
    assert activated["LD_LIBRARY_PATH"] == own_libdir()

    undo = tritondoctor("fix", "--undo", environ=environ)
    assert undo.returncode == 0, undo.stderr
    assert tree_state(venv_dir) == pristine
