"""A tritonserver log cut into the part of each model, and each model's failure diagnosed.

Triton writes one record per message: a line with the glog prefix (`E0101 12:00:00.000 123
file.cc:42] ...`) and, for a Python traceback, unprefixed lines after it. A record belongs to a
model when it names the model (as a whole word) or the model's folder.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable

from tritondoctor.findings import Finding, Status
from tritondoctor.observation import Observation
from tritondoctor.smoke import diagnose as dx

_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]")
AREA = "Repository smoke test"


def records(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith(("+-", "| ")):
            continue  # the startup tables list every model at once: no one's own line
        if _PREFIX.match(line) or not out:
            out.append(line)
        else:
            out[-1] += "\n" + line
    return out


def _mentions(name: str, folders: Iterable[str]) -> re.Pattern[str]:
    # Instance names are "<model>_<group>_<index>"; a plain word match would miss them.
    word = r"(?<![\w.-])" + re.escape(name) + r"(?:_\d+(?:_\d+)?)?(?![\w-])"
    paths = "|".join(re.escape(f.rstrip("/") + "/") for f in folders)
    return re.compile(word + (f"|{paths}" if paths else ""))


def model_lines(text: str, name: str, folders: Iterable[str] = ()) -> list[str]:
    pattern = _mentions(name, list(folders))
    return [record for record in records(text) if pattern.search(record)]


def model_findings(name: str, lines: list[str], reason: str, obs: Observation) -> list[Finding]:
    """Why `name` did not load: the shared signatures over its log records and the server's
    reason; the bare reason as a `model-load` error when no signature explains it."""
    text = "\n".join(lines + ([reason] if reason else []))
    found = dx.from_log(text, obs)
    if not found:
        first = (reason or "no reason given").strip().splitlines()[0][:300]
        found = [Finding("model-load", Status.ERROR, f"the model did not load: {first}",
                         "tritonserver reported the model as not ready; its log lines are in the evidence.",
                         {}, None, AREA)]
    return [_named(f, name, lines) for f in found]


def _named(finding: Finding, name: str, lines: list[str]) -> Finding:
    evidence = dict(finding.evidence)
    evidence["model"] = name
    evidence.setdefault("log", [line[:400] for line in lines[:5]])
    return dataclasses.replace(finding, title=f"model '{name}': {finding.title}", evidence=evidence,
                               area=finding.area or AREA)


def server_findings(text: str, exit_code: int | None, obs: Observation) -> list[Finding]:
    """The server itself did not come up: what the signatures say, or the exit status."""
    found = dx.from_log(text, obs)
    if found:
        return found
    tail = [line for line in text.splitlines() if line.strip()][-5:]
    if exit_code is None:
        how = "no answer"
    else:
        how = dx.signal_name(exit_code) or f"exit status {exit_code}"
    return [Finding("server-exit", Status.ERROR, f"tritonserver did not start serving ({how})",
                    "\n".join(line[:300] for line in tail), {"log": tail, "exit_code": exit_code}, None, AREA)]


def model_folders(repos: Iterable[str]) -> dict[str, list[str]]:
    """Model name -> its folders: every directory in a repository is a model to Triton."""
    out: dict[str, list[str]] = {}
    for repo in repos:
        try:
            entries = sorted(os.listdir(repo))
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(os.path.abspath(repo), entry)
            if os.path.isdir(path) and not entry.startswith("."):
                out.setdefault(entry, []).append(path)
    return out
