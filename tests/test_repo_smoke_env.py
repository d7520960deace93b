"""`smoke --model-repository` with packed execution environments: a REAL load by nvidia-pytriton's
tritonserver, for the two seed bugs inside EXECUTION_ENV_PATH.

What this server version's python backend (PyTriton 0.7.0's) does with EXECUTION_ENV_PATH, read
from its log and from inside the stub:
- a tarball is unpacked into /tmp/python_env_XXXXXX/0 (a `0` subdirectory) when the model loads
  ("Using Python execution env ..."); a directory is used as it is;
- the stub runs as `source <env>/bin/activate && exec env LD_LIBRARY_PATH=<env>/lib:$LD_LIBRARY_PATH
  stub ...`; the embedded Python finds its prefix through `python3` on PATH, so an activate that
  does not put the env's bin/ first (conda-pack's does) runs the model with the server's Python;
- surprise: an env WITHOUT lib/libpython3.X.so.1.0 does not fail at the loader: glibc takes the
  system's libpython3.X from ld.so.cache and the model fails later with "No module named 'numpy'";
  a 3.9 env under the 3.11 stub fails the same way. The log alone blames a package; smoke puts
  the static cause (no libpython in the env / the stub's Python) first for that model;
- numpy 2 in the env: the model loads and computes, but PyTriton 0.7.0's stub hands the arrays
  back empty (the client sees "cannot reshape array of size 0"), so the envs here carry numpy 1.x;
- the backend chmods a stub in the model directory to 0100 each time it loads the model (see
  test_fix_model_stub.py).
"""

from __future__ import annotations

import glob
import shutil
import sys
from pathlib import Path

import pytest

from repo_fixtures import have_pyenv, numpy_dir, packed_serving_env
from repo_server_fixtures import write_add_sub
from tritondoctor.smoke.repository import run_repository_smoke

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (have_pyenv("3.11") and numpy_dir("3.11")), reason="needs pyenv's 3.11.7 and numpy<2")]
ENV_PARAM = 'parameters: { key: "EXECUTION_ENV_PATH" value: { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }\n'


def _model_with_env(repo: Path, name: str, tarball: Path) -> Path:
    model = write_add_sub(repo, name)
    shutil.copy(tarball, model / "env.tar.gz")
    (model / "config.pbtxt").write_text((model / "config.pbtxt").read_text() + ENV_PARAM)
    return model


def _smoke(repo: Path, env: dict[str, str]):
    before = set(glob.glob("/tmp/python_env_*"))
    result = run_repository_smoke([str(repo)], sys.executable, env, None, None, 120.0)
    # Every environment the backend unpacked for this run is gone (the backend keeps them when
    # the server is stopped rather than unloading each model).
    assert set(glob.glob("/tmp/python_env_*")) - before == set()
    return result


def test_a_packed_311_env_loads_and_infers_and_ignores_our_state_dir(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, clean_environ: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    model = _model_with_env(repo, "env311", packed_serving_env(tmp_path_factory.getbasetemp(), "3.11"))
    # What `fix` leaves in a model directory: Triton must not take it for a version.
    (model / ".tritondoctor" / "journal").mkdir(parents=True)
    result = _smoke(repo, clean_environ)
    assert result.passed, result.to_json()
    (m,) = result.models
    assert m.ready and m.http and dict(m.http.outputs) == {"SUM": [1], "DIFF": [1]}


def test_the_same_env_without_libpython_is_named(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, clean_environ: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    _model_with_env(repo, "nolib", packed_serving_env(tmp_path_factory.getbasetemp(), "3.11", libpython=False))
    _model_with_env(repo, "good", packed_serving_env(tmp_path_factory.getbasetemp(), "3.11"))
    result = _smoke(repo, clean_environ)
    assert not result.passed and result.model("good").passed
    first = result.model("nolib").findings[0]
    assert first.id == "model-repository" and "libpython3.11.so.1.0" in first.title and "'nolib'" in first.title
    assert first.fix is not None and first.fix.id == "repack-env"


@pytest.mark.skipif(not (have_pyenv("3.9") and numpy_dir("3.9")), reason="needs pyenv's 3.9.18 with numpy<2")
def test_a_39_env_under_the_311_stub_is_named(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, clean_environ: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    _model_with_env(repo, "py39", packed_serving_env(tmp_path_factory.getbasetemp(), "3.9"))
    result = _smoke(repo, clean_environ)
    assert not result.passed
    first = result.model("py39").findings[0]
    assert first.id == "model-repository" and "Python 3.9" in first.title and "3.11" in first.title
    assert first.fix is not None and first.fix.id == "model-stub"


def test_an_old_libstdcxx_inside_the_env_breaks_the_load_and_is_named(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, clean_environ: dict[str, str]) -> None:
    """The second seed bug inside a packed env: the backend puts the env's lib/ first, so the
    stub loads the env's libstdc++.so.6; one cut at GLIBCXX_3.4.29 (conda's libstdcxx-ng 11) lacks
    what the 0.7.0 binaries need. The real load fails and smoke names the file and the remedy."""
    from libstdcxx_fixture import build_old_libstdcxx
    from repo_fixtures import pack, serving_env

    prefix = serving_env(tmp_path / "env", "3.11")
    old = build_old_libstdcxx(tmp_path / "old")
    shutil.copy(old, prefix / "lib" / "libstdc++.so.6")
    tarball = pack(prefix, tmp_path / "oldcxx.tar.gz")
    repo = tmp_path / "repo"
    _model_with_env(repo, "oldcxx", tarball)
    result = _smoke(repo, clean_environ)
    assert not result.passed
    # The stub cannot start at all: the run stops at that line (fast fail) and names it.
    named = [f for f in result.findings if f.id == "glibcxx"]
    assert named and "GLIBCXX_3.4.30" in named[0].title and "/lib/libstdc++.so.6" in named[0].title, result.to_json()
    assert named[0].fix is not None and named[0].fix.id == "repack-env"  # the tarball's, not this machine's
