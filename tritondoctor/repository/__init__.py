"""Facts about Triton model repositories (`check --model-repository DIR`): per model, the
config, the version directories, the python-backend stub that will serve it, its execution
environment and what its model.py imports, all read statically."""

from tritondoctor.repository.gather import gather_repositories
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

__all__ = [
    "BackendFacts", "ClosureFacts", "ConfigError", "EnvFacts", "ImportFacts", "ModelFacts", "MountFacts",
    "RepositoryFacts", "RepositoryInfo", "StubFacts", "VersionFacts", "VersionProblem", "gather_repositories",
]
