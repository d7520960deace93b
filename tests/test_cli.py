"""The command line contract: JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def tritondoctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tritondoctor", *args], capture_output=True, text=True, env=env, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tritondoctor: error:"), proc.stderr


@pytest.mark.parametrize("args", [
    ["check", "--bogus"],
    ["check", "--ports", "80x"],
    ["check", "--ports", "70000"],
    ["check", "--only", "no-such-check"],
    ["tree"],
    ["tree", "/no/such/file"],
    ["smoke", "--timeout", "-1"],
])
def test_bad_usage_is_one_line_and_exit_2(args: list[str]) -> None:
    assert_one_line_error(tritondoctor(*args))


def test_python_that_is_not_python(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    assert_one_line_error(tritondoctor("check", "--python", str(fake)))
    assert_one_line_error(tritondoctor("check", "--python", str(tmp_path / "missing")))
    assert_one_line_error(tritondoctor("check", "--python", "/etc/passwd"))


def test_check_json_shape(pytriton_venv: Path) -> None:
    proc = tritondoctor("check", "--json", "--python", str(pytriton_venv / "bin" / "python"))
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) >= {"tool_version", "target", "findings"}
    assert report["target"]["python"].startswith(str(pytriton_venv))
    ids = set()
    for finding in report["findings"]:
        assert set(finding) == {"id", "status", "title", "detail", "evidence", "fix"}
        assert finding["status"] in {"ok", "warn", "error", "skip"}
        assert isinstance(finding["title"], str) and finding["title"]
        assert isinstance(finding["evidence"], dict)
        if finding["fix"] is not None:
            assert set(finding["fix"]) == {"id", "summary", "commands"}
            assert all(isinstance(c, str) for c in finding["fix"]["commands"])
        ids.add(finding["id"])
    assert {"pytriton", "libpython", "glibcxx", "libs"} <= ids
    assert proc.returncode == (1 if any(f["status"] == "error" for f in report["findings"]) else 0)


def test_tree_json_contract() -> None:
    proc = tritondoctor("tree", "--json", "--env", "LD_LIBRARY_PATH=", "/bin/ls")
    data = json.loads(proc.stdout)
    assert set(data) >= {"file", "libraries", "version_errors", "errors"}
    assert data["file"] == "/bin/ls"
    for lib in data["libraries"]:
        assert {"name", "path", "needed_by", "how"} <= set(lib)
        assert isinstance(lib["needed_by"], list)
    assert any(lib["name"] == "libc.so.6" and lib["path"] for lib in data["libraries"])
    assert proc.returncode == 0


def test_tree_what_if_env_override(tmp_path: Path) -> None:
    """--env changes the resolution without touching the real environment."""
    plain = json.loads(tritondoctor("tree", "--json", "--env", "LD_LIBRARY_PATH", "/bin/ls").stdout)
    system_libc = next(lib for lib in plain["libraries"] if lib["name"] == "libc.so.6")["path"]
    shutil.copy2(system_libc, tmp_path / "libc.so.6")
    proc = tritondoctor("tree", "--json", "--env", f"LD_LIBRARY_PATH={tmp_path}", "/bin/ls")
    libc = next(lib for lib in json.loads(proc.stdout)["libraries"] if lib["name"] == "libc.so.6")
    assert libc["path"] == str(tmp_path / "libc.so.6") and libc["via"] == "ld_library_path"
    assert proc.returncode == 0
    # A file there that is no ELF object at all stops the real loader; the model says so.
    (tmp_path / "libc.so.6").write_text("not an ELF object, but long enough to have a header: " + "x" * 64)
    proc = tritondoctor("tree", "--json", "--env", f"LD_LIBRARY_PATH={tmp_path}", "/bin/ls")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and any("invalid ELF header" in e for e in data["errors"])
