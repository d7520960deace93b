"""`tritondoctor smoke --model-repository DIR`: the user's own models through a real tritonserver.

    result = run_repository_smoke([repo], python, os.environ, None, None, timeout=120.0)
    render_repo_smoke(result, console)
    sys.exit(result.exit_code)          # 0 every model ready and answering, 1 otherwise

The server is the one given, or by default the one bundled in nvidia-pytriton laid out as PyTriton
lays it out (repo_layout). Every model is loaded at startup; each gets its readiness, and each
whose inputs its config fully describes gets one request over HTTP and one over gRPC, sent from
the target interpreter (repo_client). A model that does not load is diagnosed from its own log
lines with smoke's signatures. Raises SmokeUsageError for a bad request, KeyboardInterrupt after
cleaning up on Ctrl-C / SIGTERM; nothing started is left behind either way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Mapping, Sequence

from tritondoctor.facts import pytriton as pytriton_facts
from tritondoctor.facts import target as target_facts
from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.facts.target import TargetPython
from tritondoctor.smoke import (
    procs,
    repo_envs,
    repo_layout,
    repo_log,
    repo_server,
    repo_static,
)
from tritondoctor.smoke.procs import child_subreaper, free_ports
from tritondoctor.smoke.repo_result import (
    ModelResult,
    ProtocolResult,
    RepoSmokeResult,
    RunRecord,
    build_result,
)
from tritondoctor.smoke.runner import SmokeUsageError

__all__ = ["ModelResult", "ProtocolResult", "RepoSmokeResult", "run_repository_smoke", "render_repo_smoke"]

CLIENT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repo_client.py")


def _usage_checks(repos: Sequence[str], timeout: float) -> tuple[str, ...]:
    if not repos:
        raise SmokeUsageError("--model-repository: give at least one directory")
    if not timeout or timeout <= 0:
        raise SmokeUsageError(f"--timeout must be a positive number of seconds, not {timeout}")
    for repo in repos:
        if not os.path.isdir(repo):
            raise SmokeUsageError(f"--model-repository {repo}: not a directory")
    return tuple(os.path.abspath(r) for r in repos)


def _target_and_install(
    python: str, environ: Mapping[str, str], need_install: bool
) -> tuple[TargetPython, PyTritonInstall | None]:
    try:
        target = target_facts.probe(python, environ, selected_by="--python")
    except target_facts.TargetError as exc:
        raise SmokeUsageError(str(exc)) from None
    install = pytriton_facts.locate(target, environ)
    if install is None and need_install:
        raise SmokeUsageError(
            f"nvidia-pytriton is not installed for {target.executable}: install it, or name a server with --tritonserver")
    return target, install


def _layout(tritonserver: str | None, backend_directory: str | None, install: PyTritonInstall | None,
            target: TargetPython, workdir: str) -> repo_layout.ServerLayout:
    try:
        if tritonserver:
            return repo_layout.given_layout(tritonserver, backend_directory)
        assert install is not None
        layout = repo_layout.bundled_layout(install, target.minor, workdir)
        if backend_directory:  # the user's backends with the bundled server
            given = repo_layout.given_layout(layout.tritonserver, backend_directory)
            return dataclasses.replace(layout, backend_directory=given.backend_directory)
        return layout
    except repo_layout.LayoutError as exc:
        raise SmokeUsageError(str(exc)) from None
    except OSError as exc:
        raise SmokeUsageError(f"cannot lay out the bundled tritonserver in {workdir}: {exc}") from None


def run_repository_smoke(
    repos: Sequence[str],
    python: str,
    environ: Mapping[str, str],
    tritonserver: str | None,
    backend_directory: str | None,
    timeout: float,
    *,
    log_path: str | None = None,
) -> RepoSmokeResult:
    """Serve `repos` and load → ready → infer every model; see the module docstring."""
    absolute = _usage_checks(repos, timeout)
    target, install = _target_and_install(python, environ, need_install=not tritonserver)
    started = time.monotonic()
    unpacked_before, wall_start = repo_envs.existing(), time.time()
    workdir = tempfile.mkdtemp(prefix="tdrepo-", dir="/tmp" if os.access("/tmp", os.W_OK) else None)
    try:
        with child_subreaper(), procs.sigterm_as_interrupt():
            layout = _layout(tritonserver, backend_directory, install, target, workdir)
            ports = dict(zip(("http", "grpc", "metrics"), free_ports(3)))
            run = RunRecord(absolute, target, install, layout, ports, environ, started)
            _serve(run, workdir, started + timeout)
        if log_path:
            _save_log(run.log, log_path)
        return build_result(run, timeout, log_path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        repo_envs.remove_new(unpacked_before, wall_start)


def _serve(run: RunRecord, workdir: str, deadline: float) -> None:
    shm_prefix = repo_server.new_shm_prefix()
    cmd = repo_layout.server_command(run.layout, run.repos, run.ports, shm_prefix)
    env = repo_layout.server_environ(run.environ, run.layout, run.install, run.target)
    try:
        server = repo_server.start(cmd, env, os.path.join(workdir, "tritonserver.log"), shm_prefix)
    except OSError as exc:
        run.outcome, run.log = "exited", f"cannot start {run.layout.tritonserver}: {exc}"
        return
    try:
        run.outcome = repo_server.wait_live(server, run.ports["http"], deadline)
        if run.outcome == "live":
            run.index = repo_server.repository_index(run.ports["http"])
            _ask_client(run, deadline)
    finally:
        with repo_server.signals_blocked():
            repo_server.stop(server)
        run.exit_code = server.proc.returncode
        run.log = server.text()
        run.leftovers = server.leftovers
    if run.outcome == "live":
        _explain_failed(run)


def _explain_failed(run: RunRecord) -> None:
    """The static check's cause for each model that did not become ready."""
    failed = [n for n in repo_log.model_folders(run.repos) if not run.client.get(n, {}).get("ready")]
    backend = None if run.layout.bundled else run.layout.backend_directory
    run.static = repo_static.static_findings(run.repos, run.target, run.environ, backend, failed)


def _ask_client(run: RunRecord, deadline: float) -> None:
    names = sorted(set(repo_log.model_folders(run.repos)) | {str(i.get("name")) for i in run.index if i.get("name")})
    args = {"http": run.ports["http"], "grpc": run.ports["grpc"], "models": names,
            "timeout": max(5.0, min(30.0, deadline - time.monotonic()))}
    env = {k: v for k, v in run.environ.items() if k != "PYTHONINSPECT"}
    try:
        proc = subprocess.run([run.target.executable, CLIENT_SCRIPT, json.dumps(args)], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=max(1.0, deadline - time.monotonic()), start_new_session=True)
    except subprocess.TimeoutExpired:
        run.client_error = "the client did not finish in time"
        return
    except OSError as exc:
        run.client_error = f"cannot run {run.target.executable}: {exc}"
        return
    for line in proc.stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if "fatal" in item:
            run.client_error = str(item["fatal"])
        elif "model" in item:
            run.client[str(item["model"])] = item
    if not run.client and not run.client_error:
        run.client_error = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][:300]


def _save_log(text: str, path: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        pass


from tritondoctor.smoke.repo_render import render_repo_smoke  # noqa: E402,F401 - re-exported
