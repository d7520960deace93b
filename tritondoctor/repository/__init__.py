"""Facts about Triton model repositories (`check --model-repository DIR`): per model, the
config, the version directories, the python-backend stub that will serve it, its execution
environment and what its model.py imports, all read statically."""

from __future__ import annotations

from typing import Any

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


def gather_repositories(*args: Any, **kwargs: Any) -> RepositoryFacts:
    """See tritondoctor.repository.gather; imported on first use (protobuf, tarfile) so that a
    plain `check`, which imports this package's types, does not pay for it."""
    from tritondoctor.repository.gather import gather_repositories as gather

    return gather(*args, **kwargs)
