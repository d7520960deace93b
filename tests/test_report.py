"""`tritondoctor report` against a real environment with planted secrets of every kind, and the
host block of `check --json`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tritondoctor.cache import cache_dir
from tritondoctor.share.host import host_json, machine_id, node_id, short_hash

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
USER = "alice_q"
NODE = "gpu-node-17"

SECRETS = {
    "HF_TOKEN": "hf_PlantedHuggingFaceToken0123456789",
    "GITHUB_TOKEN": "ghp_PlantedGithubToken0123456789abcdefABCD",
    "AWS_ACCESS_KEY_ID": "AKIAPLANTED0123ABCDE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTEDKEY",
    "NGC_API_KEY": "nvapi-PlantedNgcKey0123456789abcdefghij",
    "OPENAI_API_KEY": "sk-proj-PlantedOpenAiKey0123456789abcd",
    "SLACK_BOT_TOKEN": "xoxb-123456789012-planted-slack-token",
    "DB_PASSWORD": "hunter2-planted",
    "TRITON_AUTH_TOKEN": "plain-planted-triton-value",  # shown in the environment section, named like a secret
}
PROXY_USER, PROXY_PASS = "proxyuser9", "proxypass9"
LOG_SECRETS = {
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlUGxhbnRlZDEyMw",
    "bearer": "PlantedBearerValue0123456789",
    "query": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "github": "gho_PlantedOauthToken0123456789abcdefAB",
}


def tritondoctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tritondoctor", *args], capture_output=True, text=True, check=False,
                          env=env, timeout=180, cwd=str(REPO))


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not VENV_PYTHON.exists():
        pytest.skip(f"{VENV_PYTHON} is missing")
    root = tmp_path_factory.mktemp("planted")
    home = root / "home" / USER
    (home / ".cache").mkdir(parents=True)
    log = root / "smoke.log"
    log.write_text(
        "starting tritonserver\n"
        f"loading model from {home}/models/add_sub owned by {USER}\n"
        f"Authorization: Bearer {LOG_SECRETS['bearer']}\n"
        f"GET /v2/models?token={LOG_SECRETS['query']} 200\n"
        f"session {LOG_SECRETS['jwt']} project-zeus\n"
        f"git clone https://{LOG_SECRETS['github']}@github.com/x/y\n"
        f"on host {NODE}\n"
        "connecting with hunter2-planted\n"  # a secret variable's value, no known shape
        "error: model failed to load\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_PREFIX")}
    # The ELF cache of the real home: a fresh HOME would otherwise re-read every library.
    env.setdefault("TRITONDOCTOR_CACHE_DIR", cache_dir() or "")
    env.update(SECRETS, HOME=str(home), USER=USER, LOGNAME=USER, SLURMD_NODENAME=NODE,
               https_proxy=f"http://{PROXY_USER}:{PROXY_PASS}@proxy.example:3128",
               PYTHONPATH=f"/scratch/{NODE}/lib", PYTRITON_HOME=str(home / ".cache" / "pytriton"))
    args = ["--python", str(VENV_PYTHON), "--smoke-log", str(log), "--redact", r"project-[a-z]+"]
    md = tritondoctor("report", *args, env=env)
    js = tritondoctor("report", "--json", *args, env=env)
    check = tritondoctor("check", "--json", "--python", str(VENV_PYTHON), env=env)
    yield {"home": str(home), "md": md, "json": js, "check": check}


def forbidden(home: str) -> list[str]:
    return [*SECRETS.values(), *LOG_SECRETS.values(), PROXY_USER, PROXY_PASS, USER, NODE, home, "project-zeus"]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def test_markdown_hides_every_planted_secret(planted: dict[str, Any]) -> None:
    proc = planted["md"]
    assert proc.returncode == 0, proc.stderr
    for secret in forbidden(planted["home"]):
        assert secret not in proc.stdout, secret
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("> Redacted:"))
    for kind in (r"secret variable values?", r"credentials? in (a URL|URLs)", r"tokens?", r"home directory paths?",
                 r"user names?", r"host names?", r"match(es)? of --redact"):
        assert re.search(rf"\b[1-9]\d* {kind}\b", summary), (kind, summary)


def test_json_hides_every_planted_secret(planted: dict[str, Any]) -> None:
    proc = planted["json"]
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    every = list(strings(data))
    for secret in forbidden(planted["home"]):
        assert not any(secret in s for s in every), secret
    counts = data["redaction"]["counts"]
    assert all(counts[kind] > 0 for kind in ("secret", "url", "token", "custom", "home", "user", "host")), counts
    assert data["host"]["node_id"].startswith("host-") and data["host"]["node_id_from"] == "SLURMD_NODENAME"
    assert data["environment"]["https_proxy"] == "http://[REDACTED]@proxy.example:3128"
    assert "error: model failed to load" in data["smoke_log"]["tail"]


def test_report_still_shows_versions_and_every_finding(planted: dict[str, Any]) -> None:
    md, data = planted["md"].stdout, json.loads(planted["json"].stdout)
    check = json.loads(planted["check"].stdout)
    versions = [check["target"]["version"], check["target"]["system"]["glibc"],
                check["target"]["pytriton_install"]["version"]]
    for version in versions:
        assert version in md
    assert data["packages"]["nvidia-pytriton"] == versions[2]
    assert data["python"]["version"] == versions[0]
    for finding in check["findings"]:
        assert f"`{finding['id']}`" in md
        assert any(f["id"] == finding["id"] and f["status"] == finding["status"] for f in data["findings"])
    libpython = data["libraries"].get("libpython")
    if libpython:
        assert libpython["resolved_version"] and libpython["resolved_version"] in md
    assert data["libraries"]["libstdc++"]["resolved"]
    assert "### Findings" in md and "### Libraries" in md


def test_check_json_carries_the_host(planted: dict[str, Any]) -> None:
    host = json.loads(planted["check"].stdout)["host"]
    assert set(host) >= {"name", "machine_id", "node_id"}
    assert host["node_id"] == NODE
    assert host["machine_id"] == machine_id()


def test_keep_host_and_output_file(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    env = {**os.environ, "TRITONDOCTOR_NODE_ID": "rack7-node3"}
    proc = tritondoctor("report", "--python", str(VENV_PYTHON), "--keep-host", "--output", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    text = out.read_text()
    assert "rack7-node3" in text and "Host names were kept" in text


@pytest.mark.parametrize("args", [
    ["report", "--redact", "("],
    ["report", "--redact", "x*"],
    ["report", "--smoke-log", "/no/such/log"],
    ["report", "--output", "/no/such/dir/report.md"],
    ["report", "--python", "/no/such/python"],
])
def test_bad_input_is_one_line_exit_2(args: list[str]) -> None:
    proc = tritondoctor(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tritondoctor: error:"), proc.stderr


def test_host_facts(tmp_path: Path) -> None:
    mid = tmp_path / "machine-id"
    mid.write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    assert machine_id((str(tmp_path / "absent"), str(mid))) == short_hash("3d1219c7c4c5404aaa1f6d2a48adfda4")
    assert machine_id((str(tmp_path / "absent"),)) is None
    assert node_id({}) == (None, None)
    assert node_id({"SLURM_NODEID": "3", "NODE_NAME": "k8s-node"}) == ("3", "SLURM_NODEID")
    assert node_id({"NODE_NAME": "k8s-node", "TRITONDOCTOR_NODE_ID": "mine"}) == ("mine", "TRITONDOCTOR_NODE_ID")
    assert node_id({"MY_NODE_NAME": "k8s-node"}) == ("k8s-node", "MY_NODE_NAME")
    host = host_json({"SLURMD_NODENAME": "n1"}, files=(str(mid),))
    assert host["node_id"] == "n1" and host["machine_id"] == short_hash("3d1219c7c4c5404aaa1f6d2a48adfda4")
