"""Fast tier: the `model-repository` check (what the python backend will do with each model)."""

from __future__ import annotations

import dataclasses

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import model_repository as check

from tritondoctor.findings import Finding
from tritondoctor.repository.types import (
    BackendFacts,
    ClosureFacts,
    ConfigError,
    EnvFacts,
    ImportFacts,
    ModelFacts,
    MountFacts,
    RepositoryFacts,
    RepositoryInfo,
    StubFacts,
    VersionFacts,
    VersionProblem,
)

REPO = "/models"
BACKENDS = "/opt/tritonserver/backends"
BACKEND_STUB = f"{BACKENDS}/python/triton_python_backend_stub"
ENV_TAR = f"{REPO}/add/env.tar.gz"


def _model(name: str = "add", **changes: object) -> ModelFacts:
    directory = f"{REPO}/{name}"
    model = ModelFacts(
        repository=REPO, name=name, directory=directory, config_file=f"{directory}/config.pbtxt", config_name=name,
        backend="python", versions=(VersionFacts(1, f"{directory}/1", f"{directory}/1/model.py", True),),
        python_minor="3.11", python_from="target",
        stub=StubFacts(BACKEND_STUB, "backend", True, True, needed_libpython=sf.LIBPYTHON, python_minor="3.11"),
        stub_closure=ClosureFacts(BACKEND_STUB, libpython=sf.OWN_LIBPYTHON, libstdcxx=sf.LIBSTDCXX),
        imports=(ImportFacts("numpy", 1, False, f"{sf.SITE}/numpy"),),
    )
    return dataclasses.replace(model, **changes)


def _env(**changes: object) -> EnvFacts:
    env = EnvFacts(configured="$$TRITON_MODEL_DIRECTORY/env.tar.gz", path=ENV_TAR, kind="tarball",
                   python_minors=("3.11",), libpython=f"lib/{sf.LIBPYTHON}", libstdcxx="lib/libstdc++.so.6",
                   has_activate=True, unpacked_bytes=300 * sf.MiB, members=1000)
    return dataclasses.replace(env, **changes)


def _facts(*models: ModelFacts, **changes: object) -> RepositoryFacts:
    facts = RepositoryFacts(
        repositories=(RepositoryInfo(REPO, models=models),),
        backend=BackendFacts(BACKENDS, "given", True, True, BACKEND_STUB, {"3.11": sf.STUB_311, "3.12": "/p/3.12/stub"}),
        unpack_dir=MountFacts("/tmp", "/", False, 20 * sf.GiB), target_minor="3.11",
    )
    return dataclasses.replace(facts, **changes)


def _run(facts: RepositoryFacts) -> list[Finding]:
    return sf.run(check, sf.base(repositories=facts))


def _one(facts: RepositoryFacts, status: Status) -> Finding:
    found = _run(facts)
    assert len(found) == 1, [(f.status.value, f.title) for f in found]
    assert found[0].status is status, found[0].title
    return found[0]


def _fix(finding: Finding) -> str | None:
    return finding.fix.id if finding.fix else None


def test_nothing_without_a_repository() -> None:
    assert sf.run(check, sf.base()) == []


def test_ok_model() -> None:
    found = _one(_facts(_model()), Status.OK)
    assert found.title == f"model 'add' ({REPO}): Python 3.11, stub {BACKEND_STUB}; 1 import(s) found, 0 extension module(s) load"
    assert found.area == check.AREA


def test_parser_missing() -> None:
    found = _one(_facts(_model(), parser_error="No module named 'tritonclient'"), Status.ERROR)
    assert "config.pbtxt cannot be read" in found.title and _fix(found) == "install-tritonclient"


def test_repository_errors_and_empty_repositories() -> None:
    bad = _facts(repositories=(RepositoryInfo(REPO, error="not a directory"), RepositoryInfo("/empty")))
    found = _run(bad)
    assert [(f.status, f.title) for f in found] == [(Status.ERROR, f"model repository {REPO}: not a directory"),
                                                   (Status.WARN, "model repository /empty holds no model directory")]


def test_other_backends_are_skipped() -> None:
    found = _one(_facts(_model(backend="", platform="onnxruntime_onnx")), Status.OK)
    assert "platform 'onnxruntime_onnx', not the python backend: skipped" in found.title


def test_config_error() -> None:
    error = ConfigError(f"{REPO}/add/config.pbtxt", 3, 7, "Expected \":\"")
    found = _one(_facts(_model(config_error=error)), Status.ERROR)
    assert "config.pbtxt:3:7: Expected" in found.title and _fix(found) == "edit-config"


def test_backend_directory_without_python() -> None:
    facts = _facts(_model(), backend=BackendFacts(BACKENDS, "given", False, False, BACKEND_STUB))
    found = sf.titled(_run(facts), "backend directory")
    assert f"{BACKENDS} does not exist" in found.title and _fix(found) == "backend-directory"


def test_structure_problems() -> None:
    assert _fix(sf.titled(_run(_facts(_model("my model"))), "has characters")) == "rename-model"
    odd_repo = _model(repository="/my models")
    assert _fix(sf.titled(_run(_facts(odd_repo)), "the repository path")) == "move-repository"
    renamed = _model(config_name="sub")
    assert _fix(sf.titled(_run(_facts(renamed)), "config.pbtxt names the model 'sub'")) == "edit-config"
    unversioned = _model(versions=(), version_note="no numeric version directory")
    assert _fix(sf.titled(_run(_facts(unversioned)), "no numeric version directory")) == "add-version"
    no_file = _model(versions=(VersionFacts(1, f"{REPO}/add/1", f"{REPO}/add/1/model.py", False),))
    assert _fix(sf.titled(_run(_facts(no_file)), "model.py does not exist")) == "add-model-file"
    broken = _model(model_file_error="model.py line 3: invalid syntax")
    assert sf.titled(_run(_facts(broken)), "invalid syntax").status is Status.ERROR


def test_stub_problems() -> None:
    stub = _model().stub
    assert stub is not None
    missing = _model(stub=dataclasses.replace(stub, exists=False), stub_closure=None)
    assert "no stub:" in _one(_facts(missing), Status.ERROR).title
    found = _run(_facts(_model(stub=dataclasses.replace(stub, elf_error="not an ELF file", executable=False,
                                                         mount=MountFacts(REPO, REPO, True)))))
    assert sf.fix_ids(found) == ["model-stub", "chmod-stub", "move-stub"]
    assert found[0].fix is not None and found[0].fix.commands == (f"cp {sf.STUB_311} {REPO}/add/triton_python_backend_stub",)


def test_environment_problems() -> None:
    gone = _one(_facts(_model(env=_env(kind="missing"), stub_closure=None)), Status.ERROR)
    assert "does not exist" in gone.title and _fix(gone) == "execution-env"
    corrupt = _one(_facts(_model(env=_env(error="truncated gzip"), stub_closure=None)), Status.ERROR)
    assert "cannot be unpacked: truncated gzip" in corrupt.title and _fix(corrupt) == "repack-env"
    plain = _run(_facts(_model(env=_env(has_activate=False))))
    assert _fix(sf.titled(plain, "has no bin/activate")) == "repack-env"
    unknown = sf.titled(_run(_facts(_model(env=_env(python_minors=()), python_minor=None))), "which Python it holds")
    assert unknown.status is Status.WARN


def test_python_mismatch_between_stub_and_environment() -> None:
    found = sf.titled(_run(_facts(_model(env=_env(python_minors=("3.12",)), python_minor="3.12", python_from="env"))),
                      "is built for Python 3.11")
    assert f"the execution environment {ENV_TAR} is Python 3.12 but the stub {BACKEND_STUB} is built for Python 3.11" \
        in found.title
    assert found.fix is not None and found.fix.id == "model-stub" and "/p/3.12/stub" in found.fix.commands[0]
    odd = _one(_facts(_model(python_minor="3.7")), Status.ERROR)
    assert odd.fix is not None and odd.fix.commands == () and "nvidia-pytriton ships 3.11, 3.12" in odd.fix.summary


def test_closure_problems() -> None:
    closure = ClosureFacts(BACKEND_STUB, version_errors=(VersionProblem("GLIBCXX_3.4.30", f"{ENV_TAR}!lib/libstdc++.so.6",
                                                                          BACKEND_STUB),),
                           libpython="/usr/lib/libpython3.11.so.1.0", libstdcxx=f"{ENV_TAR}!lib/libstdc++.so.6",
                           libstdcxx_in_env=True, missing=("libfoo.so.1",))
    found = _run(_facts(_model(env=_env(), stub_closure=closure)))
    assert _fix(sf.titled(found, f"has no lib/{sf.LIBPYTHON}; the loader finds /usr/lib/")) == "repack-env"
    old = sf.titled(found, "lacks GLIBCXX_3.4.30, which the stub needs")
    assert old.fix is not None and old.fix.id == "repack-env" and "libstdcxx-ng>=12" in old.fix.summary
    assert sf.titled(found, "the stub cannot load libfoo.so.1").fix is None
    outside = dataclasses.replace(closure, libstdcxx_in_env=False, missing=(), libpython=None)
    assert _fix(sf.titled(_run(_facts(_model(stub_closure=outside))), "lacks GLIBCXX_3.4.30")) == "libstdcxx"


def test_import_problems() -> None:
    imports = (ImportFacts("torch", 2, False, None), ImportFacts("cupy", 4, True, None))
    found = sf.titled(_run(_facts(_model(env=_env(), imports=imports))), "imports")
    assert "model.py line 2 imports 'torch', which the execution environment" in found.title
    assert found.fix is not None and found.fix.id == "install-module" and found.fix.summary.endswith("and pack it again")


def test_extension_problems() -> None:
    ext = ClosureFacts(f"{sf.SITE}/torch/_C.so", missing=("libcudnn.so.9",),
                       version_errors=(VersionProblem("GLIBCXX_3.4.32", "/opt/conda/lib/libstdc++.so.6", "_C.so",
                                                      loaded_first_by=BACKEND_STUB),))
    found = _run(_facts(_model(imports=(ImportFacts("torch", 1, False, f"{sf.SITE}/torch", extensions=(ext,)),))))
    version = sf.titled(found, "the stub had already loaded /opt/conda/lib/libstdc++.so.6")
    assert _fix(version) == "libstdcxx" and "GLIBCXX_3.4.32" in version.detail
    assert sf.titled(found, "libcudnn.so.9 (needed by").status is Status.ERROR


def test_tarball_unpack_directory() -> None:
    model = _model(env=_env())
    assert "has room to unpack 1 environment(s) (300.0 MiB)" in sf.titled(_run(_facts(model)), "/tmp allows").title
    noexec = _facts(model, unpack_dir=MountFacts("/tmp", "/tmp", True, sf.GiB))
    assert _fix(sf.titled(_run(noexec), "mounted noexec")) == "unpack-env"
    small = _facts(model, unpack_dir=MountFacts("/tmp", "/tmp", False, 10 * sf.MiB))
    assert "has 10.0 MiB free; unpacking the execution environments needs 300.0 MiB" in sf.titled(_run(small), "free").title


def test_run_repositories_without_a_snapshot() -> None:
    assert check.run_repositories(_facts(_model()))[0].status is Status.OK
