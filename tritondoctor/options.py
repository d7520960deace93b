"""What the user asked `check` to assume: read by facts and checks alike (a leaf module)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORTS = (8000, 8001, 8002)


@dataclass(frozen=True)
class CheckOptions:
    ports: tuple[int, ...] = DEFAULT_PORTS
    cpu_ok: bool = False
    verbose: bool = False
    # Triton model repositories to inspect (`check --model-repository`, repeatable) and the
    # backend directory a tritonserver would be started with (--backend-directory).
    model_repositories: tuple[str, ...] = ()
    backend_directory: str | None = None
