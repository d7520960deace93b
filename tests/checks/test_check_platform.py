"""Fast tier: the `platform` check over synthetic snapshots (no skip path: it always judges)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import platform as check


def _installed(version: str, tag: str, glibc: tuple[int, int], machine: str = "x86_64") -> sf.Snapshot:
    snap = sf.patch(sf.base(), "system", glibc=glibc, machine=machine)
    t = sf.patch(snap, "target", distributions=sf.distributions(nvidia_pytriton=version))
    return sf.patch(t, "pytriton", version=version, wheel_tags=(tag,))


def test_ok_names_os_glibc_and_the_fitting_wheel() -> None:
    found = sf.one(check, sf.base(), Status.OK)
    assert "glibc 2.35" in found.title and "0.7.0 wheel" in found.title and "fits" in found.title


def test_ok_without_pytriton_mentions_no_wheel() -> None:
    found = sf.one(check, sf.without_pytriton(), Status.OK)
    assert "wheel" not in found.title


def test_unsupported_machine() -> None:
    found = sf.one(check, sf.patch(sf.base(), "system", machine="ppc64le"), Status.ERROR)
    assert "no wheels for ppc64le" in found.title and found.fix is None


def test_no_glibc_musl() -> None:
    found = sf.one(check, sf.patch(sf.base(), "system", glibc=None, os_name="Alpine Linux v3.19"), Status.ERROR)
    assert "has no glibc" in found.title and found.fix is not None and found.fix.id == "glibc"


def test_wheel_for_another_architecture() -> None:
    snap = sf.patch(sf.base(), "system", machine="aarch64")
    found = sf.one(check, snap, Status.ERROR)
    assert "wheel is for x86_64, this machine is aarch64" in found.title
    assert found.fix is not None and found.fix.id == "reinstall-pytriton"
    assert "--force-reinstall nvidia-pytriton==0.7.0" in found.fix.commands[0]


def test_wheel_needs_newer_glibc() -> None:
    found = sf.one(check, _installed("0.7.0", sf.WHEEL_TAG, (2, 31)), Status.ERROR)
    assert "needs glibc >= 2.35, this system has 2.31" in found.title
    assert found.fix is not None and found.fix.id == "glibc"


def test_silent_fallback_to_0_2_5() -> None:
    found = sf.one(check, _installed("0.2.5", "py3-none-manylinux_2_31_x86_64", (2, 31)), Status.WARN)
    assert "0.2.5 is installed because glibc 2.31 is older than 2.35" in found.title
    assert found.fix is not None and found.fix.id == "glibc"


def test_old_release_on_new_glibc_is_fine() -> None:
    sf.one(check, _installed("0.2.5", "py3-none-manylinux_2_31_x86_64", (2, 35)), Status.OK)


def test_not_installed_no_wheel_at_all_on_old_glibc() -> None:
    snap = sf.patch(sf.without_pytriton(), "system", glibc=(2, 28))
    found = sf.one(check, snap, Status.ERROR)
    assert "no nvidia-pytriton wheel installs on x86_64 with glibc 2.28" in found.title


def test_not_installed_aarch64_below_2_35() -> None:
    snap = sf.patch(sf.without_pytriton(), "system", glibc=(2, 31), machine="aarch64")
    assert "no nvidia-pytriton wheel installs on aarch64" in sf.one(check, snap, Status.ERROR).title


def test_not_installed_only_the_old_release_fits() -> None:
    snap = sf.patch(sf.without_pytriton(), "system", glibc=(2, 31))
    found = sf.one(check, snap, Status.WARN)
    assert "can only install the old 0.2.5" in found.title and found.fix is not None and found.fix.id == "glibc"


def test_old_pip_cannot_read_pep600_tags() -> None:
    snap = sf.patch(sf.base(), "target", distributions=sf.distributions(pip="20.2.4"))
    found = sf.one(check, snap, Status.WARN)
    assert "pip 20.2.4 cannot read manylinux_2_35" in found.title
    assert found.fix is not None and found.fix.id == "upgrade-pip" and found.evidence["pip"] == "20.2.4"


def test_old_pip_adds_to_a_glibc_error() -> None:
    snap = _installed("0.7.0", sf.WHEEL_TAG, (2, 31))
    snap = sf.patch(snap, "target", distributions={**snap.target.distributions, "pip": sf.dist("pip", "19.3")})
    assert sf.statuses(sf.run(check, snap)) == [Status.ERROR, Status.WARN]


def test_tag_platforms_reads_every_spelling() -> None:
    assert check.tag_platforms("py3-none-manylinux_2_35_x86_64") == [((2, 35), "x86_64")]
    assert check.tag_platforms("py3-none-manylinux2014_aarch64") == [((2, 17), "aarch64")]
    assert check.tag_platforms("py3-none-linux_x86_64.any") == [(None, "x86_64"), (None, None)]
