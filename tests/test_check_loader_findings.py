"""`tritondoctor check` on the real failure of this machine and on a real old libstdc++.

The machine: pyenv's CPython keeps its own shared libpython under its prefix while the
distribution's libpython of the same minor version sits in the loader cache; PyTriton's stub
loads the latter. Independent oracles: glibc's loader in trace mode says which file the stub
really gets, and that file's own Py_GetVersion() says which Python it is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from libstdcxx_fixture import build_old_libstdcxx

LOADER = "/lib64/ld-linux-x86-64.so.2"


def run_check(python: Path, environ: dict[str, str], *extra: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "tritondoctor", "check", "--json", "--python", str(python), *extra],
        capture_output=True, text=True, env=environ, timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def by_id(report: dict, check_id: str) -> list[dict]:
    return [f for f in report["findings"] if f["id"] == check_id]


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def stub_of(venv: Path) -> Path:
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return site_packages(venv) / "pytriton/tritonserver/python_backend_stubs" / minor / "triton_python_backend_stub"


def traced(file: Path, environ: dict[str, str]) -> dict[str, str | None]:
    env = dict(environ, LD_TRACE_LOADED_OBJECTS="1")
    out = subprocess.run([LOADER, str(file)], capture_output=True, text=True, env=env).stdout
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        m = re.match(r"\s+(\S+) => (?:(not found)|(\S+) \()", line)
        if m:
            found[m.group(1)] = None if m.group(2) else os.path.realpath(m.group(3))
    return found


def py_get_version(libpython: str) -> str:
    code = ("import ctypes,sys; lib=ctypes.PyDLL(sys.argv[1]); lib.Py_GetVersion.restype=ctypes.c_char_p; "
            "print(lib.Py_GetVersion().decode().split()[0])")
    return subprocess.run([sys.executable, "-c", code, libpython], capture_output=True, text=True, check=True).stdout.strip()


def server_env(venv: Path, environ: dict[str, str]) -> dict[str, str]:
    """What PyTriton 0.7.0 gives tritonserver: nvidia_pytriton.libs appended to LD_LIBRARY_PATH."""
    libs = str(site_packages(venv) / "nvidia_pytriton.libs")
    env = dict(environ)
    env["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"] + ":" + libs if "LD_LIBRARY_PATH" in env else libs
    return env


def test_libpython_mismatch_is_named_with_both_files_and_versions(pytriton_venv: Path, clean_environ: dict[str, str]) -> None:
    own_libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")
    really_loaded = traced(stub_of(pytriton_venv), server_env(pytriton_venv, clean_environ)).get(soname)
    own = os.path.realpath(os.path.join(own_libdir, soname))
    if really_loaded is None or really_loaded == own:
        pytest.skip("this machine has no second libpython of the same minor version in the loader cache")

    code, report = run_check(pytriton_venv / "bin" / "python", clean_environ)

    assert code == 1
    (finding,) = by_id(report, "libpython")
    assert finding["status"] == "error"
    ev = finding["evidence"]
    assert os.path.realpath(ev["resolved"]) == really_loaded
    assert ev["own"] == own
    assert ev["resolved_version"] == py_get_version(really_loaded)
    assert ev["own_version"] == py_get_version(own) == sysconfig.get_python_version() + "." + str(sys.version_info[2])
    assert ev["resolved_version"] != ev["own_version"]
    for text in (ev["resolved"], own, ev["resolved_version"], ev["own_version"]):
        assert text in finding["title"]
    assert finding["fix"]["id"] == "venv-hooks"
    assert any(own_libdir in c for c in finding["fix"]["commands"])


def test_libpython_ok_with_the_interpreters_libdir_first(pytriton_venv: Path, clean_environ: dict[str, str]) -> None:
    own_libdir = sysconfig.get_config_var("LIBDIR")
    environ = dict(clean_environ, LD_LIBRARY_PATH=own_libdir)
    code, report = run_check(pytriton_venv / "bin" / "python", environ)
    (finding,) = by_id(report, "libpython")
    assert finding["status"] == "ok", finding
    assert os.path.realpath(finding["evidence"]["resolved"]) == os.path.realpath(
        traced(stub_of(pytriton_venv), server_env(pytriton_venv, environ))[sysconfig.get_config_var("INSTSONAME")]
    )


def test_healthy_environment_has_no_false_alarms(pytriton_venv: Path, clean_environ: dict[str, str]) -> None:
    environ = dict(clean_environ, LD_LIBRARY_PATH=sysconfig.get_config_var("LIBDIR"))
    code, report = run_check(pytriton_venv / "bin" / "python", environ, "--cpu-ok", "--ports", "38000,38001,38002")
    problems = [f for f in report["findings"] if f["status"] in ("warn", "error")]
    assert problems == [] and code == 0


def test_old_libstdcxx_first_on_the_path_is_named(pytriton_venv: Path, clean_environ: dict[str, str], tmp_path: Path) -> None:
    old = build_old_libstdcxx(tmp_path / "old")
    environ = dict(clean_environ, LD_LIBRARY_PATH=f"{old.parent}:{sysconfig.get_config_var('LIBDIR')}")
    code, report = run_check(pytriton_venv / "bin" / "python", environ)

    # What glibc says, for the same files under the same environment.
    expected: set[tuple[str, str]] = set()
    site = site_packages(pytriton_venv)
    binaries = [site / "pytriton/tritonserver/bin/tritonserver", site / "pytriton/tritonserver/backends/python/libtriton_python.so", stub_of(pytriton_venv)]
    for binary in binaries:
        env = dict(server_env(pytriton_venv, environ), LD_TRACE_LOADED_OBJECTS="1")
        out = subprocess.run([LOADER, str(binary)], capture_output=True, text=True, env=env)
        for m in re.finditer(r"version `(\S+)' not found \(required by (\S+)\)", out.stdout + out.stderr):
            expected.add((m.group(1), os.path.basename(m.group(2))))
    assert ("GLIBCXX_3.4.30", "tritonserver") in expected

    assert code == 1
    (finding,) = [f for f in by_id(report, "glibcxx") if "GLIBCXX" in f["title"]]
    ev = finding["evidence"]
    assert finding["status"] == "error"
    assert os.path.realpath(ev["provider"]) == str(old)
    assert ev["via"] == "ld_library_path" and ev["search_dir"] == str(old.parent)
    assert "GLIBCXX_3.4.30" in ev["missing"]
    assert {(v, os.path.basename(r)) for v in ev["missing"] for r in ev["required_by"]} >= expected
    assert ev["min_gcc"].startswith("12.") and ev["conda_spec"] == "libstdcxx-ng>=12"
    assert finding["fix"]["id"] == "libstdcxx"


def test_check_and_smoke_spell_the_same_library_the_same_way() -> None:
    """The loader model reports a file as ld.so found it (/lib/... through the cache on a
    merged-/usr system); /proc/PID/maps reports /usr/lib/...: findings use one spelling."""
    from tritondoctor.paths import canonical

    lib_dir = "/lib/x86_64-linux-gnu"
    if not os.path.islink("/lib"):
        pytest.skip("/lib is not a symlink here: both spellings are already the same")
    via_lib = os.path.join(lib_dir, "libc.so.6")
    via_usr = os.path.join(os.path.realpath(lib_dir), "libc.so.6")
    assert via_lib != via_usr
    assert canonical(via_lib) == canonical(via_usr) == via_usr
