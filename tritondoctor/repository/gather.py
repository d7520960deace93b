"""The entry point: `gather_repositories` reads every model of every repository once."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts.target import TargetPython
from tritondoctor.loader import LoaderEnv
from tritondoctor.repository.config import ParserUnavailable, require_parser
from tritondoctor.repository.mounts import MOUNTINFO, Mount, mount_facts, read_mounts
from tritondoctor.repository.plan import ModelPlan, list_models, plan_model
from tritondoctor.repository.session import Session
from tritondoctor.repository.stub import locate_backend
from tritondoctor.repository.types import BackendFacts, ModelFacts, RepositoryFacts, RepositoryInfo

# Where the python backend unpacks EXECUTION_ENV_PATH tarballs (mkdtemp("/tmp/python_env_XXXXXX"):
# a fixed path, TMPDIR is not consulted).
UNPACK_DIR = "/tmp"


@dataclass
class Opened:
    """Every model of the repositories planned, their execution environments open in `session`."""

    listed: list[tuple[str, list[ModelPlan], str | None]]
    session: Session
    backend: BackendFacts
    mounts: tuple[Mount, ...]


@contextmanager
def opened_repositories(dirs: Sequence[str], target: TargetPython | None, environ: Mapping[str, str],
                        backend_directory: str | None, *, cwd: str, mountinfo: str = MOUNTINFO,
                        extra_modules: Sequence[str] = ()) -> Iterator[Opened]:
    """Plan each model and open each execution environment once (unpacking from a tarball what
    the models' imports and `extra_modules` can load); whatever was unpacked is gone when the
    block ends. Raises ParserUnavailable without protobuf's ModelConfig."""
    require_parser()
    mounts = read_mounts(mountinfo)
    backend, install = locate_backend(backend_directory, target, environ)
    base_environ = dict(environ)
    if install is not None and target is not None:
        base_environ = pytriton_facts.server_environ(environ, install, target)
    loader_env = LoaderEnv.from_system(environ=base_environ, cwd=cwd)
    listed: list[tuple[str, list[ModelPlan], str | None]] = []
    for repository in (os.path.abspath(d) for d in dirs):
        names, error = list_models(repository)
        listed.append((repository, [plan_model(repository, n, backend, install, mounts, cwd) for n in names], error))
    session = Session(target, base_environ, loader_env, os.path.join(backend.directory, "python"))
    try:
        session.prepare([p for _r, plans, _e in listed for p in plans], extra_modules)
        yield Opened(listed, session, backend, mounts)
    finally:
        session.close()


def gather_repositories(
    dirs: Sequence[str],
    target: TargetPython | None,
    environ: Mapping[str, str],
    backend_directory: str | None,
    *,
    cwd: str | None = None,
    mountinfo: str = MOUNTINFO,
    unpack_dir: str = UNPACK_DIR,
) -> RepositoryFacts:
    """Facts about each model of each repository in `dirs`, for the python backend of
    `backend_directory` (None: /opt/tritonserver/backends, else PyTriton's bundled backends).

    `environ` is the environment tritonserver is started with (PyTriton's additions are made
    here when the backend is PyTriton's). Nothing is executed; tarballs are read as streams and
    only the shared objects the stub could load are unpacked, into a temporary directory that
    is gone when this returns."""
    try:
        with opened_repositories(dirs, target, environ, backend_directory, cwd=cwd or os.getcwd(),
                                 mountinfo=mountinfo) as opened:
            infos = tuple(
                RepositoryInfo(repository, error, tuple(_facts(opened.session, p) for p in plans))
                for repository, plans, error in opened.listed
            )
    except ParserUnavailable as exc:
        return RepositoryFacts(tuple(RepositoryInfo(os.path.abspath(r)) for r in dirs), parser_error=str(exc))
    return RepositoryFacts(
        repositories=infos,
        backend=opened.backend,
        unpack_dir=mount_facts(unpack_dir, opened.mounts, want_free=True),
        target_minor=target.minor if target else None,
    )


def _facts(session: Session, plan: ModelPlan) -> ModelFacts:
    if plan.config_error is not None or plan.backend != "python":
        return ModelFacts(
            repository=plan.repository, name=plan.name, directory=plan.directory, config_file=plan.config_file,
            config_error=plan.config_error, config_name=plan.config.name if plan.config else "",
            backend=plan.backend, platform=plan.platform, versions=plan.versions, version_note=plan.version_note,
        )
    return session.model_facts(plan)
