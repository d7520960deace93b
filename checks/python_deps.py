"""Does the target environment have the Python packages PyTriton imports, at the versions the
installed wheel asks for? Read from installed metadata only: the user's packages are never
imported.

`from pytriton.triton import Triton` imports numpy, tritonclient and (pytriton/proxy) zmq, and
the proxy model the python-backend stub runs imports zmq and numpy in the same environment.
"""

from __future__ import annotations

import re
import shlex
from typing import Sequence

from tritondoctor import versions
from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence, python_command
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.facts.target import WATCHED_DISTRIBUTIONS, TargetPython
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.snapshot import Snapshot

ID = "python-deps"
AREA = "Python packages"
ORDER = 50

# The last numpy 1.x, 1.26.4, publishes wheels for CPython 3.9-3.12 only (numpy 2.1.0 is the
# first with cp313 wheels): under a "numpy<2" pin, pip on Python 3.13 must build 1.26 from source.
NUMPY1_LAST_PYTHON = (3, 12)


def _pip(target: TargetPython, requirement: str) -> str:
    prefix = "" if "pip" in target.distributions else f"{target.executable} -m ensurepip && "
    return f"{prefix}{target.executable} -m pip install {shlex.quote(requirement)}"


def _py312_fix(target: TargetPython, version: str) -> FixHint:
    return FixHint("python-version", "make the environment with Python 3.12 (numpy<2 has no wheels for 3.13)", (
        "python3.12 -m venv .venv && .venv/bin/pip install nvidia-pytriton==" + version,
        "# conda: conda create -n pytriton python=3.12 && conda run -n pytriton pip install nvidia-pytriton",
    ))


def run(snap: Snapshot) -> list[Finding]:
    target = snap.target
    if target is None:
        return [Finding(ID, Status.SKIP, "no Python environment to inspect")]
    pytriton = target.distributions.get("nvidia-pytriton")
    if pytriton is None:
        return [Finding(ID, Status.SKIP, "nvidia-pytriton is not installed: its dependencies are not checked")]
    py313 = tuple(target.version[:2]) > NUMPY1_LAST_PYTHON
    findings: list[Finding] = []
    checked: list[str] = []
    for text in pytriton.requires:
        parsed = versions.requirement(text)
        if parsed is None or parsed[2]:  # extras/markers: not a plain runtime requirement
            continue
        name, spec, _marker = parsed
        if name not in WATCHED_DISTRIBUTIONS:
            continue  # the probe did not read it: no claim either way
        dist = target.distributions.get(name)
        wanted = f"{name}{spec}"
        evidence = {"requirement": text, "installed": dist.version if dist else None,
                    "required_by": f"nvidia-pytriton {pytriton.version}", "python": target.version_string}
        numpy_pin = name == "numpy" and versions.satisfies("2.0.0", spec) is False
        if dist is None:
            detail = (f"nvidia-pytriton {pytriton.version} requires {wanted}; `from pytriton.triton import Triton` "
                      f"fails with ModuleNotFoundError ({'zmq' if name == 'pyzmq' else name}).")
            fix = FixHint("install-deps", f"install {wanted} into this environment", (_pip(target, wanted),))
            if numpy_pin and py313:
                detail += (f" On Python {target.version_string} there is no numpy<2 wheel (numpy 1.26.4 stops at "
                           "3.12), so pip builds numpy from source, which usually fails.")
                fix = _py312_fix(target, pytriton.version)
            findings.append(Finding(ID, Status.ERROR, f"{name} is not installed in {target.prefix}",
                                    detail=detail, evidence=evidence, fix=fix))
            continue
        ok = versions.satisfies(dist.version, spec) if spec else True
        if ok is False:
            detail = (f"nvidia-pytriton {pytriton.version} declares {wanted}; {name} {dist.version} is installed "
                      "(pip installs that only when told to ignore dependencies, or when another package "
                      "upgraded it later).")
            fix = FixHint("install-deps", "install the version nvidia-pytriton asks for", (_pip(target, wanted),))
            if numpy_pin:
                detail += " PyTriton 0.7.0 was built and tested against numpy 1.x."
                if py313:
                    detail += (f" On Python {target.version_string} pip has no numpy<2 wheel to downgrade to "
                               "(numpy 1.26.4 stops at 3.12).")
                    fix = _py312_fix(target, pytriton.version)
            findings.append(Finding(ID, Status.ERROR, f"{name} {dist.version} is installed but nvidia-pytriton "
                                    f"{pytriton.version} requires {wanted}", detail=detail, evidence=evidence, fix=fix))
            continue
        checked.append(f"{name} {dist.version}")
        if numpy_pin and py313:
            checked[-1] += " (built from source: no numpy<2 wheel exists for this Python)"
    if not findings:
        title = (f"{', '.join(checked)} meet nvidia-pytriton {pytriton.version}'s requirements" if checked else
                 f"nvidia-pytriton {pytriton.version} declares none of the dependencies this check reads")
        findings.append(Finding(ID, Status.OK, title, evidence={"checked": checked, "requires": list(pytriton.requires)}))
    return findings


SIGNATURES = (
    sig(r"missing required packages.*?Missing modules ([\w, ]+)", 9, cause="PyTriton's model proxy needs packages the env lacks"),
    sig(r"No module named '([\w.]+)'", 9, cause="a module the stub or the model imports is not installed in the env"),
)
# Import names whose pip package is called differently.
_PIP_NAMES = {"zmq": "pyzmq", "yaml": "pyyaml", "google": "protobuf", "sh": "sh", "numpy": "numpy"}


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    modules: list[str] = []
    for match in matches:
        for name in re.split(r"[,\s]+", match.groups[0] if match.groups else ""):
            top = name.split(".")[0]
            if top and top not in modules:
                modules.append(top)
    packages = [_PIP_NAMES.get(m, m) for m in modules]
    title = "Python modules are missing: " + ", ".join(modules) if modules else "Python packages PyTriton needs are missing"
    fix = FixHint("install-deps", "install them into this environment",
                  (f"{python_command(obs.interpreter)} -m pip install " + " ".join(packages or ["numpy", "pyzmq"]),))
    return Finding(ID, Status.ERROR, title, "", log_evidence(matches), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, from_log=from_log, rows=(9, 21),
                  summary="numpy / pyzmq in the target env, the numpy<2 pin, Python 3.13 with 0.7.0")
