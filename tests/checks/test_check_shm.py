"""Fast tier: the `shm` check (/dev/shm room and leftover segments)."""

from __future__ import annotations

import dataclasses

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import shm as check

from tritondoctor.facts.runtime import ServerProcess, ShmSegment


def _shm(container: str | None = None, servers: tuple[ServerProcess, ...] = (), **changes: object) -> sf.Snapshot:
    snap = sf.patch(sf.base(), "system", container=container)
    return sf.patch(snap, "runtime", shm=dataclasses.replace(snap.runtime.shm, **changes), servers=servers)


def _pytriton_segment(pid: int, alive: bool) -> ShmSegment:
    return ShmSegment(f"pytrtion{pid}-0badcafe", 4 * sf.MiB, "pytriton", pid, alive)


def _backend_segment(n: int) -> ShmSegment:
    return ShmSegment(f"triton_python_backend_shm_region_{n}", sf.MiB, "python_backend")


def _server(status: str) -> ServerProcess:
    return ServerProcess(pid=4242, name="tritonserver", status=status, ppid=4000, parent_alive=True)


def test_skip_without_facts() -> None:
    sf.one(check, sf.base(runtime=None), Status.SKIP)
    sf.one(check, sf.patch(sf.base(), "runtime", shm=None), Status.SKIP)


def test_ok() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == "/dev/shm: 1 GiB free of 1 GiB"


def test_missing_or_read_only() -> None:
    gone = sf.one(check, _shm(exists=False), Status.ERROR)
    assert "/dev/shm does not exist" in gone.title and gone.fix is not None and gone.fix.id == "shm-mount"
    ro = sf.one(check, _shm(writable=False), Status.ERROR)
    assert "/dev/shm is not writable" in ro.title and ro.fix is not None and ro.fix.id == "shm-mount"


def test_too_small_for_one_region() -> None:
    found = sf.one(check, _shm(free=2 * sf.MiB, total=64 * sf.MiB), Status.ERROR)
    assert found.title == "/dev/shm has 2 MiB free of 64 MiB: not enough for one python-backend instance (4 MiB)"
    assert found.fix is not None and found.fix.id == "shm-size" and "remount,size=1G" in found.fix.commands[0]


def test_small_warns_with_the_container_remedy() -> None:
    found = sf.one(check, _shm("docker", free=60 * sf.MiB, total=64 * sf.MiB), Status.WARN)
    assert "room for 15 python-backend instance(s)" in found.title
    assert found.fix is not None and found.fix.commands[0] == "docker run --shm-size=1g ..."
    podman = sf.one(check, _shm("podman", free=0), Status.ERROR)
    assert podman.fix is not None and podman.fix.commands[0] == "podman run --shm-size=1g ..."
    pod = sf.one(check, _shm("kubernetes", free=0), Status.ERROR)
    assert pod.fix is not None and "emptyDir" in pod.fix.commands[0]


def test_segments_of_dead_pytriton_processes() -> None:
    snap = _shm(segments=(_pytriton_segment(111, False), _pytriton_segment(222, True)))
    found = sf.run(check, snap)
    assert sf.statuses(found) == [Status.OK, Status.WARN]
    assert found[1].title == "1 shared-memory segment(s) left by dead PyTriton/Triton runs hold 4 MiB of /dev/shm"
    assert "(pids 111)" in found[1].detail and found[1].fix is not None and found[1].fix.id == "shm-cleanup"


def test_backend_regions_are_stale_only_without_a_running_server() -> None:
    segments = tuple(_backend_segment(n) for n in range(5))
    found = sf.run(check, _shm(segments=segments))
    assert found[1].fix is not None and len(found[1].fix.commands) == 2  # four names per rm
    assert "python_backend regions while no tritonserver runs" in found[1].detail
    assert len(sf.run(check, _shm(segments=segments, servers=(_server("sleeping"),)))) == 1
    assert len(sf.run(check, _shm(segments=segments, servers=(_server("zombie"),)))) == 2
