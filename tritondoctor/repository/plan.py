"""Per model, what can be read without the execution environment: config.pbtxt, the version
directories, the stub that will serve it, the model file's imports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.repository import config as config_mod
from tritondoctor.repository.execenv import ENV_PARAMETER, expand
from tritondoctor.repository.imports import ImportedName, read_imports
from tritondoctor.repository.mounts import Mount
from tritondoctor.repository.stub import stub_facts
from tritondoctor.repository.types import (
    BackendFacts,
    ConfigError,
    StubFacts,
    VersionFacts,
)


@dataclass
class ModelPlan:
    repository: str
    name: str
    directory: str
    config_file: str | None
    config: config_mod.ParsedConfig | None = None
    config_error: ConfigError | None = None
    backend: str = ""
    platform: str = ""
    versions: tuple[VersionFacts, ...] = ()
    version_note: str = ""
    env_configured: str | None = None
    env_path: str | None = None
    stub: StubFacts | None = None
    imports: list[ImportedName] = field(default_factory=list)
    model_file_error: str | None = None


def list_models(repository: str) -> tuple[list[str], str | None]:
    try:
        entries = sorted(os.listdir(repository))
    except OSError as exc:
        return [], f"cannot list {repository}: {exc.strerror or exc}"
    return [e for e in entries if not e.startswith(".") and os.path.isdir(os.path.join(repository, e))], None


def plan_model(repository: str, name: str, backend: BackendFacts, install: PyTritonInstall | None,
               mounts: tuple[Mount, ...], cwd: str) -> ModelPlan:
    directory = os.path.join(repository, name)
    config_file = os.path.join(directory, config_mod.CONFIG_NAME)
    plan = ModelPlan(repository, name, directory, config_file if os.path.isfile(config_file) else None)
    if plan.config_file:
        parsed = config_mod.parse_config(plan.config_file)
        if isinstance(parsed, ConfigError):
            plan.config_error = parsed
            return plan
        plan.config = parsed
        plan.backend, plan.platform = parsed.backend, parsed.platform
    plan.versions, plan.version_note = config_mod.select_versions(directory, plan.config)
    if not plan.config_file and any(v.model_file_exists for v in plan.versions):
        plan.backend = "python"  # Triton infers the python backend from model.py without a config
    if plan.backend != "python":
        return plan
    configured = plan.config.parameters.get(ENV_PARAMETER) if plan.config else None
    if configured:
        plan.env_configured, plan.env_path = configured, expand(configured, directory, cwd)
    plan.stub = stub_facts(directory, backend, install, mounts)
    model_file = next((v.model_file for v in reversed(plan.versions) if v.model_file_exists), None)
    if model_file:
        plan.imports, plan.model_file_error = read_imports(model_file)
    return plan
