"""Operating-system facts: architecture, glibc, distribution, kernel, WSL, container."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from tritondoctor.facts import container as container_facts
from tritondoctor.facts.inputs import EnvReads
from tritondoctor.versions import running_glibc

READS = EnvReads(files=("/proc/version", "/etc/os-release", "/usr/lib/os-release")) | container_facts.READS


@dataclass(frozen=True)
class SystemFacts:
    machine: str  # uname machine: x86_64, aarch64
    kernel: str
    glibc: tuple[int, int] | None
    os_name: str  # PRETTY_NAME from os-release
    is_wsl: bool
    container: str | None  # the one container fact: see facts/container.py

    @property
    def in_container(self) -> bool:
        return self.container is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "kernel": self.kernel,
            "glibc": ".".join(map(str, self.glibc)) if self.glibc else None,
            "os": self.os_name,
            "wsl": self.is_wsl,
            "container": self.in_container,
        }


def _glibc_version() -> tuple[int, int] | None:
    return running_glibc()


def _os_release(root: str) -> str:
    for path in ("etc/os-release", "usr/lib/os-release"):
        try:
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("PRETTY_NAME="):
                        return line.split("=", 1)[1].strip().strip('"')
        except OSError:
            continue
    return "unknown"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def gather(root: str = "/", environ: Mapping[str, str] | None = None) -> SystemFacts:
    uname = os.uname()
    kernel_release = uname.release
    is_wsl = "microsoft" in kernel_release.lower() or "wsl" in _read("/proc/version").lower()
    return SystemFacts(
        machine=os.uname().machine,
        kernel=kernel_release,
        glibc=_glibc_version(),
        os_name=_os_release(root),
        is_wsl=is_wsl,
        container=container_facts.detect(os.environ if environ is None else environ),
    )
