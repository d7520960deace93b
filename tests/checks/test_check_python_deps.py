"""Fast tier: the `python-deps` check (nvidia-pytriton's requirements vs installed metadata)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import python_deps as check


def _with(**versions: str | None) -> sf.Snapshot:
    return sf.patch(sf.base(), "target", distributions=sf.distributions(**versions))


def _py313(snap: sf.Snapshot) -> sf.Snapshot:
    return sf.patch(snap, "target", version=(3, 13, 1), version_string="3.13.1")


def _requires(*requires: str) -> sf.Snapshot:
    d = sf.distributions()
    d["nvidia-pytriton"] = sf.dist("nvidia-pytriton", "0.7.0", requires)
    return sf.patch(sf.base(), "target", distributions=d)


def test_skip_without_target_or_pytriton() -> None:
    sf.one(check, sf.without_target(), Status.SKIP)
    assert "not installed" in sf.one(check, sf.without_pytriton(), Status.SKIP).title


def test_ok_lists_what_it_checked() -> None:
    found = sf.one(check, sf.base(), Status.OK)
    assert "numpy 1.26.4, pyzmq 26.2.0, sh 2.1.0 meet nvidia-pytriton 0.7.0's requirements" == found.title


def test_missing_pyzmq() -> None:
    found = sf.one(check, _with(pyzmq=None), Status.ERROR)
    assert found.title == f"pyzmq is not installed in {sf.VENV}" and "(zmq)" in found.detail
    assert found.fix is not None and found.fix.id == "install-deps"
    assert found.fix.commands == (f"{sf.PYTHON} -m pip install 'pyzmq<27.0.0,>=23.0.0'",)


def test_missing_pip_goes_through_ensurepip() -> None:
    found = sf.one(check, _with(pyzmq=None, pip=None), Status.ERROR)
    assert found.fix is not None and found.fix.commands[0].startswith(f"{sf.PYTHON} -m ensurepip && ")


def test_numpy_2_against_the_pin() -> None:
    found = sf.one(check, _with(numpy="2.1.0"), Status.ERROR)
    assert "numpy 2.1.0 is installed but nvidia-pytriton 0.7.0 requires numpy<2.0.0,>=1.21" == found.title
    assert "numpy 1.x" in found.detail and found.fix is not None and found.fix.id == "install-deps"


def test_numpy_2_on_python_3_13_needs_another_python() -> None:
    found = sf.one(check, _py313(_with(numpy="2.1.0")), Status.ERROR)
    assert "no numpy<2 wheel to downgrade to" in found.detail
    assert found.fix is not None and found.fix.id == "python-version"


def test_missing_numpy_on_python_3_13() -> None:
    found = sf.one(check, _py313(_with(numpy=None)), Status.ERROR)
    assert "builds numpy from source" in found.detail and found.fix is not None and found.fix.id == "python-version"


def test_numpy_1_on_python_3_13_was_built_from_source() -> None:
    assert "(built from source: no numpy<2 wheel" in sf.one(check, _py313(sf.base()), Status.OK).title


def test_markers_and_unwatched_requirements_are_not_judged() -> None:
    found = sf.one(check, _requires('pytest>=7; extra == "test"', "typing-extensions>=4"), Status.OK)
    assert "declares none of the dependencies this check reads" in found.title
