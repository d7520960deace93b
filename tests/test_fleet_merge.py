"""`tritondoctor fleet merge`: real check reports, varied per node, grouped; bad files kept."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest


def tritondoctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tritondoctor", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def real_report() -> Dict[str, Any]:
    """One real `check --json` of this interpreter's environment."""
    proc = tritondoctor("check", "--json", "--python", sys.executable)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def node(base: Dict[str, Any], name: str, glibcxx: Optional[str] = None, python: Optional[str] = None,
         all_ok: bool = False) -> Dict[str, Any]:
    report = copy.deepcopy(base)
    report["host"] = {"name": name, "machine_id": name * 2, "node_id": f"id-{name}"}
    for finding in report["findings"]:
        finding["title"] += f" on {name}"  # per-node text must not split groups
        if all_ok:
            finding["status"] = "ok"
    if glibcxx:
        report["findings"].append({"id": "glibcxx", "status": "error", "title": f"{glibcxx} lacks GLIBCXX_3.4.30",
                                   "detail": "", "fix": None,
                                   "evidence": {"provider": glibcxx, "missing": ["GLIBCXX_3.4.30"]}})
    if python:
        report["target"]["version"] = python
    return report


def write(directory: Path, name: str, data: Any) -> None:
    (directory / f"{name}.json").write_text(data if isinstance(data, str) else json.dumps(data))


def merge_json(*paths: Path) -> tuple[int, Dict[str, Any]]:
    proc = tritondoctor("fleet", "merge", "--json", *map(str, paths))
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_groups_largest_first_odd_ones_by_host(tmp_path: Path, real_report: Dict[str, Any]) -> None:
    for i in range(5):
        write(tmp_path, f"n{i}", node(real_report, f"n{i}"))
    write(tmp_path, "old1", node(real_report, "old1", glibcxx="/opt/conda/lib/libstdc++.so.6"))
    write(tmp_path, "old2", node(real_report, "old2", glibcxx="/opt/conda/lib/libstdc++.so.6"))
    write(tmp_path, "py", node(real_report, "py", python="3.11.9"))
    status, summary = merge_json(tmp_path)
    assert summary["nodes"] == 8 and summary["readable"] == 8 and summary["unreadable"] == []
    sizes = [g["size"] for g in summary["groups"]]
    assert sizes == [5, 2, 1]
    largest, old, py = summary["groups"]
    assert largest["hosts"] == [f"n{i}" for i in range(5)]
    assert largest["node_ids"] == [f"id-n{i}" for i in range(5)]
    assert "differs_from_largest" not in largest
    assert old["hosts"] == ["old1", "old2"]
    differs = old["differs_from_largest"]
    assert differs["findings"]["glibcxx"]["this"].split("+").count("error") == 1
    assert "/opt/conda/lib/libstdc++.so.6 lacks GLIBCXX_3.4.30" in differs["resolutions"]["libstdcxx"]["this"]
    assert py["differs_from_largest"] == {"findings": {}, "resolutions": {
        "python": {"this": "3.11.9", "largest": real_report["target"]["version"]}}}
    assert largest["resolutions"]["tool_version"] == real_report["tool_version"]
    any_error = any(f["status"] == "error" for f in real_report["findings"])
    assert status == 1 and summary["exit_status"] == 1 and summary["nodes_with_errors"] == (8 if any_error else 3)


def test_text_summary_names_the_odd_ones_out(tmp_path: Path, real_report: Dict[str, Any]) -> None:
    for i in range(3):
        write(tmp_path, f"n{i}", node(real_report, f"n{i}"))
    write(tmp_path, "odd", node(real_report, "odd", glibcxx="/opt/old/libstdc++.so.6"))
    proc = tritondoctor("fleet", "merge", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "4 nodes in 2 groups" in out
    assert "hosts: n0, n1, n2" in out and "hosts: odd" in out
    assert "differs from group 1:" in out and "/opt/old/libstdc++.so.6 lacks GLIBCXX_3.4.30" in out


def test_unreadable_nodes_are_listed_and_exit_2(tmp_path: Path, real_report: Dict[str, Any]) -> None:
    good = tmp_path / "good"
    good.mkdir()
    write(good, "n0", node(real_report, "n0", all_ok=True))
    write(good, "truncated", json.dumps(real_report)[:100])
    write(good, "empty", "")
    write(good, "array", "[1, 2]")
    write(good, "record", {"host": {"name": "n9"}, "error": "the check timed out after 300 s on n9"})
    (good / "notes.txt").write_text("not a report, not read")
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(node(real_report, "n1", all_ok=True)))
    status, summary = merge_json(good, extra)
    assert status == 2 and summary["exit_status"] == 2
    assert summary["nodes"] == 6 and summary["readable"] == 2
    assert summary["groups"][0]["hosts"] == ["n0", "n1"]
    errors = {u["host"]: u["error"] for u in summary["unreadable"]}
    assert set(errors) == {"truncated", "empty", "array", "n9"}
    assert errors["truncated"].startswith("not JSON")
    assert errors["empty"].startswith("empty file")
    assert "not a tritondoctor check report" in errors["array"]
    assert errors["n9"] == "the check timed out after 300 s on n9"
    text = tritondoctor("fleet", "merge", str(good), str(extra))
    assert text.returncode == 2 and "4 could not be read" in text.stdout and "truncated" in text.stdout


def test_all_clean_exits_0_and_shared_names_are_told_apart(tmp_path: Path, real_report: Dict[str, Any]) -> None:
    for i in range(2):
        report = node(real_report, "same-host", all_ok=True)
        report["host"]["node_id"] = f"node-{i}"
        write(tmp_path, f"r{i}", report)
    status, summary = merge_json(tmp_path)
    assert status == 0 and summary["nodes_with_errors"] == 0
    assert summary["groups"][0]["hosts"] == ["same-host/node-0", "same-host/node-1"]


@pytest.mark.parametrize("make", ["missing", "empty-dir"])
def test_bad_usage_is_one_line_exit_2(tmp_path: Path, make: str) -> None:
    target = tmp_path / "nothing"
    if make == "empty-dir":
        target.mkdir()
    proc = tritondoctor("fleet", "merge", str(target))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tritondoctor: error:"), proc.stderr


def test_fleet_run_without_ray_says_how_to_install() -> None:
    code = ("import sys; sys.modules['ray'] = None; from tritondoctor.cli import main; "
            "main(['fleet', 'run', '--ray'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "tritondoctor: error: fleet run --ray needs Ray: pip install 'tritondoctor[ray]'"


def test_fleet_run_needs_an_engine() -> None:
    proc = tritondoctor("fleet", "run")
    assert proc.returncode == 2 and "--ray" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
