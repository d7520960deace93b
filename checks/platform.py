"""Does the nvidia-pytriton wheel fit this OS: architecture, glibc (manylinux tag), and a pip new
enough to read the tag?

Wheels on PyPI (tests/data/pypi-nvidia-pytriton-files.txt): 0.1.4-0.2.5 are
`manylinux_2_31_x86_64`; every release from 0.3.0 on is `manylinux_2_35` (x86_64, and aarch64 from
0.4.2). So on glibc 2.31-2.34 (Ubuntu 20.04, Debian 11, RHEL/Rocky 9) `pip install nvidia-pytriton`
silently installs 0.2.5, and on older glibc nothing. pip reads `manylinux_x_y` tags (PEP 600)
from 20.3 on.
"""

from __future__ import annotations

import re
from typing import Any

from tritondoctor import versions
from tritondoctor.checkspec import CheckSpec
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "platform"
AREA = "Platform"
ORDER = 5

SUPPORTED_MACHINES = ("x86_64", "aarch64")
CURRENT_GLIBC = (2, 35)  # nvidia-pytriton >= 0.3.0
FALLBACK = ("0.2.5", (2, 31))  # the last release pip can pick on older glibc (x86_64 only)
PIP_PEP600 = (20, 3)
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def tag_platforms(tag: str) -> list[tuple[tuple[int, int] | None, str | None]]:
    """'py3-none-manylinux_2_35_x86_64' -> [((2, 35), 'x86_64')]; 'linux_x86_64' -> [(None, 'x86_64')]."""
    parts = tag.split("-")
    out: list[tuple[tuple[int, int] | None, str | None]] = []
    for plat in (parts[2] if len(parts) == 3 else tag).split("."):
        match = re.match(r"^manylinux_(\d+)_(\d+)_(.+)$", plat)
        if match:
            out.append(((int(match.group(1)), int(match.group(2))), match.group(3)))
            continue
        legacy = next((k for k in _LEGACY if plat.startswith(k + "_")), None)
        if legacy:
            out.append((_LEGACY[legacy], plat[len(legacy) + 1:]))
        elif plat.startswith("linux_"):
            out.append((None, plat[len("linux_"):]))
        elif plat == "any":
            out.append((None, None))
    return out


def _glibc_text(glibc: tuple[int, int] | None) -> str:
    return ".".join(map(str, glibc)) if glibc else "none (not a glibc system)"


def _new_os_fix() -> FixHint:
    return FixHint("glibc", "run PyTriton on a glibc >= 2.35 system, e.g. a container", (
        "docker run --gpus all -it ubuntu:22.04  # glibc 2.35; Debian 12: 2.36",
        "# then: python3 -m venv venv && venv/bin/pip install nvidia-pytriton",
    ))


def run(snap: Snapshot) -> list[Finding]:
    system, target = snap.system, snap.target
    machine, glibc = system.machine, system.glibc
    evidence: dict[str, Any] = {"os": system.os_name, "machine": machine, "glibc": _glibc_text(glibc), "kernel": system.kernel}
    if machine not in SUPPORTED_MACHINES:
        return [Finding(ID, Status.ERROR, f"nvidia-pytriton has no wheels for {machine} (only x86_64 and aarch64)",
                        evidence=evidence)]
    if glibc is None:
        return [Finding(ID, Status.ERROR, f"{system.os_name} has no glibc: manylinux wheels (and tritonserver) "
                        "cannot run on it", detail="musl-based systems such as Alpine cannot run tritonserver.",
                        evidence=evidence, fix=_new_os_fix())]
    findings: list[Finding] = []
    dist = target.distributions.get("nvidia-pytriton") if target else None
    if target is not None and dist is not None:
        tags = snap.pytriton.wheel_tags if snap.pytriton and snap.pytriton.wheel_tags else dist.tags
        evidence.update(pytriton=dist.version, tags=list(tags))
        platforms = [p for tag in tags for p in tag_platforms(tag)]
        archs = {arch for _g, arch in platforms if arch}
        needs = [g for g, arch in platforms if g and arch == machine]
        if archs and machine not in archs:
            findings.append(Finding(ID, Status.ERROR, f"the installed nvidia-pytriton {dist.version} wheel is for "
                                    f"{', '.join(sorted(archs))}, this machine is {machine}",
                                    detail="The environment was copied from another machine or installed with "
                                           "--platform; its binaries cannot run here.",
                                    evidence=evidence,
                                    fix=FixHint("reinstall-pytriton", "reinstall it on this machine",
                                                (f"{target.executable} -m pip install --force-reinstall nvidia-pytriton=={dist.version}",))))
        elif needs and glibc < min(needs):
            need = min(needs)
            findings.append(Finding(ID, Status.ERROR, f"nvidia-pytriton {dist.version} needs glibc >= "
                                    f"{need[0]}.{need[1]}, this system has {_glibc_text(glibc)}",
                                    detail="tritonserver will fail to start with \"version `GLIBC_2.3x' not found\".",
                                    evidence=evidence, fix=_new_os_fix()))
        elif versions.release(dist.version) < (0, 3) and glibc < CURRENT_GLIBC:
            findings.append(Finding(ID, Status.WARN, f"nvidia-pytriton {dist.version} is installed because glibc "
                                    f"{_glibc_text(glibc)} is older than 2.35, which every release since 0.3.0 needs",
                                    detail="pip silently picks the newest wheel this system can run: 0.2.5 "
                                           "(manylinux_2_31). It bundles an old Triton and lacks later APIs and fixes.",
                                    evidence=evidence, fix=_new_os_fix()))
    elif target is not None:
        if (machine == "aarch64" and glibc < CURRENT_GLIBC) or glibc < FALLBACK[1]:
            findings.append(Finding(ID, Status.ERROR, f"no nvidia-pytriton wheel installs on {machine} with glibc "
                                    f"{_glibc_text(glibc)}", detail="pip reports 'No matching distribution found'.",
                                    evidence=evidence, fix=_new_os_fix()))
        elif glibc < CURRENT_GLIBC:
            findings.append(Finding(ID, Status.WARN, f"on glibc {_glibc_text(glibc)} `pip install nvidia-pytriton` "
                                    f"can only install the old {FALLBACK[0]}: later releases need glibc 2.35",
                                    evidence=evidence, fix=_new_os_fix()))
    pip = target.distributions.get("pip") if target else None
    if target is not None and pip is not None and versions.release(pip.version) < PIP_PEP600:
        evidence["pip"] = pip.version
        findings.append(Finding(ID, Status.WARN, f"pip {pip.version} cannot read manylinux_2_35 wheel tags "
                                "(PEP 600 support came in pip 20.3)",
                                detail="`pip install nvidia-pytriton` finds no compatible wheel, or an old one.",
                                evidence=evidence,
                                fix=FixHint("upgrade-pip", "upgrade pip first",
                                            (f"{target.executable} -m pip install -U pip",))))
    if not findings:
        wheel = f"; the installed nvidia-pytriton {dist.version} wheel ({', '.join(dist.tags) or 'no tag'}) fits" if dist else ""
        findings.append(Finding(ID, Status.OK, f"{system.os_name}, {machine}, glibc {_glibc_text(glibc)}{wheel}",
                                evidence=evidence))
    return findings


CHECK = CheckSpec(ID, AREA, run, rows=(4, 5, 19),
                  summary="OS, architecture, glibc vs the wheel's manylinux tag, pip's silent fallback, old pip")
