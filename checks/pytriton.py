"""Is nvidia-pytriton installed in the target environment, with the binaries it needs?"""

from __future__ import annotations

import re
from typing import Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence, python_command
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.snapshot import Snapshot

ID = "pytriton"
AREA = "PyTriton install"
ORDER = 10


def run(snap: Snapshot) -> list[Finding]:
    target = snap.target
    if target is None:
        return [Finding(ID, Status.ERROR, f"no Python environment to inspect: {snap.target_error}",
                        fix=FixHint("select-python", "activate the environment, or name its interpreter",
                                    ("tritondoctor check --python /path/to/env/bin/python",)))]
    install = snap.pytriton
    if install is None:
        return [Finding(ID, Status.ERROR, f"nvidia-pytriton is not installed in {target.prefix}",
                        detail=f"Python {target.version_string} at {target.executable} has no nvidia-pytriton distribution.",
                        evidence={"python": target.executable},
                        fix=FixHint("install-pytriton", "install it into this environment",
                                    (f"{target.executable} -m pip install -U nvidia-pytriton",)))]
    findings: list[Finding] = []
    missing = list(install.missing_files)
    not_exec = [install.tritonserver] if install.tritonserver_is_file and not install.tritonserver_executable else []
    stub = install.stub_for(target.minor)
    evidence = {"version": install.version, "tritonserver": install.tritonserver,
                "python_backend": install.python_backend, "stub": stub, "stubs": sorted(install.stubs)}
    reinstall = FixHint("reinstall-pytriton", "reinstall the wheel",
                        (f"{target.executable} -m pip install --force-reinstall --no-deps nvidia-pytriton=={install.version}",))
    if missing:
        findings.append(Finding(ID, Status.ERROR, "PyTriton's server files are missing: " + ", ".join(missing),
                                evidence=evidence, fix=reinstall))
    if not_exec:
        findings.append(Finding(ID, Status.ERROR, f"{install.tritonserver} is not executable",
                                evidence=evidence, fix=FixHint("chmod", "make it executable", (f"chmod +x {install.tritonserver}",))))
    if not install.libs_dir_is_dir:
        findings.append(Finding(
            ID, Status.ERROR,
            f"PyTriton will look for its bundled libraries in {install.libs_dir}, which does not exist",
            detail=f"{install.package_dir} is outside this interpreter's site-packages (reached through a .pth file, "
                   "PYTHONPATH or an editable install), so PyTriton treats itself as an editable install and does "
                   "not put the wheel's nvidia_pytriton.libs on LD_LIBRARY_PATH; tritonserver then cannot find "
                   "libcudart and the other bundled libraries from its workspace copy.",
            evidence=evidence,
            fix=FixHint("install-pytriton", "install nvidia-pytriton into this environment itself",
                        (f"{target.executable} -m pip install nvidia-pytriton=={install.version}",)),
        ))
    if stub is None:
        available = ", ".join(sorted(install.stubs, key=lambda v: tuple(map(int, v.split("."))))) or "none"
        findings.append(Finding(
            ID, Status.ERROR,
            f"nvidia-pytriton {install.version} has no python-backend stub for Python {target.minor} (it has {available})",
            detail="The stub must match the interpreter's minor version, or models fail with "
                   "'Failed to initialize stub, stub process exited unexpectedly'.",
            evidence=evidence,
            fix=FixHint("python-version", "use a Python whose version has a stub",
                        (f"# create the environment with Python {sorted(install.stubs)[-1] if install.stubs else '3.12'} or another listed version",)),
        ))
    elif not install.stub_executable.get(target.minor, False):
        findings.append(Finding(ID, Status.ERROR, f"the stub {stub} is not executable", evidence=evidence,
                                fix=FixHint("chmod", "make it executable", (f"chmod +x {stub}",))))
    if not findings:
        findings.append(Finding(ID, Status.OK,
                                f"nvidia-pytriton {install.version} with tritonserver, python backend and the Python {target.minor} stub",
                                evidence=evidence))
    return findings


SIGNATURES = (
    sig(r"FileNotFoundError: .*python_backend_stubs/(3\.\d+)", 39, fast_fail=True,
        cause="nvidia-pytriton ships stubs for Python 3.8-3.13 only, yet installs into any Python 3"),
    sig(r"Failed to initialize stub, stub process exited unexpectedly", 8, fast_fail=True,
        cause="the stub could not start: no stub for this Python's minor, or one that cannot load"),
)


def stub_minor(matches: Sequence[Match]) -> str | None:
    """The Python minor of the libpython a stub asked for, as a log line names it."""
    for match in matches:
        found = re.match(r"libpython(3\.\d+)", match.groups[0] if match.groups else "")
        if found:
            return found.group(1)
    return None


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    interp = obs.interpreter
    minor = stub_minor(matches)
    if minor and interp.minor and minor != interp.minor:
        title = f"the server ran the Python backend stub built for Python {minor}, but the interpreter is {interp.minor}"
    else:
        title = "the Python backend stub exited while the model was loading (Failed to initialize stub)"
    detail = ("PyTriton copies the stub for the running Python's minor version; a stub for another minor, or one "
              "that cannot start, makes every model load fail.")
    pin = f"=={interp.pytriton}" if interp.pytriton else ""
    fix = FixHint("reinstall-pytriton", "reinstall nvidia-pytriton for this interpreter, then re-check",
                  (f"{python_command(interp)} -m pip install --force-reinstall --no-deps nvidia-pytriton{pin}",
                   "tritondoctor check"))
    return Finding(ID, Status.ERROR, title, detail, log_evidence(matches), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, from_log=from_log, log_is_consequence=True, rows=(8, 39),
                  summary="nvidia-pytriton installed; tritonserver, python backend and the stub for this Python present and executable")
