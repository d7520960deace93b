"""Fast tier: the `loopback` check (an IPv4 loopback address)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import loopback as check

from tritondoctor.facts.hostlimits import LoopbackFacts


def _lo(v4: bool | None, v6: bool) -> sf.Snapshot:
    return sf.patch(sf.base(), "host", loopback=LoopbackFacts(v4, v6))


def test_skip() -> None:
    sf.one(check, sf.base(host=None), Status.SKIP)
    sf.one(check, _lo(None, True), Status.SKIP)


def test_ok() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == "127.0.0.1 is a local address (and ::1)"
    assert sf.one(check, _lo(True, False), Status.OK).title == "127.0.0.1 is a local address"


def test_ipv6_only() -> None:
    found = sf.one(check, _lo(False, True), Status.ERROR)
    assert found.title == "no 127.0.0.1 on this host (IPv6-only, ::1 present)"
    assert found.fix is not None and found.fix.id == "ipv4-loopback"
    assert "no ::1 either" in sf.one(check, _lo(False, False), Status.ERROR).title
