"""Fast tier: the `workspace` check (PYTRITON_HOME: writable, exec, room, socket paths)."""

from __future__ import annotations

import dataclasses

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import workspace as check


def _ws(**changes: object) -> sf.Snapshot:
    snap = sf.base()
    return sf.patch(snap, "runtime", workspace=dataclasses.replace(snap.runtime.workspace, **changes))


def test_skip_without_facts() -> None:
    sf.one(check, sf.base(runtime=None), Status.SKIP)
    found = sf.one(check, sf.patch(sf.base(), "runtime", workspace=None, errors=("mount table: unreadable",)), Status.SKIP)
    assert found.detail == "mount table: unreadable"


def test_ok() -> None:
    found = sf.one(check, sf.base(), Status.OK)
    assert f"PYTRITON_HOME {sf.PYTRITON_HOME} (default): writable, exec allowed, 50 GiB free" in found.title
    assert "model names up to 40 characters" in found.title and "22 MiB" in found.detail


def test_label_names_the_variable() -> None:
    assert "(from XDG_CACHE_HOME)" in sf.one(check, _ws(configured_by="XDG_CACHE_HOME")).title
    assert f"PYTRITON_HOME {sf.PYTRITON_HOME}:" in sf.one(check, _ws(configured_by="PYTRITON_HOME")).title


def test_blocked_by_a_file() -> None:
    found = sf.one(check, _ws(blocker=f"{sf.HOME}/.cache", fallback_home="/tmp/pt"), Status.ERROR)
    assert f"cannot be created: {sf.HOME}/.cache is a file" in found.title
    assert found.fix is not None and found.fix.id == "pytriton-home" and found.fix.commands[0] == "export PYTRITON_HOME=/tmp/pt"


def test_not_writable() -> None:
    ro = sf.one(check, _ws(writable=False, read_only_fs=True, running_as_root=True), Status.ERROR)
    assert "is not writable (a read-only file system at" in ro.title and "Running as root does not help" in ro.detail
    denied = sf.one(check, _ws(writable=False, write_error="Permission denied (errno 13)"), Status.ERROR)
    assert "(Permission denied (errno 13) at" in denied.title
    assert "(no write permission at" in sf.one(check, _ws(writable=False)).title


def test_noexec_mount() -> None:
    found = sf.one(check, _ws(noexec=True, mountpoint="/home"), Status.ERROR)
    assert "is on a noexec mount (/home)" in found.title and found.fix is not None and found.fix.id == "pytriton-home"


def test_disk_full() -> None:
    found = sf.one(check, _ws(free_bytes=10 * sf.MiB), Status.ERROR)
    assert "has 10 MiB free; each PyTriton server copies 22 MiB there" in found.title


def test_socket_paths() -> None:
    long = sf.one(check, _ws(socket_name_budget=0), Status.ERROR)
    assert "too long for PyTriton's sockets" in long.title and "the limit is 107" in long.title
    short = sf.one(check, _ws(socket_name_budget=10), Status.WARN)
    assert "model names of at most 10 characters" in short.title


def test_two_problems_at_once() -> None:
    found = sf.run(check, _ws(noexec=True, socket_name_budget=-3))
    assert sf.statuses(found) == [Status.ERROR, Status.ERROR]
