"""The environment is untrusted input: planted symlinks, hand-edited journals, other owners and a
permissive umask must never make `fix` or `fix --undo` act outside the environment."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable

import pytest
from fixkit import tree_state

from tritondoctor import cache
from tritondoctor.journal import (
    Journal,
    JournalError,
    PrefixLock,
    UnsafeState,
    undo_last,
)

OTHER_UID = 54321
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file another owner")


def make_env(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "activate").write_bytes(b"# activate\n")
    return root


def fixed_env(tmp_path: Path) -> tuple[Path, Path]:
    """An environment with one recorded fix; (env, its journal directory)."""
    env = make_env(tmp_path / "env")
    with PrefixLock(str(env)):
        j = Journal(str(env), ["t"])
        j.write_file(str(env / "bin" / "activate"), b"# fixed\n")
        j.write_file(str(env / "etc" / "hook.sh"), b"echo hi\n")
        j.commit()
    (journal,) = (env / ".tritondoctor" / "journal").iterdir()
    return env, journal


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_bytes(b"precious\n")
    return path


def test_a_planted_lock_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    env, target = make_env(tmp_path / "env"), victim(tmp_path)
    (env / ".tritondoctor").mkdir()
    (env / ".tritondoctor" / "lock").symlink_to(target)
    with pytest.raises(UnsafeState, match="symlink"):
        with PrefixLock(str(env), timeout=0):
            pass
    with pytest.raises(UnsafeState):
        undo_last(str(env), timeout=0)
    assert target.read_bytes() == b"precious\n"


def test_a_hard_linked_lock_is_never_truncated(tmp_path: Path) -> None:
    env, target = make_env(tmp_path / "env"), victim(tmp_path)
    (env / ".tritondoctor").mkdir()
    os.link(target, env / ".tritondoctor" / "lock")
    with pytest.raises(UnsafeState, match="hard links"):
        with PrefixLock(str(env), timeout=0):
            pass
    assert target.read_bytes() == b"precious\n"


def test_a_symlinked_state_directory_is_refused(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (env / ".tritondoctor").symlink_to(elsewhere)
    with pytest.raises(UnsafeState, match="symlink or not a directory"):
        with PrefixLock(str(env), timeout=0):
            Journal(str(env), ["t"])
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_journal_directory_is_refused(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (env / ".tritondoctor").mkdir(mode=0o755)
    (env / ".tritondoctor" / "journal").symlink_to(elsewhere)
    with pytest.raises(UnsafeState), PrefixLock(str(env), timeout=0):
        Journal(str(env), ["t"])
    assert list(elsewhere.iterdir()) == []


def _forge(journal: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = journal / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _entry(data: dict[str, Any], rel: str) -> dict[str, Any]:
    return next(e for e in data["entries"] if e["path"] == rel)


FORGERIES: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "a path leaving the prefix is deleted": lambda d, t: _entry(d, "etc/hook.sh").update(path="../victim"),
    "an absolute path": lambda d, t: _entry(d, "etc/hook.sh").update(path=str(t / "victim")),
    "a backup written to an arbitrary path": lambda d, t: _entry(d, "bin/activate").update(path="../victim"),
    "backup: /etc/shadow": lambda d, t: _entry(d, "bin/activate").update(backup="/etc/shadow"),
    "backup: ../../": lambda d, t: _entry(d, "bin/activate").update(backup="files/../../victim"),
    "a set-uid mode": lambda d, t: _entry(d, "bin/activate")["before"].update(mode=0o4755),
    "an unknown field": lambda d, t: _entry(d, "bin/activate").update(extra=1),
    "a created dir outside": lambda d, t: d["created_dirs"].append("../elsewhere"),
    "the state dir itself": lambda d, t: _entry(d, "etc/hook.sh").update(path=".tritondoctor/lock"),
    "a dot segment": lambda d, t: _entry(d, "etc/hook.sh").update(path="etc/./hook.sh"),
    "a backup with no sha256": lambda d, t: _entry(d, "bin/activate")["before"].pop("sha256"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_hand_edited_manifest_is_refused_before_anything_is_touched(tmp_path: Path, forgery: str) -> None:
    env, journal = fixed_env(tmp_path)
    target = victim(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    _forge(journal, lambda d: FORGERIES[forgery](d, tmp_path))
    state = tree_state(env)
    with pytest.raises(UnsafeState, match="not a journal this tritondoctor writes"):
        undo_last(str(env))
    assert target.read_bytes() == b"precious\n"
    assert (tmp_path / "elsewhere").is_dir()
    assert tree_state(env) == state


def test_a_backup_symlinked_to_a_secret_is_never_copied_in(tmp_path: Path) -> None:
    env, journal = fixed_env(tmp_path)
    secret = tmp_path / "shadow"
    secret.write_bytes(b"root:secret\n")
    secret.chmod(0o600)
    backup = journal / _entry(json.loads((journal / "manifest.json").read_text()), "bin/activate")["backup"]
    backup.unlink()
    backup.symlink_to(secret)
    with pytest.raises(JournalError, match="undo incomplete"):
        undo_last(str(env))
    assert (env / "bin" / "activate").read_bytes() == b"# fixed\n"
    assert not [p for p in env.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() == b"root:secret\n"]


def test_a_symlinked_directory_inside_the_env_is_not_followed_by_undo(tmp_path: Path) -> None:
    env, journal = fixed_env(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hook.sh").write_bytes(b"someone else's\n")
    (env / "etc" / "hook.sh").unlink()
    (env / "etc").rmdir()
    (env / "etc").symlink_to(elsewhere)  # undo would delete elsewhere/hook.sh through it
    with pytest.raises(UnsafeState, match="etc: a symlink or not a directory"):
        undo_last(str(env))
    assert (elsewhere / "hook.sh").read_bytes() == b"someone else's\n"
    assert (env / "bin" / "activate").read_bytes() == b"# fixed\n"  # refused before anything was undone


@root_only
def test_a_journal_from_another_owner_is_refused(tmp_path: Path) -> None:
    env, journal = fixed_env(tmp_path)
    forged = journal.parent / "29990101T000000.000000Z-1"  # newer: undo would pick it
    forged.mkdir()
    (forged / "manifest.json").write_bytes((journal / "manifest.json").read_bytes())
    (forged / "files").mkdir()
    for path in (forged / "files", forged / "manifest.json", forged):
        os.chown(path, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeState, match=f"owned by uid {OTHER_UID}"):
        undo_last(str(env))
    assert (env / "bin" / "activate").read_bytes() == b"# fixed\n"


@root_only
def test_a_state_directory_of_another_owner_is_refused(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    (env / ".tritondoctor").mkdir()
    os.chown(env / ".tritondoctor", OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeState, match=f"owned by uid {OTHER_UID}"):
        with PrefixLock(str(env), timeout=0):
            pass


@root_only
def test_as_root_the_state_belongs_to_the_environments_owner(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    for path in (env, env / "bin", env / "bin" / "activate"):
        os.chown(path, OTHER_UID, OTHER_UID)
    with PrefixLock(str(env)):
        j = Journal(str(env), ["t"])
        j.write_file(str(env / "bin" / "activate"), b"# fixed\n")
        j.commit()
    for path in [env / ".tritondoctor", *(env / ".tritondoctor").rglob("*")]:
        assert os.lstat(path).st_uid == OTHER_UID, path
    assert os.stat(env / "bin" / "activate").st_uid == OTHER_UID


def _loose(root: Path) -> list[str]:
    return [f"{p} {oct(stat.S_IMODE(os.lstat(p).st_mode))}" for p in [root, *root.rglob("*")]
            if not p.is_symlink() and stat.S_IMODE(os.lstat(p).st_mode) & 0o022]


def test_under_umask_000_nothing_is_group_or_world_writable(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    (env / "bin").chmod(0o755)
    old = os.umask(0)
    try:
        with PrefixLock(str(env)):
            j = Journal(str(env), ["t"])
            j.write_file(str(env / "bin" / "activate"), b"# fixed\n")
            j.write_file(str(env / "etc" / "conda" / "activate.d" / "x.sh"), b"echo\n")
            j.commit()
            assert _loose(env / ".tritondoctor") == []  # the lock file included
        memo = cache.JsonCache(str(tmp_path / "xdg" / "deep" / "tritondoctor"), "c.json", 10)
        memo.put("k", {"v": 1})
        memo.save()
    finally:
        os.umask(old)
    assert _loose(env / ".tritondoctor") == []
    assert _loose(env / "etc") == []
    assert _loose(tmp_path / "xdg") == []


def test_a_world_writable_state_directory_left_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    (env / ".tritondoctor" / "journal").mkdir(parents=True)
    (env / ".tritondoctor").chmod(0o777)
    (env / ".tritondoctor" / "journal").chmod(0o777)
    with PrefixLock(str(env)):
        j = Journal(str(env), ["t"])
        j.write_file(str(env / "bin" / "activate"), b"# fixed\n")
        j.commit()
    assert _loose(env / ".tritondoctor") == []
