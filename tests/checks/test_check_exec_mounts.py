"""Fast tier: the `exec-mounts` check (/tmp noexec or small; the stub's exec bit).

The stub branch (no exec bit on a read-only or noexec mount) asks os.statvfs of the stub itself
inside the check, so synthetic facts cannot reach it: only its silent paths are covered here.
"""

from __future__ import annotations

import dataclasses

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import exec_mounts as check


def _tmp(**changes: object) -> sf.Snapshot:
    snap = sf.base()
    return sf.patch(snap, "host", tmp=dataclasses.replace(snap.host.tmp, **changes))


def test_skip_without_host_facts() -> None:
    assert sf.one(check, sf.base(host=None), Status.SKIP).title == "/tmp facts were not gathered"


def test_ok() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == "/tmp: exec allowed, 20 GiB free"
    assert sf.one(check, _tmp(free_bytes=None), Status.OK).title == "/tmp: exec allowed, ? free"


def test_noexec_tmp() -> None:
    found = sf.one(check, _tmp(noexec=True, mountpoint="/tmp"), Status.WARN)
    assert found.title == "/tmp is mounted noexec (/tmp)" and found.fix is not None and found.fix.id == "tmp-exec"


def test_small_tmp() -> None:
    found = sf.one(check, _tmp(free_bytes=100 * sf.MiB), Status.WARN)
    assert found.title == "/tmp has only 100 MiB free" and found.fix is not None and found.fix.id == "tmp-exec"


def test_stub_without_exec_bit_on_a_normal_mount_is_left_to_pytriton() -> None:
    snap = sf.patch(sf.base(), "pytriton", stub_executable={"3.11": False})
    sf.one(check, snap, Status.OK)
    sf.one(check, sf.without_pytriton(), Status.OK)
