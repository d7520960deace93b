"""Shell completion, typer's own: the script for a shell, and real completions of command names
and options through the variables the shell sets."""

from __future__ import annotations

import os
import subprocess
import sys


def _complete(words: str, cword: int) -> list[str]:
    env = dict(os.environ, _TRITONDOCTOR_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
    proc = subprocess.run([sys.executable, "-m", "tritondoctor"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_the_bash_script_calls_back_into_the_tool() -> None:
    proc = subprocess.run([sys.executable, "-m", "tritondoctor", "--show-completion", "bash"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "_TRITONDOCTOR_COMPLETE" in proc.stdout, proc.stdout + proc.stderr


def test_command_names_and_options_complete() -> None:
    assert _complete("tritondoctor ch", 1) == ["check"]
    assert set(_complete("tritondoctor ex", 1)) == {"explain"}
    assert "--json" in _complete("tritondoctor check --js", 2)
    assert "--model-repository" in _complete("tritondoctor smoke --model", 2)
