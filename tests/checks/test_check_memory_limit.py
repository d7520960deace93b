"""Fast tier: the `memory-limit` check (the cgroup's memory limit)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import memory_limit as check

from tritondoctor.facts.hostlimits import MemoryLimit

FILE = "/sys/fs/cgroup/memory.max"


def _limit(limit: int | None, kills: int | None = None) -> sf.Snapshot:
    return sf.patch(sf.base(), "host", memory=MemoryLimit(limit, FILE if limit else None, 2, kills))


def test_skip_without_host_facts() -> None:
    sf.one(check, sf.base(host=None), Status.SKIP)


def test_no_limit() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == "no memory limit on this process's cgroup"
    assert "OOM killer already struck 2 time(s)" in sf.one(check, _limit(None, 2), Status.OK).title


def test_below_the_measured_peak() -> None:
    found = sf.one(check, _limit(200 * sf.MiB), Status.ERROR)
    assert found.title == f"the memory limit 200 MiB ({FILE}) is below what PyTriton needs to start"
    assert found.fix is not None and found.fix.id == "memory-limit"


def test_little_room_for_a_model() -> None:
    assert "leaves little for a model" in sf.one(check, _limit(512 * sf.MiB), Status.WARN).title


def test_enough() -> None:
    found = sf.one(check, _limit(4 * sf.GiB), Status.OK)
    assert found.title == f"memory limit 4 GiB ({FILE})" and found.fix is None


def test_enough_but_oom_kills_seen() -> None:
    found = sf.one(check, _limit(4 * sf.GiB, 1), Status.WARN)
    assert found.fix is not None and found.fix.id == "memory-limit"
