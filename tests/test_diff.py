"""`tritondoctor diff`: a real broken and a real fixed environment of this machine (pyenv's
3.11.7 against Debian's libpython3.11 in the loader cache), synthetic documents for the order of
relevance, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tritondoctor.cache import cache_dir
from tritondoctor.share.diff import compare, read_side

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# Findings about runtime resources can change between two runs on a machine shared with other
# test processes (servers started, ports taken); they are not what this comparison is about.
VOLATILE = {"ports", "stale-servers", "shm", "workspace"}


def tritondoctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tritondoctor", *args], capture_output=True, text=True, check=False,
                          env=env, timeout=180, cwd=str(REPO))


def own_libdir() -> str:
    out = subprocess.run([str(VENV_PYTHON), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
                         capture_output=True, text=True, check=True)
    return os.path.realpath(out.stdout.strip())


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if not VENV_PYTHON.exists():
        pytest.skip(f"{VENV_PYTHON} is missing")
    root = tmp_path_factory.mktemp("diff")
    base = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_PREFIX")}
    base.setdefault("TRITONDOCTOR_CACHE_DIR", cache_dir() or "")
    fixed = {**base, "LD_LIBRARY_PATH": own_libdir()}
    files: dict[str, Path] = {}
    for name, env in (("broken", base), ("fixed", fixed)):
        for command in ("check", "report"):
            proc = tritondoctor(command, "--json", "--python", str(VENV_PYTHON), env=env)
            assert proc.returncode in (0, 1), proc.stderr
            files[f"{name}-{command}"] = root / f"{name}-{command}.json"
            files[f"{name}-{command}"].write_text(proc.stdout)
    statuses = {f["id"]: f["status"] for f in json.loads(files["broken-check"].read_text())["findings"]}
    if statuses.get("libpython") != "error":
        pytest.skip("this machine has no libpython mismatch to diff")
    yield files


def relevant(differences: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["category"], d["name"]) for d in differences
            if d["matters"] and not (d["category"] == "finding" and d["name"] in VOLATILE)]


@pytest.mark.parametrize("kind_a, kind_b", [("check", "check"), ("report", "report"), ("check", "report")])
def test_broken_vs_fixed_names_libpython_and_ld_library_path_first(envs: dict[str, Path], kind_a: str, kind_b: str) -> None:
    proc = tritondoctor("diff", "--json", str(envs[f"broken-{kind_a}"]), str(envs[f"fixed-{kind_b}"]))
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    top = relevant(result["differences"])[:3]
    assert top == [("finding", "libpython"), ("library", "libpython"), ("environment", "LD_LIBRARY_PATH")], top
    first = result["differences"][0] if result["differences"][0]["name"] == "libpython" else None
    if first is not None:
        assert (first["a"], first["b"]) == ("error", "ok")


def test_text_output_reads_most_relevant_first(envs: dict[str, Path]) -> None:
    proc = tritondoctor("diff", str(envs["broken-report"]), str(envs["fixed-report"]))
    assert proc.returncode == 1, proc.stderr
    numbered = [line.strip() for line in proc.stdout.splitlines() if line.strip()[:2] in ("1.", "2.", "3.", "4.")]
    mentions = [line for line in numbered if "libpython" in line or "LD_LIBRARY_PATH" in line]
    assert mentions and mentions[0].startswith("1.") and "libpython" in mentions[0]
    assert any(line.startswith("LD_LIBRARY_PATH: unset → ") for line in (m.split(". ", 1)[1] for m in mentions))
    assert "3.11.2" in proc.stdout


def test_same_file_differs_in_nothing_that_matters(envs: dict[str, Path]) -> None:
    proc = tritondoctor("diff", str(envs["broken-check"]), str(envs["broken-check"]))
    assert proc.returncode == 0, proc.stdout
    assert "No differences that matter." in proc.stdout


def finding(check: str, status: str, title: str = "t", **evidence: Any) -> dict[str, Any]:
    return {"id": check, "status": status, "title": title, "detail": "", "evidence": evidence, "fix": None}


def report_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "tool_version": "0.1.0", "target": {"python": "/p", "version": "3.11.7"}, "host": {"name": "host-a"},
        "findings": [finding("ports", "ok"), finding("gpus", "ok"), finding("libs", "ok")],
        "libraries": {"libstdc++": {"resolved": [{"path": "/lib/libstdc++.so.6", "how": "ld.so.cache"}]},
                      "cudart": {"version": "12.6.77", "path": "/x/libcudart.so"}},
        "packages": {"nvidia-pytriton": "0.7.0", "numpy": "1.26.4"},
        "environment": {"LD_LIBRARY_PATH": "/a", "HF_TOKEN": "hf_PlantedHuggingFaceToken0123456789"},
        "gpu": {"driver_version": "550.54", "cuda_driver_version": "12.4", "devices": [{"index": 0, "name": "H100"}]},
    }
    doc.update(overrides)
    return doc


def test_errors_first_then_libraries_packages_environment_driver_devices() -> None:
    a = report_doc()
    b = report_doc(
        findings=[finding("ports", "warn"), finding("gpus", "ok"), finding("libs", "error")],
        libraries={"libstdc++": {"resolved": [{"path": "/env/lib/libstdc++.so.6", "how": "LD_LIBRARY_PATH"}],
                                 "missing": ["GLIBCXX_3.4.30"]},
                   "cudart": {"version": "12.6.77", "path": "/x/libcudart.so"}},
        packages={"nvidia-pytriton": "0.5.0", "numpy": "1.26.4"},
        environment={"LD_LIBRARY_PATH": "/env/lib", "HF_TOKEN": "hf_OtherPlantedHuggingFaceToken012345"},
        gpu={"driver_version": "535.1", "cuda_driver_version": "12.2", "devices": []},
    )
    diffs = compare(read_side(a, "a"), read_side(b, "b"))
    order = [(d.category, d.name) for d in diffs]
    assert order == [("finding", "libs"), ("finding", "ports"), ("library", "libstdc++"),
                     ("package", "nvidia-pytriton"), ("environment", "LD_LIBRARY_PATH"), ("environment", "HF_TOKEN"),
                     ("driver", "driver_version"), ("driver", "cuda_driver_version"), ("device", "GPUs")]
    token = next(d for d in diffs if d.name == "HF_TOKEN")
    assert token.a == token.b == "[REDACTED]"  # different secrets, still hidden


def test_library_version_change_alone_matters() -> None:
    a = report_doc(libraries={"libpython": {"resolved": "/l/libpython3.11.so.1.0", "resolved_version": "3.11.2"}})
    b = report_doc(libraries={"libpython": {"resolved": "/l/libpython3.11.so.1.0", "resolved_version": "3.11.7"}})
    diffs = compare(read_side(a, "a"), read_side(b, "b"))
    assert [(d.category, d.name) for d in diffs] == [("library", "libpython")]


def test_title_only_changes_are_context() -> None:
    a = report_doc(findings=[finding("shm", "ok", "1 GiB free")])
    b = report_doc(findings=[finding("shm", "ok", "2 GiB free")])
    diffs = compare(read_side(a, "a"), read_side(b, "b"))
    assert [d.matters for d in diffs] == [False]


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(report_doc()))
    cases = {"garbage.json": "{not json", "list.json": "[1, 2]", "nofindings.json": '{"target": {}}',
             "badfinding.json": '{"findings": [{"status": "ok"}]}', "binary.json": b"\xff\xfe\x00".decode("latin-1")}
    paths = []
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="latin-1")
        paths.append(str(tmp_path / name))
    for path in paths + [str(tmp_path / "missing.json"), str(tmp_path)]:
        proc = tritondoctor("diff", str(good), path)
        assert proc.returncode == 2, (path, proc.stdout)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tritondoctor: error:"), proc.stderr
