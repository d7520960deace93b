"""Fast tier: the `pytriton` check (install and its binaries) over synthetic snapshots."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import pytriton as check


def test_ok() -> None:
    assert "nvidia-pytriton 0.7.0 with tritonserver" in sf.one(check, sf.base(), Status.OK).title


def test_no_target_is_an_error_naming_why() -> None:
    found = sf.one(check, sf.without_target(), Status.ERROR)
    assert "no Python environment to inspect: no Python found" in found.title
    assert found.fix is not None and found.fix.id == "select-python"


def test_not_installed() -> None:
    found = sf.one(check, sf.without_pytriton(), Status.ERROR)
    assert f"nvidia-pytriton is not installed in {sf.VENV}" in found.title
    assert found.fix is not None and found.fix.id == "install-pytriton"


def test_missing_server_files() -> None:
    snap = sf.patch(sf.base(), "pytriton", tritonserver_is_file=False, python_backend_is_file=False)
    found = sf.one(check, snap, Status.ERROR)
    assert "server files are missing" in found.title and sf.PYTHON_BACKEND_SO in found.title
    assert found.fix is not None and found.fix.id == "reinstall-pytriton"


def test_tritonserver_not_executable() -> None:
    found = sf.one(check, sf.patch(sf.base(), "pytriton", tritonserver_executable=False), Status.ERROR)
    assert found.title == f"{sf.TRITONSERVER_BIN} is not executable"
    assert found.fix is not None and found.fix.id == "chmod"


def test_libs_dir_missing_editable_install() -> None:
    found = sf.one(check, sf.patch(sf.base(), "pytriton", libs_dir_is_dir=False), Status.ERROR)
    assert "bundled libraries" in found.title and "does not exist" in found.title
    assert found.fix is not None and found.fix.id == "install-pytriton"


def test_no_stub_for_this_python() -> None:
    snap = sf.patch(sf.base(), "target", version=(3, 14, 0), version_string="3.14.0")
    found = sf.one(check, snap, Status.ERROR)
    assert "no python-backend stub for Python 3.14 (it has 3.11)" in found.title
    assert found.fix is not None and found.fix.id == "python-version"


def test_stub_not_executable() -> None:
    found = sf.one(check, sf.patch(sf.base(), "pytriton", stub_executable={"3.11": False}), Status.ERROR)
    assert found.title == f"the stub {sf.STUB_311} is not executable"
    assert found.fix is not None and found.fix.id == "chmod"


def test_every_problem_is_reported() -> None:
    snap = sf.patch(sf.base(), "pytriton", tritonserver_is_file=False, libs_dir_is_dir=False, stubs={})
    found = sf.run(check, snap)
    assert sf.statuses(found) == [Status.ERROR] * 3
    assert sf.fix_ids(found) == ["reinstall-pytriton", "install-pytriton", "python-version"]
    assert "(it has none)" in found[2].title
