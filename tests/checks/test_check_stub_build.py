"""Fast tier: the `stub-build` check (RECORD hashes of the stub and python backend)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import stub_build as check

from tritondoctor.facts.pkgfiles import ForeignBinary


def test_skip_without_pytriton() -> None:
    sf.one(check, sf.without_pytriton(), Status.SKIP)


def test_skip_without_package_files() -> None:
    sf.one(check, sf.base(pkgfiles=None), Status.SKIP)


def test_ok_when_hashes_match() -> None:
    assert "RECORD hashes match" in sf.one(check, sf.base(), Status.OK).title


def test_foreign_binaries() -> None:
    foreign = (ForeignBinary(sf.STUB_311, "abc", "def"), ForeignBinary(sf.PYTHON_BACKEND_SO, "123", None))
    found = sf.one(check, sf.patch(sf.base(), "pkgfiles", foreign=foreign), Status.ERROR)
    assert found.title == f"not the files the wheel shipped: {sf.STUB_311}, {sf.PYTHON_BACKEND_SO}"
    assert found.fix is not None and found.fix.id == "reinstall-pytriton"
    assert found.evidence["foreign"][1]["actual"] is None
