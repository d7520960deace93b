"""Fast tier: the `glibcxx` check (missing symbol versions in the closure)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import glibcxx as check

from tritondoctor.findings import SymbolVersionNeed
from tritondoctor.loader import VersionError
from tritondoctor.snapshot import PYTHON_BACKEND, STUB, TRITONSERVER

CONDA_LIB = "/opt/conda/lib"
OLD = f"{CONDA_LIB}/libstdc++.so.6"
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def _misses(*errors: VersionError, via: str = "ld_library_path") -> sf.Snapshot:
    old = sf.lib("libstdc++.so.6", OLD, via=via, search_dir=CONDA_LIB)
    server = sf.tree(sf.TRITONSERVER_BIN, old, version_errors=errors)
    return sf.base(resolutions={**sf.base().resolutions, TRITONSERVER: server})


def _err(version: str, file: str = OLD, by: str = sf.TRITONSERVER_BIN) -> VersionError:
    return VersionError(version=version, file=file, required_by=by, library="libstdc++.so.6")


def test_skip_without_binaries() -> None:
    sf.one(check, sf.without_pytriton(), Status.SKIP)


def test_ok_lists_the_libstdcxx_checked() -> None:
    found = sf.one(check, sf.base(), Status.OK)
    assert found.evidence["libstdcxx"] == [sf.LIBSTDCXX]


def test_glibcxx_missing_names_gcc_and_need() -> None:
    found = sf.one(check, _misses(_err("GLIBCXX_3.4.30")), Status.ERROR)
    assert f"{OLD} lacks GLIBCXX_3.4.30 (needed by 1 PyTriton file)" in found.title
    assert "found through ld_library_path" in found.title
    assert found.fix is not None and found.fix.id == "libstdcxx"
    assert found.need == SymbolVersionNeed("libstdc++.so.6", ("GLIBCXX_3.4.30",), OLD)
    assert found.evidence["min_gcc"] == "12.1.0" and found.evidence["conda_spec"] == "libstdcxx-ng>=12"
    assert any(f"take {CONDA_LIB} off LD_LIBRARY_PATH" in c for c in found.fix.commands)


def test_glibcxx_and_cxxabi_from_two_binaries_make_one_finding() -> None:
    snap = _misses(_err("GLIBCXX_3.4.30"), _err("CXXABI_1.3.13", by=sf.STUB_311))
    found = sf.one(check, snap, Status.ERROR)
    assert "lacks CXXABI_1.3.13, GLIBCXX_3.4.30 (needed by 2 PyTriton files)" in found.title
    assert isinstance(found.need, SymbolVersionNeed) and found.need.missing == ("CXXABI_1.3.13", "GLIBCXX_3.4.30")


def test_version_newer_than_any_known_gcc() -> None:
    found = sf.one(check, _misses(_err("GLIBCXX_3.4.99"), via="cache"), Status.ERROR)
    assert "newer than any GCC release" in found.detail and found.evidence["conda_spec"] is None
    assert found.fix is not None and not any("LD_LIBRARY_PATH" in c for c in found.fix.commands)


def test_glibc_too_old() -> None:
    found = sf.one(check, _misses(_err("GLIBC_2.34", file=LIBC)), Status.ERROR)
    assert "lacks GLIBC_2.34: this system's C library is too old" in found.title
    assert found.fix is not None and found.fix.id == "newer-os" and found.need is None


def test_other_library_version() -> None:
    found = sf.one(check, _misses(_err("LIBFOO_1.0", file="/opt/x/libfoo.so.1")), Status.ERROR)
    assert "lacks LIBFOO_1.0 (found through unknown)" in found.title
    assert found.fix is not None and found.fix.id == "libs"


def test_one_finding_per_provider_and_kind() -> None:
    snap = _misses(_err("GLIBCXX_3.4.30"), _err("GLIBC_2.34", file=LIBC))
    found = sf.run(check, snap)
    assert sf.fix_ids(found) == ["newer-os", "libstdcxx"]
    assert set(snap.resolutions) == {TRITONSERVER, PYTHON_BACKEND, STUB}
