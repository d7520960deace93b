"""Checks: one module per check id, each declaring one `CHECK = CheckSpec(...)`.

CHECKS is the one list of them, in report order (cheap, foundational checks first). Adding a
check = one new module + one line here.
"""

from __future__ import annotations

from tritondoctor.checks import (
    client_deps,
    conda_prefix,
    cuda_driver,
    cuda_runtime,
    exec_mounts,
    glibcxx,
    gpus,
    grpc_proxy,
    host_arch,
    ld_library_path,
    libpython,
    libs,
    logind_ipc,
    loopback,
    memory_limit,
    model_repository,
    platform,
    ports,
    python_deps,
    pytriton,
    server_protocol,
    shm,
    stale_servers,
    stale_workspaces,
    stub_build,
    stub_numpy,
    workspace,
)
from tritondoctor.checkspec import CheckSpec

CHECKS: tuple[CheckSpec, ...] = (
    platform.CHECK,
    host_arch.CHECK,
    pytriton.CHECK,
    stub_build.CHECK,
    libpython.CHECK,
    glibcxx.CHECK,
    libs.CHECK,
    ld_library_path.CHECK,
    python_deps.CHECK,
    client_deps.CHECK,
    stub_numpy.CHECK,
    conda_prefix.CHECK,
    grpc_proxy.CHECK,
    cuda_driver.CHECK,
    cuda_runtime.CHECK,
    gpus.CHECK,
    workspace.CHECK,
    stale_workspaces.CHECK,
    exec_mounts.CHECK,
    loopback.CHECK,
    ports.CHECK,
    stale_servers.CHECK,
    shm.CHECK,
    logind_ipc.CHECK,
    memory_limit.CHECK,
    server_protocol.CHECK,
    model_repository.CHECK,
)
