"""`tritondoctor fix` on this machine's real bug, end to end, in a fresh venv.

pyenv's CPython 3.11.7 keeps its own libpython under its prefix while Debian's 3.11.2
libpython3.11.so.1.0 is in the loader cache; PyTriton's 3.11 stub loads Debian's. The fix writes
the venv-hooks blocks; a new shell that activates the venv then passes `check`, and the glibc
loader itself (trace mode) loads the interpreter's own libpython; `fix --undo` puts every file of
the venv back byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixkit import (
    LOADER,
    by_id,
    check_json,
    errors,
    own_libdir,
    server_environ,
    site_packages,
    tree_state,
    tritondoctor,
    venv_activated,
)

LOADER_IDS = {"libpython", "glibcxx", "libs"}


def stub_of(pytriton_venv: Path) -> Path:
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return site_packages(pytriton_venv) / "pytriton/tritonserver/python_backend_stubs" / minor / "triton_python_backend_stub"


def loaded_libpython(pytriton_venv: Path, environ: dict[str, str]) -> str | None:
    """What glibc's loader really gives the stub (LD_TRACE_LOADED_OBJECTS), as PyTriton runs it."""
    env = dict(server_environ(site_packages(pytriton_venv), environ), LD_TRACE_LOADED_OBJECTS="1")
    out = subprocess.run([LOADER, str(stub_of(pytriton_venv))], capture_output=True, text=True, env=env).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libpython") and len(parts) >= 3 and parts[1] == "=>":
            return os.path.realpath(parts[2])
    return None


@pytest.fixture
def broken_venv(layered_venv, pytriton_venv: Path, clean_environ: dict[str, str]):  # type: ignore[no-untyped-def]
    venv_dir = layered_venv("venv")
    environ = venv_activated(venv_dir, clean_environ)
    own = os.path.realpath(os.path.join(own_libdir(), "libpython3.11.so.1.0"))
    if loaded_libpython(pytriton_venv, environ) in (None, own):
        pytest.skip("this machine has no second libpython of the same minor version in the loader cache")
    return venv_dir, environ


def test_fix_writes_the_hook_and_a_new_activated_shell_is_clean(broken_venv, pytriton_venv: Path,
                                                               clean_environ: dict[str, str]) -> None:
    venv_dir, environ = broken_venv
    report = check_json(venv_dir / "bin" / "python", environ)
    (before,) = by_id(report, "libpython")
    assert before["status"] == "error" and before["fix"]["id"] == "venv-hooks"

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", environ=environ)

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    (plan,) = result["plans"]
    assert plan["id"] == "venv-hooks" and plan["clears"] == ["libpython"]
    assert plan["prediction"]["proven"] and plan["prediction"]["statuses"]["libpython"] == "ok"
    assert plan["dirs"] == [before["evidence"]["libdir"]]
    assert result["applied"] == ["venv-hooks"] and result["recheck"]["ok"]

    activated = venv_activated(venv_dir, clean_environ)
    assert activated["LD_LIBRARY_PATH"] == own_libdir()
    after = check_json(venv_dir / "bin" / "python", activated)
    assert errors(after, LOADER_IDS) == []
    (libpython,) = by_id(after, "libpython")
    assert libpython["status"] == "ok"
    # The independent oracle: glibc's loader now gives the stub the interpreter's own libpython.
    assert loaded_libpython(pytriton_venv, activated) == os.path.realpath(os.path.join(own_libdir(), "libpython3.11.so.1.0"))
    # Deactivating gives the shell back its LD_LIBRARY_PATH exactly (unset here).
    deactivated = venv_activated(venv_dir, clean_environ, then="deactivate")
    assert "LD_LIBRARY_PATH" not in deactivated


def test_fix_twice_changes_nothing_and_undo_restores_every_byte(broken_venv, clean_environ: dict[str, str]) -> None:
    venv_dir, environ = broken_venv
    pristine = tree_state(venv_dir)

    first = tritondoctor("fix", "--yes", "--no-smoke", environ=environ)
    assert first.returncode == 0, first.stderr
    fixed = tree_state(venv_dir)
    assert fixed != pristine
    journal_runs = list((venv_dir / ".tritondoctor" / "journal").iterdir())
    assert len(journal_runs) == 1

    # Again, in the same (not yet re-activated) shell, and again in a re-activated one.
    for env in (environ, venv_activated(venv_dir, clean_environ)):
        again = tritondoctor("fix", "--yes", "--no-smoke", environ=env)
        assert again.returncode == 0, again.stderr
        assert tree_state(venv_dir) == fixed
        assert "already in place" in again.stdout
    # In the re-activated shell the hook is in effect and check is clean: a dry run plans nothing.
    dry = tritondoctor("fix", "--dry-run", environ=venv_activated(venv_dir, clean_environ))
    assert dry.returncode == 0 and "clears:" not in dry.stdout and "already in place" in dry.stdout, dry.stdout

    undo = tritondoctor("fix", "--undo", environ=environ)
    assert undo.returncode == 0, undo.stderr
    assert tree_state(venv_dir) == pristine  # bin/activate, activate.fish and .tritondoctor/ all as before
    nothing = tritondoctor("fix", "--undo", environ=environ)  # nothing left: said, and not an error
    assert nothing.returncode == 0 and "no fix to undo" in nothing.stdout
    assert tree_state(venv_dir) == pristine


def test_without_a_terminal_and_without_yes_nothing_is_changed(broken_venv) -> None:
    venv_dir, environ = broken_venv
    pristine = tree_state(venv_dir)

    refused = tritondoctor("fix", environ=environ)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr

    dry = tritondoctor("fix", "--dry-run", "--json", environ=environ)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["plans"][0]
    assert plan["changes"][0]["path"] == str(venv_dir / "bin" / "activate")
    assert plan["changes"][0]["sha256_before"] == tree_state(venv_dir)["bin/activate"][1]
    assert tree_state(venv_dir) == pristine


def test_env_prints_exports_that_fix_a_shell_that_activates_nothing(broken_venv, pytriton_venv: Path,
                                                                    clean_environ: dict[str, str]) -> None:
    venv_dir, _ = broken_venv
    python = venv_dir / "bin" / "python"
    environ = dict(clean_environ)
    out = tritondoctor("env", "--python", str(python), environ=environ)
    assert out.returncode == 0, out.stderr
    shell = subprocess.run(["bash", "-c", 'eval "$1" && eval "$("$2" -m tritondoctor env --python "$3")" && env -0',
                            "_", out.stdout, sys.executable, str(python)],
                           env=environ, capture_output=True, timeout=120)
    assert shell.returncode == 0, shell.stderr
    evaluated = dict(item.split(b"=", 1) for item in shell.stdout.split(b"\0") if b"=" in item)
    value = evaluated[b"LD_LIBRARY_PATH"].decode()
    assert value == own_libdir()  # eval twice = once
    report = check_json(python, dict(environ, LD_LIBRARY_PATH=value))
    assert errors(report, LOADER_IDS) == []
    bad_shell = tritondoctor("env", "--shell", "tcsh", "--python", str(python), environ=environ)
    assert bad_shell.returncode == 2 and "Traceback" not in bad_shell.stderr


def test_an_old_libstdcxx_ahead_of_the_systems_is_fixed_by_path_order(layered_venv, clean_environ: dict[str, str],
                                                                       tmp_path: Path) -> None:
    """A venv has nothing to install into: when the system's libstdc++ is new enough, the fix is
    path order (its directory ahead of the old one), proven and then really checked."""
    from libstdcxx_fixture import build_old_libstdcxx, real_libstdcxx

    old = build_old_libstdcxx(tmp_path / "old lib")
    venv_dir = layered_venv("venv")
    environ = venv_activated(venv_dir, dict(clean_environ, LD_LIBRARY_PATH=str(old.parent)))
    (glibcxx,) = by_id(check_json(venv_dir / "bin" / "python", environ), "glibcxx")
    assert glibcxx["status"] == "error"

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", environ=environ)

    assert proc.returncode == 0, proc.stderr
    (plan,) = json.loads(proc.stdout)["plans"]
    assert plan["id"] == "venv-hooks" and "glibcxx" in plan["clears"]
    assert plan["dirs"][-1] == str(real_libstdcxx().parent)
    after = venv_activated(venv_dir, dict(clean_environ, LD_LIBRARY_PATH=str(old.parent)))
    assert after["LD_LIBRARY_PATH"] == ":".join(plan["dirs"] + [str(old.parent)])
    assert errors(check_json(venv_dir / "bin" / "python", after), LOADER_IDS) == []


@pytest.mark.slow
def test_fix_then_smoke_serves_a_model(broken_venv, clean_environ: dict[str, str]) -> None:
    pytest.importorskip("tritondoctor.smoke")
    venv_dir, environ = broken_venv
    proc = tritondoctor("fix", "--yes", "--json", environ=environ, timeout=600)
    result = json.loads(proc.stdout)
    smoke = result["smoke"]
    assert smoke is not None, proc.stderr
    assert smoke["passed"], [f.get("title") for f in smoke.get("findings", [])]
    assert proc.returncode == 0
