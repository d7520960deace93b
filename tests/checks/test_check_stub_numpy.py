"""Fast tier: the `stub-numpy` check (a numpy 2 reaching the stub from outside the env)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import stub_numpy as check

from tritondoctor.facts.pkgfiles import NumpyReach

USER_SITE = f"{sf.HOME}/.local/lib/python3.11/site-packages"


def _reach(directory: str, version: str | None, route: str, via: str = "") -> sf.Snapshot:
    return sf.patch(sf.base(), "pkgfiles", numpy=NumpyReach(directory, version, route, via))


def test_skip_without_pytriton_or_numpy() -> None:
    sf.one(check, sf.without_pytriton(), Status.SKIP)
    sf.one(check, sf.base(pkgfiles=None), Status.SKIP)
    assert "see python-deps" in sf.one(check, sf.patch(sf.base(), "pkgfiles", numpy=None), Status.SKIP).title


def test_ok_numpy_1() -> None:
    assert f"imports numpy 1.26.4 from {sf.SITE} (site-packages)" in sf.one(check, sf.base(), Status.OK).title


def test_unknown_version_is_not_judged() -> None:
    assert "numpy ?" in sf.one(check, _reach(USER_SITE, None, "user site"), Status.OK).title


def test_numpy_2_in_the_env_itself_is_python_deps_business() -> None:
    assert "python-deps judges it" in sf.one(check, _reach(sf.SITE, "2.1.0", "site-packages"), Status.OK).title


def test_numpy_2_from_the_user_site() -> None:
    found = sf.one(check, _reach(USER_SITE, "2.1.0", "user site"), Status.ERROR)
    assert f"numpy 2.1.0 reaches the python-backend stub from {USER_SITE} (user site)" == found.title
    assert found.fix is not None and found.fix.id == "stub-numpy-path"
    assert found.fix.commands[0].startswith("export PYTHONNOUSERSITE=1")


def test_numpy_2_from_pythonpath() -> None:
    found = sf.one(check, _reach("/opt/py", "2.0.2", "PYTHONPATH", "/opt/py"), Status.ERROR)
    assert "(PYTHONPATH: /opt/py)" in found.title
    assert found.fix is not None and found.fix.commands[0].startswith("unset PYTHONPATH")


def test_numpy_2_from_a_pth_file() -> None:
    pth = f"{sf.SITE}/extra.pth"
    found = sf.one(check, _reach("/opt/extra", "2.1.0", ".pth file", pth), Status.ERROR)
    assert found.fix is not None and found.fix.commands[0] == f"# remove {pth} from the path the stub inherits"
