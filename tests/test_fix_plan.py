"""The small pure pieces `fix` plans with: which conda package a missing version asks for, the
base environment a hook is planned against, overlays, the plan's JSON contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritondoctor import hooks
from tritondoctor.fixes import _pathorder
from tritondoctor.fixes.libstdcxx import Archive, _matches, inspect_archive, version_tuple
from tritondoctor.gcc_abi import conda_spec, minimum_gcc
from tritondoctor.plan import FileChange, FixPlan, PackageInstall, Prediction, prepend_dirs, with_overlays


@pytest.mark.parametrize("missing, spec", [
    (["GLIBCXX_3.4.30"], "12"),
    (["GLIBCXX_3.4.30", "CXXABI_1.3.13"], "12"),
    (["GLIBCXX_3.4.31"], "13"),
    (["CXXABI_1.3.14"], "13"),
    (["GLIBCXX_3.4.32"], "13.2"),
    (["GLIBCXX_3.4.33"], "14"),
    (["CXXABI_1.3.15", "GLIBCXX_3.4.29"], "14"),
])
def test_the_libstdcxx_ng_requirement_for_missing_versions(missing: list[str], spec: str) -> None:
    # From the libstdc++ manual's symbol-versioning history (abi.xml): GCC 12.1.0 GLIBCXX_3.4.30,
    # 13.1.0 GLIBCXX_3.4.31 / CXXABI_1.3.14, 13.2.0 GLIBCXX_3.4.32, 14.1.0 GLIBCXX_3.4.33 / CXXABI_1.3.15.
    gcc = minimum_gcc(missing)
    assert gcc is not None and conda_spec(gcc) == spec


def test_dependency_specs_are_matched_as_conda_does() -> None:
    assert _matches("libstdcxx 14.2.0 h77fa898_1", "libstdcxx", "14.2.0", "h77fa898_1")
    assert not _matches("libstdcxx 14.2.0 h77fa898_1", "libstdcxx", "14.2.0", "h77fa898_0")
    assert _matches("libstdcxx-ng >=12", "libstdcxx-ng", "13.2.0", "h7e041cc_5")
    assert not _matches("libstdcxx-ng >=12", "libstdcxx-ng", "11.2.0", "h1234567_1")
    assert not _matches("libgcc >=14", "libstdcxx-ng", "14.2.0", "x")
    assert version_tuple("12.2.0") > version_tuple("11.2.0") and version_tuple("13.2.0") >= version_tuple("13.2")


def test_planning_ignores_the_effect_of_our_own_active_hook() -> None:
    prefix = "/envs/a"
    var = hooks.state_var(prefix)
    dirs = ["/py/lib"]
    # Activated from unset: the base has no LD_LIBRARY_PATH.
    assert "LD_LIBRARY_PATH" not in _pathorder.without_own_hook({var: "unset", "LD_LIBRARY_PATH": "/py/lib"}, prefix, dirs)
    # Activated from "" and from a value: the value comes back exactly.
    assert _pathorder.without_own_hook({var: "set:", "LD_LIBRARY_PATH": "/py/lib"}, prefix, dirs)["LD_LIBRARY_PATH"] == ""
    assert _pathorder.without_own_hook({var: "set:/x", "LD_LIBRARY_PATH": "/py/lib:/x"}, prefix, dirs)["LD_LIBRARY_PATH"] == "/x"
    # Changed by the user since: only our head is taken off.
    env = _pathorder.without_own_hook({var: "set:/x", "LD_LIBRARY_PATH": "/py/lib:/x:/user"}, prefix, dirs)
    assert env["LD_LIBRARY_PATH"] == "/x:/user" and var not in env
    # Another environment's state variable is not ours.
    other = {hooks.state_var("/envs/b"): "unset", "LD_LIBRARY_PATH": "/py/lib"}
    assert _pathorder.without_own_hook(other, prefix, dirs) == other


def test_prepend_and_overlays_never_add_an_empty_entry(tmp_path: Path) -> None:
    assert prepend_dirs(None, ["/a", "/b"]) == "/a:/b"
    assert prepend_dirs("", ["/a"]) == "/a"
    assert prepend_dirs("/x::/y", ["/a"]) == "/a:/x::/y"
    lib = tmp_path / "lib"
    lib.mkdir()
    assert with_overlays(f"/x:{lib}:/y", {str(lib): "/tmp/new"}) == f"/x:/tmp/new:{lib}:/y"
    assert with_overlays(None, {str(lib): "/tmp/new"}) is None


def test_an_archive_that_is_not_a_package_is_named_not_raised(tmp_path: Path) -> None:
    bogus = tmp_path / "libstdcxx-ng-12.2.0-h0_0.conda"
    bogus.write_bytes(b"not a zip")
    archive = inspect_archive(str(bogus), str(tmp_path))
    assert isinstance(archive, Archive) and archive.error and "cannot be extracted" in archive.error
    assert inspect_archive(str(tmp_path / "missing.conda"), str(tmp_path)).error == "no such file"
    assert "not a conda package" in (inspect_archive(__file__, str(tmp_path)).error or "")


def test_the_plan_json_contract() -> None:
    plan = FixPlan(
        id="venv-hooks", title="t", prefix="/p", clears=("libpython",),
        prediction=Prediction(True, "derived", {"libpython": "ok"}, {"LD_LIBRARY_PATH": "/py/lib"}),
        changes=(FileChange("/p/bin/activate", "append-block", "new\n", "ab" * 32, block="b"),),
        install=PackageInstall(method="rattler", spec="libstdcxx-ng>=12"),
        dirs=("/py/lib",),
    )
    data = json.loads(json.dumps(plan.to_json()))
    assert set(data) == {"id", "title", "prefix", "clears", "dirs", "changes", "commands", "install", "prediction", "notes"}
    assert set(data["prediction"]) == {"proven", "deferred", "method", "statuses", "environ", "reason", "details"}
    assert set(data["changes"][0]) == {"path", "kind", "description", "block", "sha256_before", "sha256_after", "mode"}
    assert data["install"]["spec"] == "libstdcxx-ng>=12"
