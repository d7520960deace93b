"""Fast tier: the `logind-ipc` check (systemd-logind RemoveIPC)."""

from __future__ import annotations

import dataclasses

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import logind_ipc as check


def _logind(**changes: object) -> sf.Snapshot:
    snap = sf.base()
    return sf.patch(snap, "host", logind=dataclasses.replace(snap.host.logind, **changes))


def test_skip_without_host_facts() -> None:
    sf.one(check, sf.base(host=None), Status.SKIP)


def test_ok_cases() -> None:
    assert "no systemd-logind configuration" in sf.one(check, _logind(logind_present=False, remove_ipc=True), Status.OK).title
    assert "RemoveIPC=no (/etc/systemd/logind.conf)" in sf.one(check, sf.base(), Status.OK).title
    system_user = sf.one(check, _logind(remove_ipc=True, source="default", uid=998), Status.OK)
    assert "uid 998 is a system user (<= 999)" in system_user.title


def test_remove_ipc_for_a_regular_user() -> None:
    found = sf.one(check, _logind(remove_ipc=True, source="default"), Status.WARN)
    assert found.title == "logind RemoveIPC=yes (default) deletes uid 1000's shared memory when its last session ends"
    assert found.fix is not None and found.fix.id == "logind-removeipc"
