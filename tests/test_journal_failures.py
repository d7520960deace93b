"""Files fix cannot write (chattr +i, a read-only bind mount), a full disk under .tritondoctor,
and runs killed half way: rollback and undo tell the truth and leave no lock behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixkit import tree_state

from tritondoctor.journal import (
    Journal,
    JournalError,
    NoSpace,
    NothingToUndo,
    PrefixBusy,
    PrefixLock,
    undo_last,
)


def make_env(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "bin" / "activate").write_bytes(b"# activate\n")
    (root / "bin" / "activate.fish").write_bytes(b"# fish\n")
    (root / "lib" / "libold.so").write_bytes(b"\x7fELF old")
    (root / "lib" / "libfoo.so.1").symlink_to("libold.so")
    return root


def assert_unlocked(env: Path) -> None:
    try:
        with PrefixLock(str(env), timeout=0):
            pass
    except PrefixBusy:  # pragma: no cover
        pytest.fail("the lock is still held")


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True)


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    if _run("chattr", "+i", str(path)).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        yield
    finally:
        _run("chattr", "-i", str(path))


@contextlib.contextmanager
def read_only_bind(directory: Path) -> Iterator[None]:
    if _run("mount", "--bind", str(directory), str(directory)).returncode != 0:
        pytest.skip("cannot bind-mount here (not root, or no mount namespace rights)")
    try:
        if _run("mount", "-o", "remount,ro,bind", str(directory)).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        if _run("umount", str(directory)).returncode != 0:
            _run("umount", "-l", str(directory))


@contextlib.contextmanager
def full_tmpfs(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    if _run("mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(directory)).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        yield
    finally:
        if _run("umount", str(directory)).returncode != 0:
            _run("umount", "-l", str(directory))


@pytest.mark.parametrize("blocker", ["chattr", "read-only bind mount"])
def test_a_file_fix_cannot_write_is_reported_untouched_and_nothing_is_left(tmp_path: Path, blocker: str) -> None:
    env = make_env(tmp_path / "env")
    before = tree_state(env)
    guard = immutable(env / "bin" / "activate") if blocker == "chattr" else read_only_bind(env / "bin")
    with guard:
        with PrefixLock(str(env)):
            j = Journal(str(env), ["t"])
            j.write_file(str(env / "etc" / "conda" / "activate.d" / "x.sh"), b"echo\n")  # a real change first
            with pytest.raises(OSError):
                j.write_file(str(env / "bin" / "activate"), b"# fixed\n")
            assert j.rollback() == []
            report = j.last_rollback
        assert report is not None
        assert report.restored == ("etc/conda/activate.d/x.sh",)
        assert report.untouched == ("bin/activate",)  # never changed, so never "restored"
        assert set(report.removed_dirs) == {"etc", "etc/conda", "etc/conda/activate.d"}
        assert tree_state(env) == before  # no journal, no lock file
        assert_unlocked(env)
        with pytest.raises(NothingToUndo):
            undo_last(str(env))
    assert tree_state(env) == before


def test_a_full_disk_under_the_state_directory_is_one_clear_error(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    before = tree_state(env)
    with full_tmpfs(env / ".tritondoctor"):
        with pytest.raises(NoSpace, match=r"no space left on the device of .*\.tritondoctor.*nothing was changed"):
            with PrefixLock(str(env)):
                Journal(str(env), ["t"])
        assert_unlocked(env)
        assert sorted(os.listdir(env / ".tritondoctor")) == ["filler"]  # no journal, no lock left
        after = {k: v for k, v in tree_state(env).items() if not k.startswith(".tritondoctor")}
        assert after == {k: v for k, v in before.items()}


def test_nothing_to_undo_twice(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    with PrefixLock(str(env)):
        j = Journal(str(env), ["t"])
        j.write_file(str(env / "bin" / "activate"), b"# fixed\n")
        j.commit()
    undo_last(str(env))
    for _ in range(2):
        with pytest.raises(NothingToUndo, match="no fix to undo"):
            undo_last(str(env))
    assert not (env / ".tritondoctor").exists()


FIX_SCRIPT = textwrap.dedent("""
    import sys
    from tritondoctor.journal import Journal, PrefixLock
    env = sys.argv[1]
    with PrefixLock(env):
        j = Journal(env, ["t"])
        j.write_file(env + "/bin/activate", b"# fixed\\n")
        j.write_file(env + "/etc/conda/activate.d/x.sh", b"echo on\\n")
        j.write_file(env + "/etc/conda/deactivate.d/x.sh", b"echo off\\n")
        j.write_file(env + "/lib/libfoo.so.1", b"now a file")
        j.remove(env + "/lib/libold.so")
        j.track(env + "/bin/activate.fish")
        j.commit()
""")
UNDO_SCRIPT = "import sys\nfrom tritondoctor.journal import undo_last\nundo_last(sys.argv[1])\n"


def _killed(script: str, env: Path, step: int) -> int:
    return subprocess.run([sys.executable, "-c", script, str(env)], env=dict(os.environ, TRITONDOCTOR_TEST_KILL_AT=str(step)),
                          capture_output=True, timeout=60).returncode


def test_every_kill_point_of_a_fix_and_of_its_undo_is_undone(tmp_path: Path) -> None:
    """Journal-level sweep (cheap: no planning): a fix killed at each write step, then undo; then
    an undo killed at each of its write steps, then undo again."""
    env = make_env(tmp_path / "env")
    pristine = tree_state(env)
    counts = {"fix": 0, "undo": 0}
    for phase in ("fix", "undo"):
        step = 1
        while True:
            if phase == "undo":
                assert _killed(FIX_SCRIPT, env, 0) == 0
            code = _killed(FIX_SCRIPT if phase == "fix" else UNDO_SCRIPT, env, step)
            with contextlib.suppress(NothingToUndo):
                undo_last(str(env), timeout=0)
            assert tree_state(env) == pristine, f"{phase} killed at step {step}"
            assert_unlocked(env)
            if code != -9:
                assert code == 0
                break
            counts[phase] += 1
            step += 1
    print(f"journal-level kill points: {counts}")
    assert counts["fix"] >= 20 and counts["undo"] >= 5


def test_a_fix_after_an_interrupted_one_is_refused_until_undone(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    pristine = tree_state(env)
    assert _killed(FIX_SCRIPT, env, 14) == -9
    assert tree_state(env) != pristine
    with PrefixLock(str(env)):
        with pytest.raises(JournalError, match="interrupted tritondoctor fix.*fix --undo"):
            Journal(str(env), ["again"])
    undo_last(str(env))
    assert tree_state(env) == pristine
