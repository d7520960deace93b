"""Fast tier: the `libpython` check (what the stub's libpython resolves to)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import libpython as check

from tritondoctor.findings import LoaderPathNeed
from tritondoctor.snapshot import STUB

DEBIAN = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"
GRAFTED = "libpython313-0a1b2c3d.so.1.0"


def _loads(path: str | None, version: str | None = None, **facts: object) -> sf.Snapshot:
    """The stub's libpython resolves to `path` (None: not found), another file than the own one."""
    resolved = sf.libpython_lib(path, via="cache") if path else sf.libpython_lib(None)
    changes = dict(resolved=resolved, resolved_version=version, same_file=False, **facts)
    return sf.patch(sf.base(), "libpython", **changes)


def test_skip_without_stub_resolution() -> None:
    snap = sf.base()
    sf.one(check, sf.base(resolutions={k: v for k, v in snap.resolutions.items() if k != STUB}), Status.SKIP)
    sf.one(check, sf.base(libpython=None), Status.SKIP)
    sf.one(check, sf.without_pytriton(), Status.SKIP)


def test_ok_own_libpython() -> None:
    assert f"this interpreter's own {sf.LIBPYTHON}" in sf.one(check, sf.base(), Status.OK).title


def test_ok_static_stub() -> None:
    found = sf.one(check, sf.patch(sf.base(), "libpython", needed=None), Status.OK)
    assert "does not link libpython dynamically" in found.title


def test_interpreter_without_shared_libpython() -> None:
    snap = sf.patch(_loads(None), "target", enable_shared=False)
    found = sf.one(check, snap, Status.ERROR)
    assert "built without a shared libpython" in found.title and "none is found" in found.title
    assert found.fix is not None and found.fix.id == "rebuild-python"
    snap = sf.patch(_loads(DEBIAN, "3.11.2"), "target", enable_shared=False)
    assert f"the loader finds {DEBIAN} (3.11.2)" in sf.one(check, snap, Status.ERROR).title


def test_not_found_and_no_own_copy() -> None:
    found = sf.one(check, _loads(None, own_dir=None, own_path=None), Status.ERROR)
    assert "own copy was not found either" in found.title and found.fix is None and found.need is None


def test_not_on_the_search_path() -> None:
    found = sf.one(check, _loads(None), Status.ERROR)
    assert f"cannot find {sf.LIBPYTHON}: {sf.OWN_LIBDIR} is not on the loader's search path" in found.title
    assert found.fix is not None and found.fix.id == "venv-hooks"
    assert found.need == LoaderPathNeed(sf.OWN_LIBDIR, sf.LIBPYTHON)


def test_sysconfig_libdir_that_does_not_exist_is_explained() -> None:
    found = sf.one(check, _loads(None, libdir_exists=False), Status.ERROR)
    assert "old uv Pythons" in found.detail and found.evidence["sysconfig_libdir"] == sf.OWN_LIBDIR


def test_another_build_of_another_version() -> None:
    found = sf.one(check, _loads(DEBIAN, "3.11.2"), Status.ERROR)
    assert f"loads {DEBIAN} (Python 3.11.2) instead of this interpreter's" in found.title
    assert found.fix is not None and found.fix.id == "venv-hooks"
    assert isinstance(found.need, LoaderPathNeed) and found.need.libdir == sf.OWN_LIBDIR


def test_another_build_of_the_same_version_is_a_warning() -> None:
    found = sf.one(check, _loads(DEBIAN, "3.11.7"), Status.WARN)
    assert "same version number, but another build" in found.title


def test_mismatch_without_own_directory_has_no_need() -> None:
    found = sf.one(check, _loads(DEBIAN, "3.11.2", own_dir=None, own_path=None), Status.ERROR)
    assert found.need is None


def test_bundled_cpython_of_the_same_version() -> None:
    snap = _loads(f"{sf.LIBS_DIR}/{GRAFTED}", "3.13.0", needed=GRAFTED)
    snap = sf.patch(snap, "target", version=(3, 13, 0), version_string="3.13.0")
    assert "bundled CPython 3.13.0, the same version" in sf.one(check, snap, Status.OK).title


def test_bundled_cpython_of_another_version() -> None:
    snap = _loads(f"{sf.LIBS_DIR}/{GRAFTED}", "3.13.0", needed=GRAFTED)
    snap = sf.patch(snap, "target", version=(3, 13, 1), version_string="3.13.1")
    found = sf.one(check, snap, Status.ERROR)
    assert "bundled CPython 3.13.0" in found.title and "this interpreter is 3.13.1" in found.title
    assert found.fix is not None and found.fix.id == "python-version"


def test_fix_follows_the_kind_of_environment(tmp_path: Path) -> None:
    system = sf.patch(_loads(None), "target", prefix=sf.BASE_PYTHON)
    found = sf.one(check, system, Status.ERROR)
    assert found.fix is not None and found.fix.id == "env-export"
    assert found.fix.commands[0].startswith(f"export LD_LIBRARY_PATH={sf.OWN_LIBDIR}")
    conda = sf.conda_target(_loads(None), str(tmp_path / "env"))
    assert sf.one(check, conda).fix.id == "conda-hooks"  # type: ignore[union-attr]
    named = sf.patch(_loads(None), "target", selected_by="--python")
    assert f"tritondoctor fix --python {sf.PYTHON}" in sf.one(check, named).fix.commands  # type: ignore[union-attr]


def test_evidence_chain_lists_rejected_candidates() -> None:
    from tritondoctor.loader import Rejected

    resolved = dataclasses.replace(sf.libpython_lib(None), rejected=[Rejected("/x/libpython3.11.so.1.0", "wrong ELF class")])
    found = sf.one(check, sf.patch(sf.base(), "libpython", resolved=resolved, same_file=False))
    assert "rejected /x/libpython3.11.so.1.0: wrong ELF class" in found.evidence["chain"]
