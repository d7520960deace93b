"""The result of a repository smoke test, and how it is made from what a run gathered."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from tritondoctor.facts.pytriton import PyTritonInstall
from tritondoctor.facts.target import TargetPython
from tritondoctor.findings import Finding, FixHint, Status, worst
from tritondoctor.observation import Interpreter, Observation
from tritondoctor.smoke import repo_log
from tritondoctor.smoke.repo_layout import ServerLayout
from tritondoctor.smoke.runner import EXIT_FAIL, EXIT_PASS


@dataclass(frozen=True)
class ProtocolResult:
    ok: bool
    error: str = ""
    outputs: Mapping[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "outputs": dict(self.outputs)}


@dataclass(frozen=True)
class ModelResult:
    name: str
    state: str  # the repository index's state: READY, UNAVAILABLE, ... ("" if never listed)
    ready: bool  # GET /v2/models/NAME/ready answered 200
    reason: str = ""
    infer_skipped: str = ""  # why no request was sent (empty when one was)
    http: ProtocolResult | None = None
    grpc: ProtocolResult | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def passed(self) -> bool:
        answered = all(p is None or p.ok for p in (self.http, self.grpc))
        return self.ready and answered and (self.http is not None or bool(self.infer_skipped))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "passed": self.passed, "state": self.state, "ready": self.ready,
            "reason": self.reason, "infer_skipped": self.infer_skipped,
            "http": self.http.to_json() if self.http else None,
            "grpc": self.grpc.to_json() if self.grpc else None,
            "findings": [f.to_json() | {"area": f.area} for f in self.findings],
        }


@dataclass(frozen=True)
class RepoSmokeResult:
    passed: bool
    repositories: tuple[str, ...]
    tritonserver: str
    backend_directory: str | None
    bundled: bool
    python: str
    models: tuple[ModelResult, ...] = ()
    findings: tuple[Finding, ...] = ()
    ports: Mapping[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    timed_out: bool = False
    log_path: str | None = None
    leftovers: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_FAIL

    def model(self, name: str) -> ModelResult | None:
        return next((m for m in self.models if m.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "exit_code": self.exit_code, "repositories": list(self.repositories),
            "tritonserver": self.tritonserver, "backend_directory": self.backend_directory,
            "bundled": self.bundled, "python": self.python, "ports": dict(self.ports),
            "models": [m.to_json() for m in self.models],
            "findings": [f.to_json() | {"area": f.area} for f in self.findings],
            "worst": worst(list(self.findings)).value, "duration_s": round(self.duration_s, 3),
            "timed_out": self.timed_out, "log_path": self.log_path, "leftovers": list(self.leftovers),
        }


@dataclass
class RunRecord:
    """What one run gathered, turned into a RepoSmokeResult at the end."""

    repos: tuple[str, ...]
    target: TargetPython
    install: PyTritonInstall | None
    layout: ServerLayout
    ports: dict[str, int]
    environ: Mapping[str, str]
    started: float
    outcome: str = ""  # live / exited / timeout
    exit_code: int | None = None
    log: str = ""
    index: list[dict[str, Any]] = field(default_factory=list)
    client: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_error: str = ""
    leftovers: list[str] = field(default_factory=list)
    # Model name -> the static model-repository check's errors (repo_static), for failed models.
    static: dict[str, list[Finding]] = field(default_factory=dict)




def observation(run: RunRecord, timeout: float) -> Observation:
    target = run.target
    own = os.path.join(target.libdir, target.instsoname) if target.libdir and target.instsoname else None
    interp = Interpreter(python=target.executable, version=target.version_string, minor=target.minor,
                         prefix=target.prefix, env_kind=target.env_kind, libdir=target.libdir,
                         enable_shared=target.enable_shared, own_libpython=os.path.realpath(own) if own and os.path.exists(own) else None,
                         pytriton=run.install.version if run.install else None)
    from tritondoctor.smoke.model_script import nvidia_device_present

    return Observation(log=run.log, interpreter=interp, gpu_present=nvidia_device_present(),
                       timed_out=run.outcome == "timeout", timeout_s=timeout, ports=dict(run.ports))




def _protocol(data: Any) -> ProtocolResult | None:
    if not isinstance(data, dict):
        return None
    return ProtocolResult(bool(data.get("ok")), str(data.get("error") or ""), dict(data.get("outputs") or {}))


def _infer_findings(name: str, model: ModelResult) -> list[Finding]:
    out = []
    for label, result in (("HTTP", model.http), ("gRPC", model.grpc)):
        if result is not None and not result.ok:
            out.append(Finding("infer", Status.ERROR, f"model '{name}': the {label} request failed: {result.error[:200]}",
                               "the model loaded and reported ready, but the request built from its config was refused.",
                               {"model": name, "protocol": label, "error": result.error}, None, repo_log.AREA))
    return out


def _model(run: RunRecord, name: str, folders: list[str], obs: Observation) -> ModelResult:
    entry = next((i for i in run.index if i.get("name") == name), {})
    asked = run.client.get(name, {})
    ready = bool(asked.get("ready"))
    reason = str(entry.get("reason") or "")
    model = ModelResult(name=name, state=str(entry.get("state") or ""), ready=ready, reason=reason,
                        infer_skipped=str(asked.get("skipped") or ""), http=_protocol(asked.get("http")),
                        grpc=_protocol(asked.get("grpc")))
    findings: list[Finding] = []
    if not ready and run.outcome == "live":
        lines = repo_log.model_lines(run.log, name, folders)
        findings = run.static.get(name, []) + repo_log.model_findings(name, lines, reason or str(asked.get("skipped") or ""), obs)
    elif ready:
        findings = _infer_findings(name, model)
    return ModelResult(model.name, model.state, model.ready, model.reason, model.infer_skipped, model.http,
                       model.grpc, tuple(findings))


def _run_findings(run: RunRecord, obs: Observation, timeout: float) -> list[Finding]:
    if run.outcome == "live":
        if run.client_error:
            return [Finding("infer", Status.ERROR, f"no model could be asked about: {run.client_error}",
                            "the client runs in the target interpreter with tritonclient (a dependency of nvidia-pytriton).",
                            {"python": run.target.executable}, None, repo_log.AREA)]
        return []
    found = repo_log.server_findings(run.log, run.exit_code if run.outcome == "exited" else None, obs)
    if run.outcome == "timeout" and not any(f.status is Status.ERROR for f in found):
        found.append(Finding("timeout", Status.ERROR, f"tritonserver did not answer within {timeout:g} s",
                             "it was still loading models; allow more time with --timeout.", {}, None, repo_log.AREA))
    return found


_UNPACKED_ENV = "/tmp/python_env_"


def _inside_env(finding: Finding) -> Finding:
    """A library problem whose file lies in an unpacked execution environment is the packed
    environment's: the remedy is to repack it, never to change anything in this machine's env."""
    lines = " ".join(str(line) for line in finding.evidence.get("log", []))
    if finding.id not in ("glibcxx", "libpython", "libs") or _UNPACKED_ENV not in lines:
        return finding
    fix = FixHint("repack-env", "the model's execution environment (EXECUTION_ENV_PATH) carries the library: repack "
                  "it with what the stub needs", ("conda install -n <env> -c conda-forge 'libstdcxx-ng>=12'  # then",
                                                  "conda-pack -n <env> -o env.tar.gz"))
    detail = ("The python backend unpacks the environment under /tmp and puts its lib/ first on the stub's "
              "LD_LIBRARY_PATH, so the stub loads the environment's copy. " + finding.detail)
    return dataclasses.replace(finding, fix=fix, detail=detail)


def build_result(run: RunRecord, timeout: float, log_path: str | None) -> "RepoSmokeResult":
    obs = observation(run, timeout)
    folders = repo_log.model_folders(run.repos)
    names = sorted(set(folders) | {str(i["name"]) for i in run.index if i.get("name")})
    models = tuple(_model(run, name, folders.get(name, []), obs) for name in names) if run.outcome == "live" else ()
    findings = [_inside_env(f) for f in _run_findings(run, obs, timeout)] + [f for m in models for f in m.findings]
    if run.outcome == "live" and not names:
        findings.append(Finding("model-load", Status.ERROR, "the repository holds no model",
                                "every directory in a model repository is a model; none was found.",
                                {"repositories": list(run.repos)}, None, repo_log.AREA))
    if run.leftovers:
        findings.append(Finding("smoke", Status.ERROR, "some processes of the run could not be ended",
                                ", ".join(run.leftovers), {"leftovers": run.leftovers}, None, repo_log.AREA))
    passed = run.outcome == "live" and bool(models) and all(m.passed for m in models) and not findings
    return RepoSmokeResult(
        passed=passed, repositories=run.repos, tritonserver=run.layout.tritonserver,
        backend_directory=run.layout.backend_directory, bundled=run.layout.bundled, python=run.target.executable,
        models=models, findings=tuple(findings), ports=dict(run.ports),
        duration_s=time.monotonic() - run.started, timed_out=run.outcome == "timeout", log_path=log_path,
        leftovers=tuple(run.leftovers))
