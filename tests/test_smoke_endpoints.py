"""Smoke's runtime-protocol checks (catalog rows 24 and 38): the bound model's own readiness, and
PyTriton 0.7.0's restricted endpoints asked without and with its per-start access token.

The fast tier judges recorded events; the slow tier runs the real PyTriton server of this test
run's interpreter (nvidia-pytriton is a test dependency) on loopback.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import sysconfig
from typing import Any

import pytest
from rich.console import Console

from tritondoctor.findings import Status
from tritondoctor.observation import Interpreter, Observation
from tritondoctor.render.smoke import render
from tritondoctor.smoke import diagnose as dx
from tritondoctor.smoke.runner import SmokeOptions, SmokeResult, run

HOOK = "TRITONDOCTOR_SMOKE_TEST_HOOK"
REFUSED_HTTP = {"allowed": False, "status": 403, "message": "This API is restricted, expecting header 'triton-access-token'"}
REFUSED_GRPC = {"allowed": False, "status": "StatusCode.UNAVAILABLE",
                "message": "This protocol is restricted, expecting header 'triton-grpc-protocol-triton-access-token'"}
ANSWERED_HTTP = {"allowed": True, "status": 200, "message": ""}
ANSWERED_GRPC = {"allowed": True, "status": "OK", "message": ""}


def _endpoints(http: tuple[dict, dict], grpc: tuple[dict, dict]) -> dict[str, Any]:
    return {"ev": "endpoints", "restricted": ["model-repository", "statistics"], "header": "triton-access-token",
            "checks": [{"protocol": "http", "call": "POST /v2/repository/index", "without": http[0], "with": http[1]},
                       {"protocol": "grpc", "call": "RepositoryIndex", "without": grpc[0], "with": grpc[1]}]}


def _obs(*events: dict[str, Any]) -> Observation:
    return Observation(events=list(events), interpreter=Interpreter(pytriton="0.7.0"), ports={"http": 18000})


# --- fast: judging the events ------------------------------------------------------------------


def test_restricted_as_by_default_is_ok_with_both_answers() -> None:
    (finding,) = dx.endpoint_findings(_obs(_endpoints((REFUSED_HTTP, ANSWERED_HTTP), (REFUSED_GRPC, ANSWERED_GRPC))))
    assert finding.id == "server-protocol" and finding.status is Status.OK
    assert "as PyTriton 0.7.0 does by default" in finding.title
    http, grpc = finding.detail.splitlines()
    assert http.startswith("HTTP POST /v2/repository/index: without the token refused (403: This API is restricted")
    assert "with it answered (200)" in http
    assert grpc.startswith("GRPC RepositoryIndex: without the token refused") and "with it answered (OK)" in grpc


def test_a_refused_token_is_an_error_with_the_remedy() -> None:
    (finding,) = dx.endpoint_findings(_obs(_endpoints((REFUSED_HTTP, REFUSED_HTTP), (REFUSED_GRPC, ANSWERED_GRPC))))
    assert finding.status is Status.ERROR and "refused PyTriton's own access token" in finding.title
    assert finding.fix is not None and finding.fix.id == "access-token"
    assert any("triton.get_access_token()" in c for c in finding.fix.commands)
    assert any("TritonSecurityConfig(restricted_endpoints=[])" in c for c in finding.fix.commands)


def test_an_open_endpoint_is_a_warning() -> None:
    (finding,) = dx.endpoint_findings(_obs(_endpoints((ANSWERED_HTTP, ANSWERED_HTTP), (REFUSED_GRPC, ANSWERED_GRPC))))
    assert finding.status is Status.WARN and "without the access token" in finding.title


def test_no_restriction_in_this_pytriton_is_a_skip() -> None:
    event = {"ev": "endpoints", "skipped": "this PyTriton restricts no endpoint (it has no Triton.get_access_token)"}
    (finding,) = dx.endpoint_findings(_obs(event))
    assert finding.status is Status.SKIP and "no Triton.get_access_token" in finding.title


def test_a_model_that_is_not_ready_is_named_and_replaces_the_bare_failure() -> None:
    status = {"ev": "model-status", "model": "tdsmoke_abc", "ready": False, "status": 400,
              "answer": "Model version not ready", "waited_s": 3.0, "request": "GET /v2/models/tdsmoke_abc/ready"}
    error = {"ev": "error", "phase": "model-status", "message": "RuntimeError: model tdsmoke_abc is not ready"}
    phases = [{"ev": "phase", "name": "server-ready"}, {"ev": "phase", "name": "model-ready"}]
    findings = dx.diagnose(_obs(*phases, status, error), environ={})
    errors = [f for f in findings if f.status is Status.ERROR]
    assert [f.id for f in errors] == ["model-ready"]
    assert "model tdsmoke_abc is not ready" in errors[0].title and "400 Model version not ready" in errors[0].title
    assert errors[0].fix is not None and "/v2/models/tdsmoke_abc/ready" in errors[0].fix.commands[0]


# --- slow: the real server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def target_env() -> dict[str, str]:
    probe = subprocess.run([sys.executable, "-c", "import pytriton.triton, tritonclient.grpc"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this test run's interpreter has no nvidia-pytriton")
    drop = {"LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "VIRTUAL_ENV",
            "https_proxy", "http_proxy", "grpc_proxy"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["LD_LIBRARY_PATH"] = sysconfig.get_config_var("LIBDIR")  # the interpreter's own libpython for the stub
    return env


def _smoke(env: dict[str, str], hook: str = "") -> SmokeResult:
    options = SmokeOptions(timeout=90, burst_requests=16, burst_concurrency=2, extra_env={HOOK: hook} if hook else {})
    return run(sys.executable, env, options)


def _text(result: SmokeResult) -> str:
    out = io.StringIO()
    render(result, Console(file=out, width=200, color_system=None))
    return out.getvalue()


@pytest.mark.slow
def test_real_server_restricts_by_default_and_the_model_is_ready(target_env: dict[str, str]) -> None:
    result = _smoke(target_env)
    assert result.passed, [f.title for f in result.findings]
    assert result.model_status is not None and result.model_status["ready"] and result.model_status["status"] == 200
    endpoints = result.endpoints
    assert endpoints is not None
    if endpoints.get("skipped"):
        pytest.skip(endpoints["skipped"])
    for check in endpoints["checks"]:
        assert not check["without"]["allowed"] and "restricted" in check["without"]["message"]
        assert check["with"]["allowed"]
    (finding,) = [f for f in result.findings if f.id == "server-protocol"]
    assert finding.status is Status.OK and "does by default" in finding.title
    text = _text(result)
    assert "without the token refused (403" in text and "with it answered (200)" in text
    assert "RepositoryIndex: without the token refused" in text and "with it answered (OK)" in text
    assert f"model {result.model_status['model']} is ready" in text
    data = result.to_json()
    assert data["endpoints"]["checks"][0]["protocol"] == "http" and data["model_status"]["ready"]


@pytest.mark.slow
def test_real_server_refuses_a_token_of_another_start(target_env: dict[str, str]) -> None:
    result = _smoke(target_env, "stale-token")
    (finding,) = [f for f in result.findings if f.id == "server-protocol"]
    assert finding.status is Status.ERROR and finding.fix is not None and finding.fix.id == "access-token"
    assert "This API is restricted, expecting header 'triton-access-token'" in finding.detail
    assert "This protocol is restricted" in finding.detail
    assert not result.passed and result.max_error is not None  # the model itself served correct numbers


@pytest.mark.slow
def test_real_model_that_is_not_ready_is_named(target_env: dict[str, str]) -> None:
    result = _smoke(target_env, "unready-model")
    assert not result.passed and result.model_status is not None and not result.model_status["ready"]
    model = result.model_status["model"]
    errors = [f for f in result.findings if f.status is Status.ERROR]
    assert [f.id for f in errors] == ["model-ready"], [f.title for f in errors]
    assert f"model {model} is not ready" in errors[0].title and f"/v2/models/{model}/ready" in errors[0].title
    assert f"model {model} is not ready" in _text(result)
