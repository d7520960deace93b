"""Fast tier: the `host-arch` check (CPU emulation) over synthetic snapshots."""

from __future__ import annotations

import dataclasses

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import host_arch as check


def _emulation(**changes: object) -> sf.Snapshot:
    snap = sf.base()
    return sf.patch(snap, "host", emulation=dataclasses.replace(snap.host.emulation, **changes))


def test_skip_without_host_facts() -> None:
    sf.one(check, sf.base(host=None), Status.SKIP)


def test_ok_native() -> None:
    assert "native (no emulation)" in sf.one(check, sf.base(), Status.OK).title


def test_rosetta_is_fine() -> None:
    found = sf.one(check, _emulation(cpu_vendor="VirtualApple", arm_cpuinfo=True), Status.OK)
    assert "Rosetta" in found.title


def test_qemu_user_mode_is_an_error() -> None:
    found = sf.one(check, _emulation(arm_cpuinfo=True, cpu_vendor=None), Status.ERROR)
    assert "runs on ARM cores: CPU emulation (QEMU)" in found.title
    assert found.fix is not None and found.fix.id == "native-arch"


def test_foreign_binfmt_handlers_are_noted() -> None:
    found = sf.one(check, _emulation(qemu_handlers=(("qemu-aarch64", "/usr/bin/qemu-aarch64-static"),)), Status.OK)
    assert "binfmt_misc can emulate other architectures (qemu-aarch64)" in found.title


def test_handler_for_own_architecture_is_not_foreign() -> None:
    found = sf.one(check, _emulation(qemu_handlers=(("qemu-x86-64", "/usr/bin/qemu-x86_64"),)), Status.OK)
    assert "native (no emulation)" in found.title
