"""The journal: backups before every change, byte-exact undo, the prefix lock, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fixkit import tree_state
from tritondoctor import journal
from tritondoctor.journal import Journal, PrefixBusy, PrefixLock, undo_last


def make_env(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    script = root / "bin" / "activate"
    script.write_bytes(b"# activate\r\necho \xff binary-ish\n")
    script.chmod(0o750)
    os.utime(script, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    (root / "lib" / "libfoo.so.1.2").write_bytes(b"\x7fELF old")
    (root / "lib" / "libfoo.so.1").symlink_to("libfoo.so.1.2")
    return root


def test_undo_restores_bytes_modes_links_and_removes_what_was_added(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    before = tree_state(env)
    mtime = os.lstat(env / "bin" / "activate").st_mtime_ns

    with PrefixLock(str(env)):
        j = Journal(str(env), ["test"])
        j.write_file(str(env / "bin" / "activate"), b"# new\n")
        j.write_file(str(env / "etc" / "conda" / "activate.d" / "x.sh"), b"echo hi\n")
        j.write_file(str(env / "lib" / "libfoo.so.1"), b"now a file")  # replaces the symlink itself
        j.remove(str(env / "lib" / "libfoo.so.1.2"))
        j.commit()
    assert (env / "bin" / "activate").read_bytes() == b"# new\n"
    assert os.stat(env / "bin" / "activate").st_mode & 0o777 == 0o750  # mode kept on rewrite
    assert not (env / "lib" / "libfoo.so.1").is_symlink()
    assert tree_state(env) != before

    result = undo_last(str(env))

    assert tree_state(env) == before  # including .tritondoctor/ gone and etc/conda/activate.d removed
    assert os.lstat(env / "bin" / "activate").st_mtime_ns == mtime
    assert set(result.removed) == {"etc/conda/activate.d/x.sh"}
    assert set(result.removed_dirs) == {"etc", "etc/conda", "etc/conda/activate.d"}


def test_undo_takes_the_last_fix_only_and_keeps_earlier_ones(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    states = [tree_state(env)]
    for n in (1, 2):
        with PrefixLock(str(env)):
            j = Journal(str(env), [f"fix{n}"])
            j.write_file(str(env / "bin" / "activate"), f"# version {n}\n".encode())
            j.commit()
        states.append(tree_state(env))
    assert undo_last(str(env)).fixes == ("fix2",)
    assert tree_state(env) == states[1]
    assert undo_last(str(env)).fixes == ("fix1",)
    assert tree_state(env) == states[0]
    with pytest.raises(journal.NothingToUndo):
        undo_last(str(env))
    assert tree_state(env) == states[0]


def test_undo_refuses_to_overwrite_a_later_user_edit_unless_forced(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    original = (env / "bin" / "activate").read_bytes()
    with PrefixLock(str(env)):
        j = Journal(str(env), ["t"])
        j.write_file(str(env / "bin" / "activate"), b"# fixed\n")
        j.commit()
    (env / "bin" / "activate").write_bytes(b"# fixed\n# the user's own later line\n")

    with pytest.raises(journal.JournalError, match="changed since the fix"):
        undo_last(str(env))
    assert (env / "bin" / "activate").read_bytes() == b"# fixed\n# the user's own later line\n"

    result = undo_last(str(env), force=True)
    assert (env / "bin" / "activate").read_bytes() == original
    kept = Path(result.kept_copies[0])
    assert kept.read_bytes() == b"# fixed\n# the user's own later line\n"  # never lost


def test_a_run_that_changes_nothing_leaves_no_journal(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    before = tree_state(env)
    with PrefixLock(str(env)) as lock:
        j = Journal(str(env), ["noop"])
        same = (env / "bin" / "activate").read_bytes()
        j.track(str(env / "bin" / "activate"))
        assert same  # tracked but unchanged
        j.commit()
        lock.remove_if_unused()
    assert tree_state(env) == before


def test_rollback_after_a_failed_apply(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    before = tree_state(env)
    with PrefixLock(str(env)) as lock:
        j = Journal(str(env), ["t"])
        j.write_file(str(env / "bin" / "activate"), b"half done\n")
        j.write_file(str(env / "new" / "dir" / "file"), b"x")
        assert j.rollback() == []
        lock.remove_if_unused()
    assert tree_state(env) == before


def test_paths_outside_the_environment_are_refused(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    outside = tmp_path / "bashrc"
    outside.write_text("# user's\n")
    with PrefixLock(str(env)) as lock:
        j = Journal(str(env), ["t"])
        with pytest.raises(journal.JournalError, match="outside the environment"):
            j.write_file(str(outside), b"export X=1\n")
        with pytest.raises(journal.JournalError, match="outside the environment"):
            j.write_file(str(env / ".." / "bashrc"), b"export X=1\n")
        j.commit()
        lock.remove_if_unused()
    assert outside.read_text() == "# user's\n"


HOLDER = textwrap.dedent("""
    import sys, time
    from tritondoctor.journal import PrefixLock
    with PrefixLock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold_lock(env: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(env), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_lock_refuses_after_its_timeout_and_names_the_holder(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    holder = hold_lock(env, 5)
    try:
        start = time.monotonic()
        with pytest.raises(PrefixBusy, match=rf"pid {holder.pid}.*nothing was changed"):
            with PrefixLock(str(env), timeout=0.3):
                pass
        assert 0.25 < time.monotonic() - start < 3
    finally:
        holder.kill()
        holder.wait()


def test_lock_waits_for_the_holder(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    holder = hold_lock(env, 0.6)
    try:
        with PrefixLock(str(env), timeout=30) as lock:
            assert lock.waited > 0.3
    finally:
        holder.wait()


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "f"
    for n in range(20):
        journal.atomic_write(str(target), f"{n}\n".encode() * 1000, 0o640)
    assert sorted(os.listdir(tmp_path)) == ["f"]
    assert target.read_bytes() == b"19\n" * 1000
    assert os.stat(target).st_mode & 0o777 == 0o640
