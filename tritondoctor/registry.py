"""Runs the declared checks (tritondoctor.checks.CHECKS) over a snapshot, and the views of that
list the rest of the tool needs: ids, the loader-check set, every log signature."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tritondoctor.checkspec import AREAS  # noqa: F401 - re-exported for renderers
from tritondoctor.findings import Finding, Status

if TYPE_CHECKING:
    from tritondoctor.checkspec import CheckSpec
    from tritondoctor.snapshot import Snapshot


def all_checks() -> tuple["CheckSpec", ...]:
    from tritondoctor.checks import CHECKS

    return CHECKS


def check_ids() -> list[str]:
    return [c.id for c in all_checks()]


def loader_check_ids() -> frozenset[str]:
    """Checks whose result depends on which files the loader picks (fix predictions re-run them)."""
    return frozenset(c.id for c in all_checks() if c.loader)


def run_checks(snap: "Snapshot", only: set[str] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for spec in all_checks():
        if only is not None and spec.id not in only:
            continue
        try:
            produced = spec.run(snap)
        except Exception as exc:  # a bug in one check must not hide the others' results
            produced = [Finding(
                id=spec.id,
                status=Status.ERROR,
                title=f"internal error in check {spec.id!r}: {exc.__class__.__name__}: {exc}",
                detail="This is a tritondoctor bug; please report it with `tritondoctor check --json`.",
            )]
        findings.extend(f if f.area else replace(f, area=spec.area) for f in produced)
    return findings
