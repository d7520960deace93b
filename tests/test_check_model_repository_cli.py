"""`tritondoctor check --model-repository` end to end: the option reaches the snapshot, the
declared model-repository check reports on it, and bad paths are one-line usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from repo_fixtures import write_model


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritondoctor", "check", "--json", "--python", sys.executable,
                           "--only", "model-repository", *args], capture_output=True, text=True, timeout=300)


def test_a_broken_config_is_reported_with_its_line_and_a_healthy_model_is_ok(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "good")
    write_model(repo, "broken", config='name: "broken"\nbackend: "python"\nmax_batch_size: oops\n')
    proc = _check("--model-repository", str(repo))
    assert proc.returncode == 1, proc.stderr
    findings = [f for f in json.loads(proc.stdout)["findings"] if f["id"] == "model-repository"]
    errors = [f for f in findings if f["status"] == "error"]
    assert any("config.pbtxt:3" in (f["title"] + f["detail"]) for f in errors), errors
    assert any("good" in f["title"] and f["status"] == "ok" for f in findings), findings


def test_without_the_option_the_check_says_nothing(tmp_path: Path) -> None:
    proc = _check()
    assert proc.returncode == 0, proc.stderr
    assert [f for f in json.loads(proc.stdout)["findings"] if f["id"] == "model-repository"] == []


def test_a_missing_repository_is_a_usage_error(tmp_path: Path) -> None:
    proc = _check("--model-repository", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no such directory" in proc.stderr
