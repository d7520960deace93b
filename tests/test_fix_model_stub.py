"""`tritondoctor fix --model-repository DIR`: the `model-stub` fix, through the CLI on a real
repository. A model whose packed execution environment is Python 3.9, served by the 3.11 stub of
the target: `check` errors, `fix --yes` copies nvidia-pytriton's 3.9 stub into the model
directory (journaled there), `check` is then ok for it, the real server loads it and answers
(with `.tritondoctor/` in the model directory), and `fix --undo` brings the repository back byte
for byte. An environment the copied stub still could not run in is left alone and said so."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from repo_fixtures import env_prefix, have_pyenv, numpy_dir, pack, packed_serving_env
from repo_server_fixtures import write_add_sub

STUB = "triton_python_backend_stub"
ENV_PARAM = 'parameters: { key: "EXECUTION_ENV_PATH" value: { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }\n'


def _td(python: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritondoctor", *args, "--python", str(python)],
                          capture_output=True, text=True, timeout=600, env=env)


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every entry under root: its kind / content hash and its mode."""
    out: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            kind = "dir" if path.is_dir() and not path.is_symlink() else (
                "link:" + os.readlink(path) if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest())
            out[str(path.relative_to(root))] = (kind, st.st_mode)
    return out


def _model_with_env(repo: Path, name: str, tarball: Path) -> Path:
    model = write_add_sub(repo, name)
    shutil.copy(tarball, model / "env.tar.gz")
    (model / "config.pbtxt").write_text((model / "config.pbtxt").read_text() + ENV_PARAM)
    return model


def _model_findings(stdout: str, name: str) -> list[dict]:
    return [f for f in json.loads(stdout)["findings"] if f["id"] == "model-repository" and f"'{name}'" in f["title"]]


@pytest.fixture
def target(layered_venv: Callable[[str], Path], clean_environ: dict[str, str]) -> tuple[Path, dict[str, str]]:
    venv = layered_venv("target")
    return venv / "bin" / "python", dict(clean_environ)


@pytest.mark.slow
@pytest.mark.skipif(not (have_pyenv("3.9") and numpy_dir("3.9")),
                    reason="needs pyenv's 3.9.18 with numpy<2 in its site-packages "
                           "(/root/.pyenv/versions/3.9.18/bin/python -m pip install 'numpy<2')")
def test_fix_copies_the_39_stub_then_undo_restores_the_repository(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, target: tuple[Path, dict[str, str]]) -> None:
    python, env = target
    repo = tmp_path / "repo"
    model = _model_with_env(repo, "py39", packed_serving_env(tmp_path_factory.getbasetemp(), "3.9"))
    before = _tree(repo)

    check = _td(python, "check", "--json", "--only", "model-repository", "--model-repository", str(repo), env=env)
    (error,) = [f for f in _model_findings(check.stdout, "py39") if f["status"] == "error"]
    assert check.returncode == 1 and error["fix"]["id"] == "model-stub" and "3.9" in error["title"]

    dry = _td(python, "fix", "--dry-run", "--json", "--model-repository", str(repo), env=env)
    plans = [p for p in json.loads(dry.stdout)["plans"] if p["id"] == "model-stub"]
    assert [p["prefix"] for p in plans] == [str(model)] and plans[0]["prediction"]["proven"], dry.stdout
    stub_sha = hashlib.sha256(Path(plans[0]["commands"][0]["argv"][1]).read_bytes()).hexdigest()
    assert plans[0]["changes"][0]["sha256_after"] == stub_sha and plans[0]["changes"][0]["sha256_before"] is None
    assert _tree(repo) == before, "--dry-run changed the repository"

    fixed = _td(python, "fix", "--yes", "--no-smoke", "--json", "--model-repository", str(repo), env=env)
    report = json.loads(fixed.stdout)
    assert "model-stub" in report["applied"], fixed.stderr
    assert (model / STUB).read_bytes() == Path(plans[0]["commands"][0]["argv"][1]).read_bytes()
    assert (model / STUB).stat().st_mode & 0o777 == 0o755
    assert (model / ".tritondoctor" / "journal").is_dir()

    check = _td(python, "check", "--json", "--only", "model-repository", "--model-repository", str(repo), env=env)
    assert [f["status"] for f in _model_findings(check.stdout, "py39")] == ["ok"], check.stdout

    # The real server loads the model with the copied stub, .tritondoctor/ beside it.
    smoke = _td(python, "smoke", "--json", "--model-repository", str(repo), env=env)
    result = json.loads(smoke.stdout)
    assert smoke.returncode == 0 and result["passed"], smoke.stdout[-3000:]
    assert [m["name"] for m in result["models"]] == ["py39"]
    # This server version's python backend chmods a model's own stub to owner-execute only when it
    # loads it; undo must not take that for a user's edit.
    assert (model / STUB).stat().st_mode & 0o777 == 0o100

    undo = _td(python, "fix", "--undo", "--json", "--model-repository", str(repo), env=env)
    assert undo.returncode == 0 and json.loads(undo.stdout)["undone"][0]["prefix"] == str(model), undo.stderr
    assert _tree(repo) == before
    again = _td(python, "fix", "--undo", "--model-repository", str(repo), env=env)
    assert again.returncode == 0 and "nothing to undo" in again.stdout


@pytest.mark.skipif(not have_pyenv("3.9"), reason="needs pyenv's 3.9.18")
def test_env_without_libpython_is_advice_not_a_plan(tmp_path: Path, target: tuple[Path, dict[str, str]]) -> None:
    python, env = target
    repo = tmp_path / "repo"
    prefix = env_prefix(tmp_path / "env39", "3.9", libpython=False)
    _model_with_env(repo, "nolib", pack(prefix, tmp_path / "env39.tar.gz"))
    before = _tree(repo)
    dry = _td(python, "fix", "--dry-run", "--json", "--model-repository", str(repo), env=env)
    report = json.loads(dry.stdout)
    assert not [p for p in report["plans"] if p["id"] == "model-stub"]
    (note,) = [n for n in report["notes"] if n.startswith("model-stub: not fixed automatically")]
    assert "'nolib'" in note and "libpython3.9" in note
    assert _tree(repo) == before


def test_a_foreign_stub_is_kept_without_force(tmp_path: Path, target: tuple[Path, dict[str, str]]) -> None:
    python, env = target
    repo = tmp_path / "repo"
    prefix = env_prefix(tmp_path / "env39", "3.9")
    model = _model_with_env(repo, "custom", pack(prefix, tmp_path / "env39.tar.gz"))
    pytriton = subprocess.run([str(python), "-c", "import pytriton, os; print(os.path.dirname(pytriton.__file__))"],
                              capture_output=True, text=True, check=True).stdout.strip()
    # A 3.11 stub with one byte appended: a stub of the wrong Python that nvidia-pytriton did not ship.
    data = Path(pytriton, "tritonserver", "python_backend_stubs", "3.11", STUB).read_bytes() + b"\0"
    (model / STUB).write_bytes(data)
    os.chmod(model / STUB, 0o755)
    dry = _td(python, "fix", "--dry-run", "--json", "--model-repository", str(repo), env=env)
    (plan,) = [p for p in json.loads(dry.stdout)["plans"] if p["id"] == "model-stub"]
    assert not plan["changes"] and not plan["prediction"]["proven"] and "--force" in plan["prediction"]["reason"]
    assert (model / STUB).read_bytes() == data
