"""The libpython rows of the field catalog beyond this machine's own bug.

Row 22: the 0.7.0 wheel's 3.13 stub carries a grafted CPython (libpython3-<hash>.13.so.1.0 in
nvidia_pytriton.libs); it is right only for the very same 3.13 release.
Row 23: an interpreter whose sysconfig LIBDIR names a directory that does not exist (old uv
Pythons said /install/lib); the fix must name the real directory.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import link_site_packages

from tritondoctor.checks import libpython as libpython_check
from tritondoctor.facts.libpython import libpython_version
from tritondoctor.findings import Status
from tritondoctor.snapshot import STUB, take_snapshot

PY313 = Path("/root/.pyenv/versions/3.13.0/bin/python3.13")


def layered_venv_for(base_python: str, shared_venv: Path, dest: Path) -> Path:
    """A venv of another interpreter that has the test venv's nvidia-pytriton (symlinked)."""
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(dest)], check=True)
    link_site_packages(shared_venv, dest)
    return dest


def the_libpython_finding(snap):  # type: ignore[no-untyped-def]
    (finding,) = libpython_check.run(snap)
    return finding


@pytest.mark.skipif(not PY313.exists(), reason="no CPython 3.13 interpreter on this machine")
def test_bundled_313_libpython_is_compared_with_the_interpreter(pytriton_venv: Path, tmp_path: Path, clean_environ: dict[str, str]) -> None:
    env = layered_venv_for(str(PY313), pytriton_venv, tmp_path / "py313")
    snap = take_snapshot(python=str(env / "bin" / "python"), environ=clean_environ)
    assert snap.target is not None and snap.target.minor == "3.13"
    stub_tree = snap.resolutions[STUB]
    facts = snap.libpython
    assert facts is not None and facts.resolved is not None and facts.resolved.path
    assert facts.needed.startswith("libpython3-") and "nvidia_pytriton.libs" in facts.resolved.path
    # The version is read from the grafted file itself; CPython's own answer agrees.
    code = "import ctypes,sys; l=ctypes.PyDLL(sys.argv[1]); l.Py_GetVersion.restype=ctypes.c_char_p; print(l.Py_GetVersion().decode().split()[0])"
    really = subprocess.run([sys.executable, "-c", code, facts.resolved.path], capture_output=True, text=True, check=True).stdout.strip()
    assert facts.resolved_version == really
    finding = the_libpython_finding(snap)
    if really == snap.target.version_string:
        assert finding.status is Status.OK and "bundled" in finding.title
    else:
        assert finding.status is Status.ERROR
    # Any other 3.13 release in front of the same stub is the mixed build of row 2.
    other = "3.13.99"
    mixed = dataclasses.replace(
        snap,
        target=dataclasses.replace(snap.target, version_string=other),
        libpython=dataclasses.replace(facts, own_version=other),
    )
    finding = the_libpython_finding(mixed)
    assert finding.status is Status.ERROR
    assert really in finding.title and other in finding.title
    assert finding.fix is not None and finding.fix.id == "python-version"
    assert stub_tree.find(facts.needed) is not None


def test_sysconfig_libdir_that_does_not_exist(pytriton_venv: Path, tmp_path: Path, clean_environ: dict[str, str]) -> None:
    """A real interpreter made to report LIBDIR=/install/lib through its own sysconfig machinery
    (_PYTHON_SYSCONFIGDATA_NAME, as cross builds use)."""
    env = layered_venv_for(sys._base_executable if hasattr(sys, "_base_executable") else sys.executable,  # type: ignore[attr-defined]
                           pytriton_venv, tmp_path / "uvlike")
    site = next((env / "lib").glob("python3*/site-packages"))
    real = Path(sysconfig.__file__).parent / (sysconfig._get_sysconfigdata_name() + ".py")  # type: ignore[attr-defined]
    text = real.read_text().replace(f"'LIBDIR': '{sysconfig.get_config_var('LIBDIR')}'", "'LIBDIR': '/install/lib'")
    assert "'LIBDIR': '/install/lib'" in text
    (site / "_sysconfigdata_uvlike.py").write_text(text)
    environ = dict(clean_environ, _PYTHON_SYSCONFIGDATA_NAME="_sysconfigdata_uvlike")

    snap = take_snapshot(python=str(env / "bin" / "python"), environ=environ)
    assert snap.target is not None and snap.target.libdir == "/install/lib"
    facts = snap.libpython
    assert facts is not None and facts.libdir_exists is False
    real_dir = os.path.realpath(sysconfig.get_config_var("LIBDIR"))
    assert facts.own_dir == real_dir
    finding = the_libpython_finding(snap)
    assert finding.evidence["sysconfig_libdir"] == "/install/lib"
    if finding.status is not Status.OK:
        assert "/install/lib" in finding.detail
        assert finding.fix is not None
        assert any(real_dir in c for c in finding.fix.commands)
        assert not any("/install/lib" in c for c in finding.fix.commands)


def test_version_read_statically_matches_cpython_for_every_libpython_here() -> None:
    """Py_Version (3.11+) or the PY_VERSION string (older): compared with Py_GetVersion()."""
    seen = 0
    for path in sorted(Path("/root/.pyenv/versions").glob("3.*/lib/libpython3.*.so.1.0")):
        code = "import ctypes,sys; l=ctypes.PyDLL(sys.argv[1]); l.Py_GetVersion.restype=ctypes.c_char_p; print(l.Py_GetVersion().decode().split()[0])"
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            continue
        assert libpython_version(str(path), None) == proc.stdout.strip(), path
        seen += 1
    if not seen:
        pytest.skip("no other libpython builds on this machine")
