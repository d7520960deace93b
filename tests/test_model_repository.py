"""check --model-repository: real repositories, real packed environments, real stubs.

The target is the interpreter running the tests (pyenv 3.11 with nvidia-pytriton installed), so
the backend is PyTriton's and the stub for 3.11 is the real one from the wheel.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest
from elf_fixtures import Fixtures, have_gcc
from libstdcxx_fixture import build_old_libstdcxx
from repo_fixtures import (
    clean_environ,
    clone,
    env_prefix,
    extension_package,
    have_pyenv,
    pack,
    site_packages,
    write_model,
)
from tritondoctor.checks.model_repository import run_repositories

from tritondoctor.facts.target import TargetPython, probe
from tritondoctor.findings import Finding, Status
from tritondoctor.repository import RepositoryFacts, gather_repositories

pytestmark = pytest.mark.skipif(not (have_gcc() and have_pyenv("3.9") and have_pyenv("3.11")),
                                reason="needs gcc and pyenv's shared 3.9 and 3.11 builds")


@pytest.fixture(scope="session")
def target() -> TargetPython:
    t = probe(sys.executable, clean_environ())
    if "nvidia-pytriton" not in t.distributions:
        pytest.skip("nvidia-pytriton is not installed in the test interpreter")
    return t


@pytest.fixture(scope="session")
def backends(target: TargetPython) -> str:
    location = target.distributions["nvidia-pytriton"].location
    assert location
    return os.path.join(location, "pytriton", "tritonserver", "backends")


@pytest.fixture(scope="session")
def prefixes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Base prefixes, built once: 3.11 and 3.9 with libpython, 3.11 without."""
    root = tmp_path_factory.mktemp("prefixes")
    return {
        "3.11": env_prefix(root / "py311", "3.11"),
        "3.9": env_prefix(root / "py39", "3.9"),
        "3.11-nolib": env_prefix(root / "py311-nolib", "3.11", libpython=False),
    }


@pytest.fixture(scope="session")
def packed(prefixes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("packed")
    return {name: pack(prefix, root / f"{name}.tar.gz") for name, prefix in prefixes.items()}


def gather(repo: Path, target: TargetPython, backends: str, **kwargs: object) -> RepositoryFacts:
    return gather_repositories([str(repo)], target, clean_environ(), backends, **kwargs)  # type: ignore[arg-type]


def check(repo: Path, target: TargetPython, backends: str, **kwargs: object) -> list[Finding]:
    facts = gather(repo, target, backends, **kwargs)
    json.dumps(facts.to_json())  # the facts are plain data
    findings = run_repositories(facts)
    assert all(f.id == "model-repository" and f.area == "Model repository" for f in findings)
    return findings


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == Status.ERROR]


def no_temp_left(before: set[str]) -> bool:
    return {p for p in os.listdir("/tmp") if p.startswith("tritondoctor-env-")} <= before


@pytest.fixture
def temp_dirs() -> Iterator[set[str]]:
    yield {p for p in os.listdir("/tmp") if p.startswith("tritondoctor-env-")}


def test_healthy_repository_is_all_ok(tmp_path: Path, prefixes: dict[str, Path], target: TargetPython,
                                      backends: str, temp_dirs: set[str]) -> None:
    prefix = clone(prefixes["3.11"], tmp_path / "env")
    fx = Fixtures(tmp_path)
    extension_package(fx, site_packages(prefix, "3.11"), "fastmath", "3.11")
    repo = tmp_path / "repo"
    model = write_model(repo, "adder", env="$$TRITON_MODEL_DIRECTORY/env.tar.gz", model_py=(
        "import json\nimport os\nimport triton_python_backend_utils as pb_utils\nimport fastmath\n"
        "from helpers import scale\ntry:\n    import torch\nexcept ImportError:\n    torch = None\n"))
    (model / "1" / "helpers.py").write_text("def scale(x):\n    return x\n")
    pack(prefix, model / "env.tar.gz")
    write_model(repo, "plain", model_py="import os\n")  # no environment: the target's 3.11
    write_model(repo, "onnx", config='name: "onnx"\nplatform: "onnxruntime_onnx"\n', model_py=None)

    findings = check(repo, target, backends)
    assert not [f for f in findings if f.status != Status.OK], [f.title for f in findings]
    titles = "\n".join(f.title for f in findings)
    assert "model 'adder'" in titles and "1 extension module(s) load" in titles
    assert "model 'onnx'" in titles and "skipped" in titles
    assert "allows execution" in titles
    assert no_temp_left(temp_dirs)


def test_python_39_env_with_311_stub(tmp_path: Path, packed: dict[str, Path], target: TargetPython,
                                     backends: str) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "legacy", env=str(packed["3.9"]))
    [error] = errors(check(repo, target, backends))
    assert "Python 3.9" in error.title and "Python 3.11" in error.title
    assert "libpython3.11.so.1.0" in error.title
    assert error.fix is not None
    [command] = error.fix.commands
    assert command.startswith("cp ") and "python_backend_stubs/3.9/triton_python_backend_stub" in command
    assert command.endswith(str(repo / "legacy" / "triton_python_backend_stub"))


def test_matching_custom_stub_in_the_model_directory(tmp_path: Path, packed: dict[str, Path],
                                                     target: TargetPython, backends: str) -> None:
    repo = tmp_path / "repo"
    model = write_model(repo, "legacy", env=str(packed["3.9"]))
    stubs = Path(backends).parent / "python_backend_stubs"
    (model / "triton_python_backend_stub").symlink_to(stubs / "3.9" / "triton_python_backend_stub")
    findings = check(repo, target, backends)
    assert not errors(findings), [f.title for f in findings]


def test_packed_env_without_libpython(tmp_path: Path, packed: dict[str, Path], target: TargetPython,
                                      backends: str) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "nolib", env=str(packed["3.11-nolib"]))
    [error] = errors(check(repo, target, backends))
    assert f"{packed['3.11-nolib']} has no lib/libpython3.11.so.1.0" in error.title
    assert error.fix is not None and any("conda pack" in c for c in error.fix.commands)


def test_packed_env_with_old_libstdcxx(tmp_path: Path, prefixes: dict[str, Path], target: TargetPython,
                                       backends: str) -> None:
    prefix = clone(prefixes["3.11"], tmp_path / "env")
    build_old_libstdcxx(tmp_path / "build", "GLIBCXX_3.4.29", "CXXABI_1.3.13").rename(prefix / "lib" / "libstdc++.so.6")
    archive = pack(prefix, tmp_path / "old.tar.gz")
    repo = tmp_path / "repo"
    write_model(repo, "oldcxx", env=str(archive))
    [error] = errors(check(repo, target, backends))
    assert f"{archive}!lib/libstdc++.so.6 lacks GLIBCXX_3.4.30" in error.title
    assert error.fix is not None and "libstdcxx-ng>=12" in error.fix.summary


def test_config_syntax_error_names_file_and_line(tmp_path: Path, target: TargetPython, backends: str) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "broken", config='name: "broken"\nbackend: "python"\ninput [ { name: "x" data_type: TYPE_FP32 dims: [ 1 } ]\n')
    [error] = errors(check(repo, target, backends))
    assert f"{repo / 'broken' / 'config.pbtxt'}:3:" in error.title


def test_bad_model_name(tmp_path: Path, target: TargetPython, backends: str) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "my model")
    [error] = errors(check(repo, target, backends))
    assert "'my model'" in error.title and "cannot pass to its stub" in error.title
    assert error.fix is not None and error.fix.commands[0].endswith("my_model'") or "my_model" in error.fix.commands[0]


def test_missing_model_file_in_the_selected_version(tmp_path: Path, target: TargetPython, backends: str) -> None:
    repo = tmp_path / "repo"
    model = write_model(repo, "twoversions", version="1")
    (model / "3").mkdir()  # the default policy loads the highest version only
    [error] = errors(check(repo, target, backends))
    assert error.title.endswith(f"{model / '3' / 'model.py'} does not exist")
    write_model(repo, "custom", config='name: "custom"\nbackend: "python"\ndefault_model_filename: "serve.py"\n')
    titles = [f.title for f in errors(check(repo, target, backends))]
    assert any(t.endswith(f"{repo / 'custom' / '1' / 'serve.py'} does not exist") for t in titles)


def test_import_the_env_does_not_provide(tmp_path: Path, packed: dict[str, Path], target: TargetPython,
                                         backends: str) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "needs_torch", env=str(packed["3.11"]), model_py="import os\n\nimport torch.nn as nn\n")
    [error] = errors(check(repo, target, backends))
    assert "line 3 imports 'torch'" in error.title and str(packed["3.11"]) in error.title


def fancy_env(tmp_path: Path, prefixes: dict[str, Path]) -> Path:
    """A packed 3.11 env whose libstdc++.so.6 is enough for the stub (GLIBCXX_3.4.30) and too old
    for the package `fancy`, whose extension needs GLIBCXX_3.4.32 from a vendored one."""
    prefix = clone(prefixes["3.11"], tmp_path / "env")
    build_old_libstdcxx(tmp_path / "build", "GLIBCXX_3.4.30", "CXXABI_1.3.13").rename(prefix / "lib" / "libstdc++.so.6")
    extension_package(Fixtures(tmp_path), site_packages(prefix, "3.11"), "fancy", "3.11", needs="GLIBCXX_3.4.32")
    return pack(prefix, tmp_path / "fancy.tar.gz")


def test_extension_needs_newer_glibcxx_than_the_stubs_libstdcxx(tmp_path: Path, prefixes: dict[str, Path],
                                                                target: TargetPython, backends: str) -> None:
    archive = fancy_env(tmp_path, prefixes)
    repo = tmp_path / "repo"
    write_model(repo, "uses_fancy", env=str(archive), model_py="import fancy\n")
    [error] = errors(check(repo, target, backends))
    assert "'fancy' cannot load in the stub" in error.title
    assert "GLIBCXX_3.4.32" in error.title and "_core.cpython-311-x86_64-linux-gnu.so" in error.title
    assert f"the stub had already loaded {archive}!lib/libstdc++.so.6 (needed by " in error.title
    assert error.fix is not None and "libstdcxx-ng>=13.2" in error.fix.summary


def test_stub_tree_per_model_dlopens_a_named_module_from_inside_the_tarball(
        tmp_path: Path, prefixes: dict[str, Path], target: TargetPython, backends: str, temp_dirs: set[str]) -> None:
    """`tree --stub --model-repository --imports fancy`: a module model.py does not import is
    unpacked from the tarball too, dlopen()ed into the stub's link map, and its GLIBCXX need is
    checked against the env's libstdc++.so.6 the stub loaded first."""
    from tritondoctor.repository.trees import model_stub_trees

    archive = fancy_env(tmp_path, prefixes)
    repo = tmp_path / "repo"
    write_model(repo, "plain_model", env=str(archive), model_py="import os\n")

    def tree(imports: list[str]) -> dict:
        data = model_stub_trees([str(repo)], target, clean_environ(), backends, imports, cwd=str(tmp_path))
        (model,) = data["models"]
        assert model["env"] == str(archive) and model["extensions_from"] == "packages" and not model["errors"]
        return model

    plain = tree([])
    assert plain["extensions"] == [] and plain["version_errors"] == []
    assert f"{archive}!lib/libstdc++.so.6" in [lib["path"] for lib in plain["libraries"]]
    named = tree(["fancy._core"])  # a submodule names its package's extensions too
    [extension] = named["extensions"]
    assert extension["module"] == "fancy._core" and extension["path"] == (
        f"{archive}!lib/python3.11/site-packages/fancy/_core.cpython-311-x86_64-linux-gnu.so")
    assert [(e["version"], e["file"]) for e in named["version_errors"]] == [
        ("GLIBCXX_3.4.32", f"{archive}!lib/libstdc++.so.6")]
    assert tree(["not_in_the_env"])["missing_modules"] == ["not_in_the_env"]
    assert no_temp_left(temp_dirs)


def test_corrupt_and_truncated_archives(tmp_path: Path, packed: dict[str, Path], target: TargetPython,
                                        backends: str, temp_dirs: set[str]) -> None:
    data = packed["3.11"].read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00" + b"not gzip at all" * 50)
    repo = tmp_path / "repo"
    write_model(repo, "cut", env=str(truncated))
    write_model(repo, "junk", env=str(garbage))
    write_model(repo, "nowhere", env="$$TRITON_MODEL_DIRECTORY/env.tar.gz")
    titles = sorted(f.title for f in errors(check(repo, target, backends)))
    assert len(titles) == 3, titles
    assert f"{truncated} cannot be unpacked: the archive is truncated" in titles[0]
    assert f"{garbage} cannot be unpacked" in titles[1]
    assert f"-> {repo / 'nowhere' / 'env.tar.gz'} does not exist" in titles[2]
    assert no_temp_left(temp_dirs)


def test_unpacked_directory_env_without_activate(tmp_path: Path, prefixes: dict[str, Path], target: TargetPython,
                                                 backends: str) -> None:
    prefix = clone(prefixes["3.11"], tmp_path / "env")
    (prefix / "bin" / "activate").unlink()
    repo = tmp_path / "repo"
    write_model(repo, "direnv", env=str(prefix))
    [error] = errors(check(repo, target, backends))
    assert f"{prefix} has no bin/activate" in error.title


def test_noexec_tmp_and_stub(tmp_path: Path, packed: dict[str, Path], target: TargetPython, backends: str) -> None:
    repo = tmp_path / "repo"
    model = write_model(repo, "m", env=str(packed["3.11"]))
    stub = model / "triton_python_backend_stub"
    stub.write_bytes((Path(backends).parent / "python_backend_stubs" / "3.11" / "triton_python_backend_stub").read_bytes())
    stub.chmod(0o644)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "40 27 0:50 / /tmp rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw\n"
        f"41 27 0:51 / {repo} rw,noexec - tmpfs tmpfs rw\n"
    )
    titles = [f.title for f in errors(check(repo, target, backends, mountinfo=str(mountinfo)))]
    assert any(t.startswith("/tmp is mounted noexec (/tmp)") for t in titles), titles
    assert any(t.endswith(f"the stub {stub} is not executable") for t in titles), titles
    assert any(f"the stub {stub} lies on {repo}, mounted noexec" in t for t in titles), titles


def test_unknown_backend_directory(tmp_path: Path, target: TargetPython) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "m")
    findings = check(repo, target, str(tmp_path / "no-backends"))
    assert any(f"backend directory {tmp_path / 'no-backends'} does not exist" in f.title for f in errors(findings))


def test_config_name_mismatch_and_empty_repository(tmp_path: Path, target: TargetPython, backends: str) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "alpha", config='name: "beta"\nbackend: "python"\n')
    empty = tmp_path / "empty"
    empty.mkdir()
    facts = gather_repositories([str(repo), str(empty), str(tmp_path / "absent")], target, clean_environ(), backends)
    findings = run_repositories(facts)
    titles = [f.title for f in findings]
    assert any("config.pbtxt names the model 'beta' but its directory is 'alpha'" in t for t in titles)
    assert any(f"model repository {empty} holds no model directory" in t for t in titles)
    assert any(f"model repository {tmp_path / 'absent'}: cannot list" in t for t in titles)


def test_without_tritonclient_one_finding(tmp_path: Path, target: TargetPython, backends: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tritonclient.grpc.model_config_pb2", None)
    monkeypatch.setitem(sys.modules, "tritonclient.grpc", None)
    repo = tmp_path / "repo"
    write_model(repo, "m")
    [finding] = check(repo, target, backends)
    assert finding.status == Status.ERROR and "tritonclient" in finding.title
