"""`tritondoctor tree --stub --imports` through the CLI: the stub's closure, numpy's extension
modules, and bad combinations refused in one line (the model itself is checked against a real
stub's memory map in test_stub_tree.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _tree(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritondoctor", "tree", *args], capture_output=True, text=True,
                          timeout=300)


def test_stub_tree_json_has_the_stub_closure_and_the_named_module() -> None:
    pytest.importorskip("pytriton")
    proc = _tree("--stub", "--imports", "numpy", "--json", "--python", sys.executable)
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    names = {os.path.basename(lib["path"] or "") for lib in data["libraries"]}
    assert any(n.startswith("libpython3.") for n in names), names
    assert any(e["module"].startswith("numpy") for e in data["extensions"])
    assert "triton_python_backend_stub" in data["file"]


def test_stub_with_a_file_or_imports_without_stub_are_usage_errors(tmp_path) -> None:
    for args in (("--stub", "/bin/true"), ("/bin/true", "--imports", "numpy")):
        proc = _tree(*args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_model_repository_gives_one_tree_per_python_model(tmp_path) -> None:
    """Per model: its stub, its imports followed from model.py; a model whose execution
    environment is missing, or whose config.pbtxt does not parse, is named with why, and makes
    the exit status 1; a model of another backend has no stub and is not listed."""
    pytest.importorskip("pytriton")
    from repo_fixtures import write_model
    from repo_server_fixtures import write_add_sub

    repo = tmp_path / "repo"
    write_add_sub(repo, "plain")
    write_model(repo, "lost_env", env="$$TRITON_MODEL_DIRECTORY/env.tar.gz")
    write_model(repo, "onnx", backend="onnxruntime", model_py=None)
    write_model(repo, "typo", config='name: "typo"\nbackend: "python"\nmax_batch_size: [\n')
    proc = _tree("--stub", "--model-repository", str(repo), "--json", "--python", sys.executable)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    models = {m["model"]: m for m in data["models"]}
    assert sorted(models) == ["lost_env", "plain", "typo"] and data["errors"] == []
    [config_error] = models["typo"]["errors"]
    assert config_error.startswith(f"{repo / 'typo' / 'config.pbtxt'}:3:") and models["typo"]["libraries"] == []
    plain = models["plain"]
    assert plain["env"] is None and plain["extensions_from"] == "imports" and not plain["errors"]
    assert any(os.path.basename(lib["path"] or "").startswith("libpython3.") for lib in plain["libraries"])
    assert any(e["module"].startswith("numpy") for e in plain["extensions"])  # the stub imports numpy itself
    lost = models["lost_env"]
    assert lost["libraries"] == [] and lost["errors"] == [
        f"execution environment {repo / 'lost_env' / 'env.tar.gz'}: {repo / 'lost_env' / 'env.tar.gz'} does not exist"]

    text = _tree("--stub", "--model-repository", str(repo), "--python", sys.executable)
    assert "model 'plain'" in text.stdout and "does not exist" in text.stdout, text.stdout[-2000:]
    assert "None" not in text.stdout  # a model without a stub to draw has no stub line


def test_model_repository_options_are_checked_in_one_line(tmp_path) -> None:
    cases = (
        (("--stub", "--model-repository", str(tmp_path / "nope")), "--model-repository"),
        (("--stub", "--model-repository", str(tmp_path), "--backend-directory", str(tmp_path / "nope")),
         "--backend-directory"),
        (("/bin/true", "--model-repository", str(tmp_path)), "go with --stub"),
        (("--stub", "--backend-directory", str(tmp_path)), "goes with --model-repository"),
    )
    for args, words in cases:
        proc = _tree(*args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr, (args, proc.stderr)
