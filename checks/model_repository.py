"""What Triton's python backend will do with each model of a repository (`--model-repository`).

For every Python-backend model: the stub that serves it (a triton_python_backend_stub in the
model directory wins over the backend's), the Python it was built for against the model's
execution environment (EXECUTION_ENV_PATH) or the target interpreter, the stub's closure as the
backend runs it (the environment's lib/ first on LD_LIBRARY_PATH), the model file and what it
imports, and each imported package's extension modules loaded into that stub process, where
glibc reuses the libstdc++.so.6 the stub loaded first. The facts come from
`tritondoctor.repository.gather_repositories`; this module only judges them.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Any, Iterable

from tritondoctor.checkspec import CheckSpec
from tritondoctor.findings import Finding, FixHint, ModelStubNeed, Status
from tritondoctor.gcc_abi import conda_spec, minimum_gcc, version_key

if TYPE_CHECKING:
    from tritondoctor.repository.types import (
        ClosureFacts,
        EnvFacts,
        ModelFacts,
        RepositoryFacts,
    )
from tritondoctor.snapshot import Snapshot

ID = "model-repository"
AREA = "Model repository"
ORDER = 200

# The backend starts the stub with `bash -c "... <model path> ... <instance name>"`, unquoted:
# any character bash splits on or expands changes the command.
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9_.+:@%=,/-]+$")


def _finding(status: Status, title: str, detail: str = "", evidence: dict[str, Any] | None = None,
             fix: FixHint | None = None, need: ModelStubNeed | None = None) -> Finding:
    return Finding(ID, status, title, detail=detail, evidence=evidence or {}, fix=fix, area=AREA, need=need)


def run(snap: Snapshot) -> list[Finding]:
    """No repository was named: nothing to report (the CLI calls run_repositories)."""
    facts = snap.repositories
    return run_repositories(facts, snap) if facts is not None else []


def run_repositories(facts: RepositoryFacts, snap: Snapshot | None = None) -> list[Finding]:
    if facts.parser_error:
        return [_finding(
            Status.ERROR, "config.pbtxt cannot be read: tritonclient's ModelConfig is not importable",
            detail=f"tritondoctor parses config.pbtxt with tritonclient.grpc.model_config_pb2 and protobuf "
                   f"({facts.parser_error}).",
            evidence={"repositories": [r.path for r in facts.repositories]},
            fix=FixHint("install-tritonclient", "install tritonclient with its gRPC extra where tritondoctor runs",
                        ("python3 -m pip install 'tritonclient[grpc]'",)),
        )]
    findings = _global(facts)
    for repo in facts.repositories:
        if repo.error:
            findings.append(_finding(Status.ERROR, f"model repository {repo.path}: {repo.error}",
                                     evidence={"repository": repo.path}))
        elif not repo.models:
            findings.append(_finding(Status.WARN, f"model repository {repo.path} holds no model directory",
                                     evidence={"repository": repo.path}))
        for model in repo.models:
            findings += _model(model, facts)
    return findings


def _global(facts: RepositoryFacts) -> list[Finding]:
    out: list[Finding] = []
    backend = facts.backend
    python_models = [m for r in facts.repositories for m in r.models if m.is_python and not m.config_error]
    if backend is not None and python_models and not backend.python_dir_exists:
        where = "does not exist" if not backend.exists else "has no python/ backend"
        out.append(_finding(
            Status.ERROR, f"backend directory {backend.directory} {where}: Triton cannot load the python backend",
            detail="tritonserver looks for <backend-directory>/python/libtriton_python.so and its "
                   "triton_python_backend_stub.",
            evidence=backend.to_json(),
            fix=FixHint("backend-directory", "start tritonserver with the directory that holds python/",
                        ("tritonserver --model-repository ... --backend-directory /opt/tritonserver/backends",)),
        ))
    tarballs = {m.env.path: m.env for m in python_models if m.env and m.env.kind == "tarball" and not m.env.error}
    out += _unpack_dir(facts, list(tarballs.values()))
    return out


def _unpack_dir(facts: RepositoryFacts, tarballs: list[EnvFacts]) -> list[Finding]:
    tmp = facts.unpack_dir
    if not tarballs or tmp is None:
        return []
    need = sum(e.unpacked_bytes for e in tarballs)
    evidence = {**tmp.to_json(), "needed_bytes": need, "tarballs": [e.path for e in tarballs]}
    if tmp.noexec:
        return [_finding(
            Status.ERROR,
            f"{tmp.path} is mounted noexec ({tmp.mount_point}): the python backend unpacks execution environments "
            f"there and their libpython cannot be mapped",
            detail="The backend always unpacks EXECUTION_ENV_PATH tarballs under /tmp/python_env_XXXXXX (TMPDIR is "
                   "not consulted); loading lib/libpythonX.Y.so.1.0 from a noexec mount fails with "
                   "\"failed to map segment from shared object\".",
            evidence=evidence,
            fix=FixHint("unpack-env", "use an unpacked environment directory instead of the tarball, or remount /tmp with exec",
                        ("mkdir -p /opt/envs/ENV && tar -xzf ENV.tar.gz -C /opt/envs/ENV",
                         "# then: parameters { key: \"EXECUTION_ENV_PATH\" value: {string_value: \"/opt/envs/ENV\"} }")),
        )]
    if tmp.free_bytes is not None and tmp.free_bytes < need:
        return [_finding(
            Status.ERROR,
            f"{tmp.path} has {_mib(tmp.free_bytes)} free; unpacking the execution environments needs {_mib(need)}",
            evidence=evidence,
            fix=FixHint("unpack-env", "free space in /tmp, or point EXECUTION_ENV_PATH at unpacked directories", ()),
        )]
    return [_finding(Status.OK, f"{tmp.path} allows execution and has room to unpack {len(tarballs)} environment(s) "
                                f"({_mib(need)})", evidence=evidence)]


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _label(model: ModelFacts) -> str:
    return f"model '{model.name}' ({model.repository})"


def _model(model: ModelFacts, facts: RepositoryFacts) -> list[Finding]:
    label = _label(model)
    if model.config_error is not None:
        return [_config_error(model)]
    if not model.is_python:
        kind = f"backend '{model.backend}'" if model.backend else f"platform '{model.platform or 'unknown'}'"
        return [_finding(Status.OK, f"{label}: {kind}, not the python backend: skipped",
                         evidence={"model": model.directory})]
    problems = list(_structure(model))
    problems += _stub_problems(model, facts)
    problems += _env_problems(model)
    mismatch = _python_mismatch(model, facts)
    problems += mismatch
    if not mismatch:
        problems += _closure_problems(model)
    problems += _import_problems(model, skip_extensions=bool(mismatch))
    if problems:
        return problems
    return [_ok(model)]


def _config_error(model: ModelFacts) -> Finding:
    err = model.config_error
    assert err is not None
    where = f"{err.file}:{err.line}" + (f":{err.column}" if err.column else "") if err.line else err.file
    return _finding(
        Status.ERROR, f"{_label(model)}: {where}: {err.message}",
        detail="Triton parses config.pbtxt as protobuf text format and refuses to load the model.",
        evidence=err.to_json(),
        fix=FixHint("edit-config", f"correct line {err.line} of {err.file}" if err.line else f"fix {err.file}", ()),
    )


def _structure(model: ModelFacts) -> Iterable[Finding]:
    label = _label(model)
    unquoted = ("The backend starts the stub through `bash -c` with the model path and the instance name unquoted; "
                "spaces and shell characters ($ ` ; & | < > ( ) quotes * ? [ ] ! # ~ \\) split or expand them and "
                "the stub never starts. Use letters, digits and _ . - only.")
    if not _SHELL_SAFE.match(model.name):
        yield _finding(
            Status.ERROR, f"{label}: the model name {model.name!r} has characters the python backend cannot pass to its stub",
            detail=unquoted, evidence={"model": model.directory, "model_name": model.name},
            fix=FixHint("rename-model", "rename the model directory (and the name in its config.pbtxt)",
                        (f"mv {shlex.quote(model.directory)} {shlex.quote(_safe_path(model.directory, model.name))}",)),
        )
    elif not _SHELL_SAFE.match(model.repository):
        yield _finding(
            Status.ERROR, f"{label}: the repository path {model.repository!r} has characters the python backend cannot "
                          "pass to its stub",
            detail=unquoted, evidence={"model": model.directory, "repository": model.repository},
            fix=FixHint("move-repository", "move the model repository to a path of letters, digits and _ . - /", ()),
        )
    if model.config_name and model.config_name != model.name:
        yield _finding(
            Status.ERROR, f"{label}: config.pbtxt names the model '{model.config_name}' but its directory is '{model.name}'",
            detail="Triton requires the configured name to equal the directory name.",
            evidence={"model": model.directory, "config_name": model.config_name},
            fix=FixHint("edit-config", f"set name: \"{model.name}\" in {model.config_file}", ()),
        )
    if not model.versions:
        yield _finding(Status.ERROR, f"{label}: {model.version_note}", evidence={"model": model.directory},
                       fix=FixHint("add-version", "put the model file in a numeric version directory",
                                   (f"mkdir -p {shlex.quote(model.directory)}/1 && mv MODEL.py {shlex.quote(model.directory)}/1/model.py",)))
    for version in model.versions:
        if not version.model_file_exists:
            yield _finding(
                Status.ERROR, f"{label}: {version.model_file} does not exist",
                detail=f"Version {version.version} is selected by the version policy; the python backend runs "
                       f"<version>/{version.model_file.rsplit('/', 1)[-1]} (default_model_filename, else model.py) and "
                       "fails with \"model.py does not exist in the model repository path\".",
                evidence=version.to_json(),
                fix=FixHint("add-model-file", f"add {version.model_file}", ()),
            )
    if model.model_file_error:
        yield _finding(Status.ERROR, f"{label}: {model.model_file_error}", evidence={"model": model.directory})


def _safe_path(directory: str, name: str) -> str:
    parent = directory[: -len(name)] if directory.endswith(name) else directory + "/../"
    return parent + (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model")


def _stub_problems(model: ModelFacts, facts: RepositoryFacts) -> Iterable[Finding]:
    stub, label = model.stub, _label(model)
    if stub is None:
        return
    evidence = stub.to_json()
    if not stub.exists:
        if stub.source == "backend" and facts.backend is not None and facts.backend.python_dir_exists:
            yield _finding(Status.ERROR, f"{label}: no stub: {stub.path} does not exist", evidence=evidence,
                           fix=_copy_stub_fix(model, facts, model.python_minor))
        return
    if stub.elf_error:
        yield _finding(Status.ERROR, f"{label}: the stub {stub.path} is not a usable ELF file ({stub.elf_error})",
                       evidence=evidence, fix=_copy_stub_fix(model, facts, model.python_minor))
    if not stub.executable:
        yield _finding(
            Status.ERROR, f"{label}: the stub {stub.path} is not executable",
            detail="The backend then chmods it to owner-execute only (S_IXUSR, dropping read), which fails for "
                   "another owner or a read-only file system, and bash cannot run it.",
            evidence=evidence,
            fix=FixHint("chmod-stub", "make the stub executable", (f"chmod 755 {shlex.quote(stub.path)}",)),
        )
    if stub.mount is not None and stub.mount.noexec:
        yield _finding(
            Status.ERROR, f"{label}: the stub {stub.path} lies on {stub.mount.mount_point}, mounted noexec",
            detail="The kernel refuses to execute any file of a noexec mount, whatever its mode.",
            evidence=evidence,
            fix=FixHint("move-stub", "keep the model repository (or at least the stub) on a mount that allows execution", ()),
        )


def _env_problems(model: ModelFacts) -> Iterable[Finding]:
    env, label = model.env, _label(model)
    if env is None:
        return
    evidence = env.to_json()
    if env.kind == "missing":
        yield _finding(
            Status.ERROR, f"{label}: EXECUTION_ENV_PATH {env.configured!r} -> {env.path} does not exist",
            detail="$$TRITON_MODEL_DIRECTORY is replaced by the model directory; a relative path is taken from "
                   "the server's working directory.",
            evidence=evidence,
            fix=FixHint("execution-env", "point EXECUTION_ENV_PATH at the packed environment, e.g. "
                        "\"$$TRITON_MODEL_DIRECTORY/env.tar.gz\"", ()),
        )
        return
    if env.error:
        yield _finding(Status.ERROR, f"{label}: the execution environment {env.path} cannot be unpacked: {env.error}",
                       detail="The backend unpacks it with libarchive when the model loads and fails the load.",
                       evidence=evidence,
                       fix=FixHint("repack-env", "pack the environment again", ("conda pack -p ENV_PREFIX -o ENV.tar.gz",)))
        return
    if not env.has_activate:
        yield _finding(
            Status.ERROR, f"{label}: the execution environment {env.path} has no bin/activate",
            detail="The backend runs `source <env>/bin/activate` before the stub and refuses an environment without it "
                   "(conda-pack writes one; a plain tar of a prefix does not).",
            evidence=evidence,
            fix=FixHint("repack-env", "pack it with conda-pack", ("conda pack -p ENV_PREFIX -o ENV.tar.gz",)),
        )
    if model.python_minor is None:
        yield _finding(Status.WARN, f"{label}: no lib/pythonX.Y in the execution environment {env.path}: "
                                    "which Python it holds is unknown", evidence=evidence)


def _copy_stub_fix(model: ModelFacts, facts: RepositoryFacts, minor: str | None) -> FixHint | None:
    stubs = facts.backend.pytriton_stubs if facts.backend else {}
    dest = f"{model.directory}/triton_python_backend_stub"
    if minor and minor in stubs:
        return FixHint("model-stub", f"give the model the Python {minor} stub that nvidia-pytriton ships",
                       (f"cp {shlex.quote(stubs[minor])} {shlex.quote(dest)}",))
    shipped = ", ".join(sorted(stubs, key=lambda m: tuple(map(int, m.split("."))))) or "3.8-3.13"
    return FixHint("model-stub", f"put a stub built for Python {minor or '?'} at {dest} (nvidia-pytriton ships {shipped}: "
                   f"pip install nvidia-pytriton, then copy pytriton/tritonserver/python_backend_stubs/{minor or 'X.Y'}/"
                   "triton_python_backend_stub), or build python_backend for that Python", ())


def _python_mismatch(model: ModelFacts, facts: RepositoryFacts) -> list[Finding]:
    stub = model.stub
    if stub is None or not stub.exists or not stub.python_minor or not model.python_minor:
        return []
    if stub.python_minor == model.python_minor:
        return []
    whose = f"the execution environment {model.env.path}" if model.env else "the target interpreter"
    return [_finding(
        Status.ERROR,
        f"{_label(model)}: {whose} is Python {model.python_minor} but the stub {stub.path} is built for Python "
        f"{stub.python_minor} (it links {stub.needed_libpython})",
        detail="The stub embeds the interpreter: it loads its own libpython and the environment's standard library "
               "and packages, so both must be the same minor version. A stub in the model directory overrides "
               "the backend's for that model.",
        evidence={"stub": stub.to_json(), "python": model.python_minor, "python_from": model.python_from},
        fix=_copy_stub_fix(model, facts, model.python_minor),
        need=_stub_need(model, facts),
    )]


def _stub_need(model: ModelFacts, facts: RepositoryFacts) -> ModelStubNeed | None:
    """The `model-stub` fix can act when nvidia-pytriton ships a stub for the model's Python."""
    stubs = facts.backend.pytriton_stubs if facts.backend else {}
    minor = model.python_minor
    if not minor or minor not in stubs:
        return None
    return ModelStubNeed(model.directory, minor, stubs[minor], model.name)


def _repack_libstdcxx(versions: Iterable[str], env: EnvFacts | None) -> FixHint:
    gcc = minimum_gcc(sorted(set(versions)))
    spec = f"libstdcxx-ng>={conda_spec(gcc)}" if gcc else "a newer libstdcxx-ng"
    if env is None:
        return FixHint("libstdcxx", f"put a libstdc++.so.6 from GCC {gcc or '(newer)'} or later first on the loader's path",
                       ("tritondoctor fix",))
    return FixHint("repack-env", f"install {spec} into the environment and pack it again",
                   (f"conda install -p ENV_PREFIX -c conda-forge '{spec}'",
                    f"conda pack -p ENV_PREFIX -o {shlex.quote(env.path)} --force"))


def _closure_problems(model: ModelFacts) -> list[Finding]:
    closure, env, stub, label = model.stub_closure, model.env, model.stub, _label(model)
    if closure is None or stub is None:
        return []
    out: list[Finding] = []
    evidence = {"stub": stub.path, **closure.to_json()}
    libpython = stub.needed_libpython
    if env is not None and libpython and not closure.libpython_in_env:
        found = f"the loader finds {closure.libpython} instead" if closure.libpython else "nothing else provides it"
        out.append(_finding(
            Status.ERROR, f"{label}: the execution environment {env.path} has no lib/{libpython}; {found}",
            detail=f"The stub links {libpython} and the backend puts the environment's lib/ first on LD_LIBRARY_PATH "
                   "so that the environment's own libpython is loaded. Archives of venvs (venv-pack) and prefixes "
                   "without a shared Python carry none; conda's python package ships it.",
            evidence=evidence,
            fix=FixHint("repack-env", f"pack a conda environment whose python {model.python_minor or ''} ships {libpython}",
                        (f"conda create -p ENV_PREFIX -c conda-forge python={model.python_minor or 'X.Y'} conda-pack",
                         f"conda pack -p ENV_PREFIX -o {shlex.quote(env.path)} --force")),
        ))
    by_file: dict[str, list[str]] = {}
    for problem in closure.version_errors:
        by_file.setdefault(problem.file, []).append(problem.version)
    for file, versions in by_file.items():
        in_env = env is not None and closure.libstdcxx_in_env and file == closure.libstdcxx
        out.append(_finding(
            Status.ERROR,
            f"{label}: {file} lacks {', '.join(sorted(set(versions)))}, which the stub needs",
            detail=("The environment's lib/ comes first on the stub's LD_LIBRARY_PATH, so its libstdc++.so.6 is the "
                    "one loaded; it is older than the GCC the stub was built with." if in_env else
                    f"The stub runs with LD_LIBRARY_PATH={closure.ld_library_path or '(unset)'}; the loader takes {file} first."),
            evidence=evidence,
            fix=_repack_libstdcxx(versions, env if in_env else None),
        ))
    missing = [n for n in closure.missing if n != libpython or env is None]
    if missing:
        needs = "; ".join(f"{n} (needed by {closure.missing_needed_by.get(n, stub.path)})" for n in missing)
        out.append(_finding(Status.ERROR, f"{label}: the stub cannot load {needs}", evidence=evidence,
                            detail=f"Searched with LD_LIBRARY_PATH={closure.ld_library_path or '(unset)'}."))
    return out


def _import_problems(model: ModelFacts, skip_extensions: bool) -> list[Finding]:
    label, out = _label(model), []
    where = f"the execution environment {model.env.path}" if model.env else "the target environment"
    for imported in model.imports:
        if imported.found is None and not imported.optional:
            out.append(_finding(
                Status.ERROR,
                f"{label}: model.py line {imported.line} imports '{imported.module}', which {where} does not provide",
                detail="The stub imports model.py when the model loads and fails with "
                       f"\"ModuleNotFoundError: No module named '{imported.module}'\".",
                evidence={"module": imported.module, "line": imported.line, "python": model.python_minor},
                fix=FixHint("install-module", f"install the package that provides '{imported.module}' into {where}"
                            + (" and pack it again" if model.env and model.env.kind == "tarball" else ""), ()),
            ))
        if skip_extensions:
            continue
        for ext in imported.extensions:
            out += _extension_problems(model, imported.module, ext)
    return out


def _extension_problems(model: ModelFacts, module: str, ext: ClosureFacts) -> list[Finding]:
    out, label = [], _label(model)
    evidence = {"module": module, **ext.to_json()}
    by_file: dict[tuple[str, str], list[str]] = {}
    for problem in ext.version_errors:
        by_file.setdefault((problem.file, problem.loaded_first_by), []).append(problem.version)
    for (file, first_by), versions in by_file.items():
        loaded = f"the stub had already loaded {file} (needed by {first_by}), which lacks it" if first_by \
            else f"{file} lacks it"
        out.append(_finding(
            Status.ERROR,
            f"{label}: '{module}' cannot load in the stub: {ext.file} needs {', '.join(sorted(set(versions)))}, "
            f"but {loaded}",
            detail="glibc reuses a library already loaded under the same soname, so the extension gets the stub's "
                   "libstdc++.so.6, whatever its own RUNPATH holds: \"version `"
                   f"{max(versions, key=lambda v: version_key(v) or ('', ()))}' not found\" at import.",
            evidence=evidence,
            fix=_repack_libstdcxx(versions, model.env if model.env else None),
        ))
    if ext.missing:
        needs = ", ".join(f"{n} (needed by {ext.missing_needed_by.get(n, ext.file)})" for n in ext.missing)
        out.append(_finding(Status.ERROR, f"{label}: '{module}' cannot load in the stub: {needs} not found",
                            evidence=evidence))
    return out


def _ok(model: ModelFacts) -> Finding:
    stub = model.stub
    env = f", environment {model.env.path}" if model.env else ""
    found = sum(1 for i in model.imports if i.found)
    extensions = sum(len(i.extensions) for i in model.imports)
    python = f"Python {model.python_minor}" if model.python_minor else "Python ?"
    return _finding(
        Status.OK,
        f"{_label(model)}: {python}{env}, stub {stub.path if stub else '?'}; {found} import(s) found, "
        f"{extensions} extension module(s) load",
        evidence={"model": model.directory, "python": model.python_minor, "python_from": model.python_from,
                  "stub": stub.path if stub else None, "env": model.env.path if model.env else None,
                  "imports": {i.module: i.found for i in model.imports}},
    )


CHECK = CheckSpec(ID, AREA, run, rows=(27, 28, 32),
                  summary="with --model-repository: each Python-backend model's stub, execution env, model file and imports")
