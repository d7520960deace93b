"""What a person copies from the terminal: commands are never wrapped, whatever the width or
when stdout is a pipe; option values are validated before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(*args: str, columns: str = "40") -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS=columns, TERM="dumb")
    env.pop("LD_LIBRARY_PATH", None)
    return subprocess.run([sys.executable, "-m", "tritondoctor", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_an_export_command_stays_on_one_line_in_a_narrow_pipe() -> None:
    proc = _run("check", "--python", sys.executable, "--only", "libpython")
    exports = [line for line in proc.stdout.splitlines() if "export LD_LIBRARY_PATH=" in line]
    if not exports:
        pytest.skip("no loader-path finding here to carry an export (this machine's libpython mismatch is absent)")
    for line in exports:
        assert line.rstrip().endswith("${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"), line
    assert max(len(line) for line in exports) > 40  # it was long enough to have been wrapped


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_a_timeout_must_be_finite_and_positive(value: str) -> None:
    proc = _run("smoke", "--timeout", value)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--timeout" in proc.stderr, proc.stderr
