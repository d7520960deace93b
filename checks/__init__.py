"""Checks: one module per check id, each declaring one `CHECK = CheckSpec(...)`.

CHECKS is the one list of them, in report order (cheap, foundational checks first). Adding a
check = one new module + one line here.
"""

from __future__ import annotations

from tritondoctor.checks import (
    conda_prefix,
    cuda_driver,
    cuda_runtime,
    glibcxx,
    gpus,
    ld_library_path,
    libpython,
    libs,
    model_repository,
    platform,
    ports,
    python_deps,
    pytriton,
    shm,
    stale_servers,
    workspace,
)

from tritondoctor.checkspec import CheckSpec

CHECKS: tuple[CheckSpec, ...] = (
    platform.CHECK,
    pytriton.CHECK,
    libpython.CHECK,
    glibcxx.CHECK,
    libs.CHECK,
    ld_library_path.CHECK,
    python_deps.CHECK,
    conda_prefix.CHECK,
    cuda_driver.CHECK,
    cuda_runtime.CHECK,
    gpus.CHECK,
    workspace.CHECK,
    ports.CHECK,
    stale_servers.CHECK,
    shm.CHECK,
    model_repository.CHECK,
)
