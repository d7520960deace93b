"""`tritondoctor fix` in a real conda-format prefix built offline with py-rattler.

The channel is made here: conda packages (conda-package-handling) for `python` (this machine's
interpreter run as a venv-style prefix that sees the shared PyTriton install), an "old"
`libstdcxx-ng` 11.2.0 whose libstdc++.so.6 is built by gcc with a version script cut at
GLIBCXX_3.4.29 (nodes read from the real library), and a package whose activation script puts
$CONDA_PREFIX/lib first on LD_LIBRARY_PATH, as some conda-forge packages do. `rattler.solve` +
`rattler.install` make the prefix from that file:// channel. The replacement package is a
`libstdcxx-ng` 12.2.0 carrying this machine's GCC 12 libstdc++.so.6.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fixkit import (
    LOADER,
    activation_package,
    by_id,
    check_json,
    conda_activated,
    errors,
    index_channel,
    install_prefix,
    libstdcxx_package,
    make_package,
    python_package,
    server_environ,
    site_packages,
    tree_state,
    tritondoctor,
)
from libstdcxx_fixture import build_old_libstdcxx, real_libstdcxx

rattler = pytest.importorskip("rattler")
pytest.importorskip("conda_package_handling")

LOADER_IDS = {"libpython", "glibcxx", "libs"}


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory, pytriton_venv: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("conda-channel")
    old = build_old_libstdcxx(root / "oldlib")
    chan = root / "channel"
    libstdcxx_package(chan / "linux-64", old, "11.2.0", "tdx_0", fmt=".tar.bz2")
    libstdcxx_package(chan / "linux-64", real_libstdcxx(), "12.2.0", "tdx_1", fmt=".tar.bz2")
    python_package(chan / "linux-64", site_packages(pytriton_venv), depends=("libstdcxx-ng >=11",))
    activation_package(chan / "linux-64")
    index_channel(chan)
    archives = root / "archives"
    return {
        "channel": chan,
        "new": libstdcxx_package(archives, real_libstdcxx(), "12.2.0", "tdx_1"),
        "too_old": libstdcxx_package(archives, old, "11.2.0", "tdx_9"),
        # conda-forge since GCC 14: `libstdcxx` carries the files, `libstdcxx-ng` is a metapackage.
        "split": libstdcxx_package(archives, real_libstdcxx(), "14.2.0", "tdx_2", name="libstdcxx"),
        "meta": make_package(archives, "libstdcxx-ng", "14.2.0", "tdx_2", {}, depends=("libstdcxx 14.2.0 tdx_2",),
                             fmt=".conda"),
        "pytriton_site": site_packages(pytriton_venv),
    }


@pytest.fixture
def conda_env(channel: dict[str, Path], tmp_path: Path) -> Path:
    prefix = tmp_path / "envs" / "triton"
    install_prefix(channel["channel"], prefix, ["python", "libstdcxx-ng ==11.2.0", "cuda-libpath-activation"],
                   tmp_path / "pkgs-cache")
    (prefix / "CACHEDIR.TAG").unlink(missing_ok=True)  # py-rattler's; a conda env has none
    return prefix


def activated(prefix: Path, clean_environ: dict[str, str]) -> dict[str, str]:
    env = dict(clean_environ, TRITONDOCTOR_LOCK_TIMEOUT="30")
    env.pop("CONDA_PKGS_DIRS", None)
    return conda_activated(prefix, env)


def tritonserver_output(pytriton_site: Path, environ: dict[str, str]) -> subprocess.CompletedProcess:
    binary = pytriton_site / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    return subprocess.run([str(binary), "--help"], env=server_environ(pytriton_site, environ), capture_output=True,
                          text=True, timeout=60)


def loaded(binary: Path, environ: dict[str, str]) -> dict[str, str | None]:
    env = dict(environ, LD_TRACE_LOADED_OBJECTS="1")
    out = subprocess.run([LOADER, str(binary)], capture_output=True, text=True, env=env).stdout
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            found[parts[0]] = None if parts[2] == "not" else os.path.realpath(parts[2])
    return found


def test_old_libstdcxx_is_replaced_recorded_and_tritonserver_starts(conda_env: Path, channel: dict[str, Path],
                                                                     clean_environ: dict[str, str]) -> None:
    environ = activated(conda_env, clean_environ)
    assert environ["LD_LIBRARY_PATH"].split(":")[0] == str(conda_env / "lib")
    before = check_json(conda_env / "bin" / "python", environ)
    (glibcxx,) = by_id(before, "glibcxx")
    assert glibcxx["status"] == "error"
    assert "GLIBCXX_3.4.30" in glibcxx["evidence"]["missing"]
    assert os.path.realpath(glibcxx["evidence"]["provider"]) == os.path.realpath(conda_env / "lib" / "libstdc++.so.6")
    broken = tritonserver_output(channel["pytriton_site"], environ)
    assert "version `GLIBCXX_3.4.30' not found" in broken.stderr  # the real failure, before the fix

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", "--package", str(channel["new"]), environ=environ)

    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(proc.stdout)
    plans = {p["id"]: p for p in result["plans"]}
    assert plans["libstdcxx"]["prediction"]["proven"]
    assert plans["libstdcxx"]["install"]["replaces"] == ["libstdcxx-ng-11.2.0-tdx_0.json"]
    assert plans["libstdcxx"]["install"]["spec"] == "libstdcxx-ng>=12"
    assert set(result["applied"]) == {"libstdcxx", "conda-hooks"}  # + the libpython hook this machine needs

    # conda knows about it: the old record is gone, the new one is a full PrefixRecord.
    meta = conda_env / "conda-meta"
    assert not (meta / "libstdcxx-ng-11.2.0-tdx_0.json").exists()
    record_path = meta / "libstdcxx-ng-12.2.0-tdx_1.json"
    record = json.loads(record_path.read_text())
    assert sorted(record["files"]) == ["lib/libstdc++.so.6", "lib/libstdc++.so.6.0.30"]
    paths = {p["_path"]: p for p in record["paths_data"]["paths"]}
    assert paths["lib/libstdc++.so.6"]["path_type"] == "softlink"
    import hashlib

    real = conda_env / "lib" / "libstdc++.so.6.0.30"
    assert paths["lib/libstdc++.so.6.0.30"]["sha256"] == hashlib.sha256(real.read_bytes()).hexdigest()
    assert record["sha256"] == hashlib.sha256(channel["new"].read_bytes()).hexdigest()
    parsed = rattler.PrefixRecord.from_path(record_path)  # the format conda / rattler read
    assert parsed.name.normalized == "libstdcxx-ng" and str(parsed.version) == "12.2.0"
    assert not (conda_env / "lib" / "libstdc++.so.6.0.29").exists()
    assert "+libstdcxx-ng-12.2.0-tdx_1" in (meta / "history").read_text()
    assert not (conda_env / "CACHEDIR.TAG").exists()

    # A new activation: check is clean and the real tritonserver starts without a loader error.
    after_env = activated(conda_env, clean_environ)
    after = check_json(conda_env / "bin" / "python", after_env)
    assert errors(after, LOADER_IDS) == []
    started = tritonserver_output(channel["pytriton_site"], after_env)
    for text in ("version `GLIBCXX", "cannot open shared object", "error while loading shared libraries"):
        assert text not in started.stderr + started.stdout
    assert "Usage: tritonserver" in started.stdout + started.stderr  # (--help exits 1 after printing it)
    binary = channel["pytriton_site"] / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    traced = loaded(binary, server_environ(channel["pytriton_site"], after_env))
    assert traced["libstdc++.so.6"] == os.path.realpath(real)


def test_undo_puts_the_prefix_back_byte_for_byte(conda_env: Path, channel: dict[str, Path],
                                                 clean_environ: dict[str, str]) -> None:
    environ = activated(conda_env, clean_environ)
    pristine = tree_state(conda_env)
    fixed = tritondoctor("fix", "--yes", "--no-smoke", "--package", str(channel["new"]), environ=environ)
    assert fixed.returncode == 0, fixed.stderr
    changed = tree_state(conda_env)
    again = tritondoctor("fix", "--yes", "--no-smoke", "--package", str(channel["new"]), environ=activated(conda_env, clean_environ))
    assert again.returncode == 0, again.stderr
    assert tree_state(conda_env) == changed  # the second run changes nothing

    undo = tritondoctor("fix", "--undo", environ=environ)

    assert undo.returncode == 0, undo.stderr
    assert tree_state(conda_env) == pristine
    assert by_id(check_json(conda_env / "bin" / "python", activated(conda_env, clean_environ)), "glibcxx")[0]["status"] == "error"


def test_a_too_old_archive_is_rejected_before_anything_is_written(conda_env: Path, channel: dict[str, Path],
                                                                  clean_environ: dict[str, str]) -> None:
    environ = activated(conda_env, clean_environ)
    pristine = tree_state(conda_env)

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--package", str(channel["too_old"]), environ=environ)

    assert proc.returncode == 2
    assert "GLIBCXX_3.4.30" in proc.stderr and "rejected" in proc.stderr and "libstdcxx-ng>=12" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert tree_state(conda_env) == pristine
    missing = tritondoctor("fix", "--yes", "--package", str(channel["new"]) + ".missing", environ=environ)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_an_archive_in_the_package_cache_is_found_without_package(conda_env: Path, channel: dict[str, Path],
                                                                  clean_environ: dict[str, str], tmp_path: Path) -> None:
    cache = tmp_path / "pkgs"
    cache.mkdir()
    shutil.copy(channel["too_old"], cache)  # too old: skipped
    shutil.copy(channel["new"], cache)
    environ = dict(activated(conda_env, clean_environ), CONDA_PKGS_DIRS=str(cache))

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", environ=environ)

    assert proc.returncode == 0, proc.stderr
    install = next(p for p in json.loads(proc.stdout)["plans"] if p["id"] == "libstdcxx")["install"]
    assert install["archives"] == [str(cache / channel["new"].name)]
    assert (conda_env / "conda-meta" / "libstdcxx-ng-12.2.0-tdx_1.json").exists()


def test_without_an_archive_or_a_frontend_the_user_is_told_what_to_get(conda_env: Path, clean_environ: dict[str, str],
                                                                      tmp_path: Path) -> None:
    environ = dict(activated(conda_env, clean_environ), CONDA_PKGS_DIRS=str(tmp_path), HOME=str(tmp_path))
    environ["PATH"] = ":".join(p for p in environ["PATH"].split(":") if not any(
        os.path.exists(os.path.join(p, f)) for f in ("conda", "mamba", "micromamba")))
    pristine = tree_state(conda_env)
    proc = tritondoctor("fix", "--dry-run", "--json", environ=environ)
    report = json.loads(proc.stdout)
    assert not any(p["id"] == "libstdcxx" for p in report["plans"])
    assert any("--package FILE" in n and "libstdcxx-ng>=12" in n for n in report["notes"])
    assert tree_state(conda_env) == pristine


def test_the_conda_base_environment_is_refused_without_force(conda_env: Path, clean_environ: dict[str, str]) -> None:
    (conda_env / "condabin").mkdir()
    environ = activated(conda_env, clean_environ)
    pristine = tree_state(conda_env)
    proc = tritondoctor("fix", "--yes", "--no-smoke", environ=environ)
    assert proc.returncode == 2 and "base environment" in proc.stderr and "--force" in proc.stderr
    assert tree_state(conda_env) == pristine


def test_the_split_libstdcxx_package_needs_its_metapackage(conda_env: Path, channel: dict[str, Path],
                                                            clean_environ: dict[str, str]) -> None:
    """`libstdcxx` 14 alone would remove libstdcxx-ng, which `python` depends on: not proven, not
    applied; with the libstdcxx-ng metapackage beside it the transaction is complete."""
    environ = activated(conda_env, clean_environ)
    pristine = tree_state(conda_env)

    alone = tritondoctor("fix", "--yes", "--no-smoke", "--json", "--package", str(channel["split"]), environ=environ)

    assert alone.returncode == 1, alone.stderr
    plan = next(p for p in json.loads(alone.stdout)["plans"] if p["id"] == "libstdcxx")
    assert not plan["prediction"]["proven"]
    assert "python depends on libstdcxx-ng >=11" in plan["prediction"]["reason"]
    assert "libstdcxx" in json.loads(alone.stdout)["skipped"]
    assert {k: v for k, v in tree_state(conda_env).items() if not k.startswith(("etc", ".tritondoctor"))} == \
        {k: v for k, v in pristine.items() if not k.startswith("etc")}

    tritondoctor("fix", "--undo", environ=environ)  # the hooks that were proven went in; take them out
    both = tritondoctor("fix", "--yes", "--no-smoke", "--json", "--package", str(channel["split"]),
                        "--package", str(channel["meta"]), environ=activated(conda_env, clean_environ))

    assert both.returncode == 0, both.stderr
    meta = conda_env / "conda-meta"
    assert sorted(p.name for p in meta.glob("libstdcxx*.json")) == ["libstdcxx-14.2.0-tdx_2.json",
                                                                    "libstdcxx-ng-14.2.0-tdx_2.json"]
    after = check_json(conda_env / "bin" / "python", activated(conda_env, clean_environ))
    assert errors(after, LOADER_IDS) == []


def test_an_other_environments_old_library_first_on_the_path_is_fixed_by_path_order(
        channel: dict[str, Path], clean_environ: dict[str, str], tmp_path: Path) -> None:
    """The target env has a good libstdc++ but another env's old one comes first on
    LD_LIBRARY_PATH (left over from elsewhere): nothing to install, the hooks put the target's own
    lib first."""
    good = tmp_path / "envs" / "good"
    other = tmp_path / "envs" / "old"
    install_prefix(channel["channel"], good, ["python", "libstdcxx-ng >=12"], tmp_path / "cache")
    install_prefix(channel["channel"], other, ["libstdcxx-ng ==11.2.0"], tmp_path / "cache")
    for prefix in (good, other):
        (prefix / "CACHEDIR.TAG").unlink(missing_ok=True)
    environ = activated(good, dict(clean_environ, LD_LIBRARY_PATH=str(other / "lib")))
    (glibcxx,) = by_id(check_json(good / "bin" / "python", environ), "glibcxx")
    assert glibcxx["status"] == "error"
    assert os.path.realpath(glibcxx["evidence"]["provider"]).startswith(os.path.realpath(other))

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", environ=environ)

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    (plan,) = result["plans"]
    assert plan["id"] == "conda-hooks" and "glibcxx" in plan["clears"]
    assert plan["dirs"][-1] == str(good / "lib")
    after_env = activated(good, dict(clean_environ, LD_LIBRARY_PATH=str(other / "lib")))
    assert after_env["LD_LIBRARY_PATH"].endswith(f"{good}/lib:{other}/lib")
    assert errors(check_json(good / "bin" / "python", after_env), LOADER_IDS) == []
    assert not (good / "conda-meta" / "libstdcxx-ng-12.2.0-tdx_1.json").read_text() == ""  # untouched, still there


FAKE_FRONTEND = """#!/bin/sh
# A stand-in for micromamba (none can be installed on this machine): `install --download-only`
# puts the archives of $TDX_FAKE_CHANNEL into $MAMBA_ROOT_PREFIX/pkgs, as the real one downloads
# into its package cache, and records its arguments.
printf '%s\\n' "$@" > "$TDX_FAKE_ARGS"
echo "Downloading 1 package"
mkdir -p "$MAMBA_ROOT_PREFIX/pkgs"
cp "$TDX_FAKE_CHANNEL"/*.conda "$MAMBA_ROOT_PREFIX/pkgs/"
echo "done"
"""


@pytest.mark.parametrize("served", ["new", "too_old"])
def test_a_frontend_downloads_only_and_the_download_is_checked_before_install(
        served: str, conda_env: Path, channel: dict[str, Path], clean_environ: dict[str, str], tmp_path: Path) -> None:
    served_dir = tmp_path / "served"
    served_dir.mkdir()
    shutil.copy(channel[served], served_dir)
    frontend = tmp_path / "bin" / "micromamba"
    frontend.parent.mkdir()
    frontend.write_text(FAKE_FRONTEND)
    frontend.chmod(0o755)
    args = tmp_path / "args"
    environ = dict(activated(conda_env, clean_environ), MAMBA_EXE=str(frontend), MAMBA_ROOT_PREFIX=str(tmp_path / "root"),
                   TDX_FAKE_CHANNEL=str(served_dir), TDX_FAKE_ARGS=str(args), HOME=str(tmp_path),
                   PYTRITON_HOME="/tmp/pytriton")  # (a HOME this deep would make PyTriton's socket paths too long)
    pristine = tree_state(conda_env)

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", environ=environ)

    plan = next(p for p in json.loads(proc.stdout)["plans"] if p["id"] == "libstdcxx")
    assert plan["install"]["method"] == "frontend" and plan["prediction"]["deferred"]
    assert args.read_text().split() == ["install", "--download-only", "--yes", "--prefix", str(conda_env),
                                        "-c", "conda-forge", "libstdcxx-ng>=12"]
    assert "Downloading 1 package" in proc.stderr  # the frontend's output is passed through
    if served == "new":
        assert proc.returncode == 0, proc.stderr
        assert (conda_env / "conda-meta" / "libstdcxx-ng-12.2.0-tdx_1.json").exists()
    else:
        assert proc.returncode == 1
        assert "defines" in proc.stderr and "nothing was installed" in proc.stderr and "rolled back" in proc.stderr
        assert tree_state(conda_env) == pristine


def test_fix_with_python_plans_for_the_activated_environment(conda_env: Path, channel: dict[str, Path],
                                                             clean_environ: dict[str, str]) -> None:
    """`fix --python ENV/bin/python` from a shell where the env is not active: the plan is made for
    the environment `conda activate` gives (its activation puts the old library first), so the
    install is planned too, and the activated result is clean."""
    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", "--python", str(conda_env / "bin" / "python"),
                        "--package", str(channel["new"]), environ=clean_environ)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["applied"]) == {"libstdcxx", "conda-hooks"}
    assert errors(check_json(conda_env / "bin" / "python", activated(conda_env, clean_environ)), LOADER_IDS) == []
