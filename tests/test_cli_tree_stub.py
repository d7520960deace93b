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
