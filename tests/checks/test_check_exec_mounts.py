"""Fast tier: the `exec-mounts` check (/tmp noexec or small; the stub's exec bit).

The stub branch reads the install's `stub_on_frozen_fs` fact (read-only or noexec mount).
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


def test_stub_without_exec_bit_on_a_frozen_mount_is_an_error() -> None:
    snap = sf.patch(sf.base(), "pytriton", stub_executable={"3.11": False}, stub_on_frozen_fs={"3.11": True})
    found = [f for f in check.run(snap) if f.status is Status.ERROR]
    assert len(found) == 1 and "read-only or noexec" in found[0].title
    assert found[0].fix is not None and found[0].fix.id == "stub-exec"


def test_an_executable_stub_on_a_frozen_mount_is_fine() -> None:
    snap = sf.patch(sf.base(), "pytriton", stub_on_frozen_fs={"3.11": True})
    sf.one(check, snap, Status.OK)
