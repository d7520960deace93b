"""Does the target environment have the Python packages PyTriton imports, at the versions the
installed wheel asks for? Read from installed metadata only: the user's packages are never
imported.

`from pytriton.triton import Triton` imports numpy, tritonclient and (pytriton/proxy) zmq, and
the proxy model the python-backend stub runs imports zmq and numpy in the same environment.
"""

from __future__ import annotations

import shlex

from tritondoctor.checks import _versions as versions
from tritondoctor.facts.target import WATCHED_DISTRIBUTIONS, TargetPython
from tritondoctor.findings import Finding, FixHint, Status
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
