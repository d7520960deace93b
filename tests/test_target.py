"""Which interpreter is the user's environment (issue 3: not necessarily tritondoctor's own)."""

from __future__ import annotations

import os
import venv
from pathlib import Path

import pytest

from tritondoctor.facts.target import TargetError, choose_interpreter, probe


def make_env(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    return path


def test_active_venv_wins_over_python_on_path(tmp_path: Path) -> None:
    env = make_env(tmp_path / "v")
    chosen, why = choose_interpreter({"VIRTUAL_ENV": str(env), "PATH": "/usr/bin"}, None)
    assert (chosen, why) == (str(env / "bin" / "python"), "VIRTUAL_ENV")


def test_venv_activated_inside_conda_env_is_the_target(tmp_path: Path) -> None:
    conda, inner = make_env(tmp_path / "conda"), make_env(tmp_path / "venv")
    (conda / "conda-meta").mkdir()
    later_on_top = {"CONDA_PREFIX": str(conda), "VIRTUAL_ENV": str(inner), "PATH": f"{inner}/bin:{conda}/bin:/usr/bin"}
    assert choose_interpreter(later_on_top, None)[1] == "VIRTUAL_ENV"
    conda_on_top = dict(later_on_top, PATH=f"{conda}/bin:{inner}/bin:/usr/bin")
    assert choose_interpreter(conda_on_top, None) == (str(conda / "bin" / "python"), "CONDA_PREFIX")


def test_explicit_python_wins_and_bad_ones_are_one_line_errors(tmp_path: Path) -> None:
    env = make_env(tmp_path / "v")
    assert choose_interpreter({"VIRTUAL_ENV": "/nowhere"}, str(env / "bin" / "python"))[1] == "--python"
    with pytest.raises(TargetError, match="no such file or command"):
        choose_interpreter({"PATH": "/usr/bin"}, "no-such-python-here")
    script = tmp_path / "notpython"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(TargetError, match="not a working Python"):
        probe(str(script), dict(os.environ, TRITONDOCTOR_CACHE_DIR=""))


def test_probe_reads_the_target_not_ourselves(tmp_path: Path) -> None:
    env = make_env(tmp_path / "v")
    target = probe(str(env / "bin" / "python"), dict(os.environ, TRITONDOCTOR_CACHE_DIR=str(tmp_path / "cache")))
    assert target.prefix == str(env)
    assert target.env_kind == "venv"
    assert "nvidia-pytriton" not in target.distributions  # an empty venv, whatever we have


def test_probe_cache_notices_a_newly_installed_distribution(tmp_path: Path) -> None:
    env = make_env(tmp_path / "v")
    environ = dict(os.environ, TRITONDOCTOR_CACHE_DIR=str(tmp_path / "cache"))
    python = str(env / "bin" / "python")
    assert "numpy" not in probe(python, environ).distributions
    site = next((env / "lib").glob("python3*/site-packages"))
    dist = site / "numpy-1.26.4.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n")
    assert probe(python, environ).distributions["numpy"].version == "1.26.4"
