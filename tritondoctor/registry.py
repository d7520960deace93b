"""Finds the check modules and runs them over a snapshot.

A check module in `tritondoctor.checks` defines:
    ID: str           the stable finding id (several findings may share it)
    AREA: str         report group, one of AREAS
    ORDER: int        position in the report (cheap, foundational checks first)
    def run(snap: Snapshot) -> list[Finding]     pure: reads the snapshot only
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import TYPE_CHECKING

from tritondoctor.findings import Finding, Status

if TYPE_CHECKING:
    from tritondoctor.snapshot import Snapshot

AREAS = (
    "Platform",
    "PyTriton install",
    "Shared libraries",
    "Environment variables",
    "Python packages",
    "GPU and CUDA",
    "Runtime resources",
)


def check_modules() -> list[ModuleType]:
    import tritondoctor.checks as package

    modules = [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]
    modules = [m for m in modules if hasattr(m, "ID") and hasattr(m, "run")]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.ID))


def check_ids() -> list[str]:
    return [m.ID for m in check_modules()]


def run_checks(snap: "Snapshot", only: set[str] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for module in check_modules():
        if only is not None and module.ID not in only:
            continue
        area = getattr(module, "AREA", "")
        try:
            produced = module.run(snap)
        except Exception as exc:  # a bug in one check must not hide the others' results
            produced = [
                Finding(
                    id=module.ID,
                    status=Status.ERROR,
                    title=f"internal error in check {module.ID!r}: {exc.__class__.__name__}: {exc}",
                    detail="This is a tritondoctor bug; please report it with `tritondoctor check --json`.",
                )
            ]
        for finding in produced:
            findings.append(finding if finding.area else _with_area(finding, area))
    return findings


def _with_area(finding: Finding, area: str) -> Finding:
    from dataclasses import replace

    return replace(finding, area=area)
