"""`tritondoctor fix` through the CLI when the environment fights back: a file it cannot write
(chattr +i) and a full disk under .tritondoctor. One clear line, exit 1, nothing changed, no lock."""

from __future__ import annotations

import pytest
from fixkit import tree_state, tritondoctor
from test_journal_failures import assert_unlocked, full_tmpfs, immutable


@pytest.fixture
def broken_venv(venv_needing_hooks):  # type: ignore[no-untyped-def]
    return venv_needing_hooks


def test_an_immutable_activate_script_is_rolled_back_truthfully(broken_venv) -> None:
    venv_dir, environ = broken_venv
    pristine = tree_state(venv_dir)
    with immutable(venv_dir / "bin" / "activate"):
        proc = tritondoctor("fix", "--yes", "--no-smoke", environ=environ)
        assert proc.returncode == 1, proc.stderr
        assert "everything was rolled back" in proc.stderr and "rolling back failed" not in proc.stderr
        assert "Traceback" not in proc.stderr
        assert tree_state(venv_dir) == pristine  # no journal, no lock file
        assert_unlocked(venv_dir)
        undo = tritondoctor("fix", "--undo", environ=environ)
        assert undo.returncode in (0, 1) and "no fix to undo" in undo.stdout + undo.stderr
    assert tree_state(venv_dir) == pristine


def test_a_full_disk_under_the_state_directory_via_the_cli(broken_venv) -> None:
    venv_dir, environ = broken_venv
    pristine = tree_state(venv_dir)
    with full_tmpfs(venv_dir / ".tritondoctor"):
        proc = tritondoctor("fix", "--yes", "--no-smoke", environ=environ)
        assert proc.returncode == 1, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.startswith("tritondoctor:")]
        assert len(lines) == 1 and "no space left on the device" in lines[0], proc.stderr
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
        assert_unlocked(venv_dir)
        after = {k: v for k, v in tree_state(venv_dir).items() if not k.startswith(".tritondoctor")}
        assert after == {k: v for k, v in pristine.items()}
