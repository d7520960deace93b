"""Fixes: one module per fix id.

A fix module defines:
    ID: str
    def plan(snap, findings, ctx=None) -> FixPlan | None     reads, never writes
    def apply(plan, journal) -> None                          every write goes through the journal

Plans are made in FIX_ORDER: an install first (later plans see the files it would add through
`FixPlan.overlays`), then the activation hooks.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING

from tritondoctor.plan import ApplyError, FixPlan, PlanContext, file_sha256

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

FIX_ORDER = ("libstdcxx", "conda_hooks", "venv_hooks", "grpc_proxy_hooks", "workspace_cleanup")


def fix_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in FIX_ORDER]


def module_for(fix_id: str) -> ModuleType:
    for module in fix_modules():
        if module.ID == fix_id:
            return module
    raise KeyError(fix_id)


def plan_all(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> list[FixPlan]:
    ctx = ctx or PlanContext()
    plans: list[FixPlan] = []
    for module in fix_modules():
        made = module.plan(snap, findings, ctx)
        if made is None:
            continue
        if _already_in_effect(made, findings):
            ctx.notes.append(f"{made.id}: already in place and in effect here; nothing to do")
            continue
        plans.append(made)
        ctx.previous.append(made)
    return plans


def _already_in_effect(plan: FixPlan, findings: list["Finding"]) -> bool:
    """A plan with nothing to change whose findings are already fine: the fix is in place and
    active (a shell that sourced the hooks), so there is nothing to plan."""
    from tritondoctor.findings import Status

    if not plan.empty:
        return False
    return all(f.status in (Status.OK, Status.SKIP) for f in findings if f.id in plan.clears)


def check_fresh(plan: FixPlan) -> None:
    """Every file the plan rewrites still holds what it held when the plan was made."""
    for change in plan.changes:
        if file_sha256(change.path) != change.before_sha256:
            raise ApplyError(f"{change.path} changed since the plan was made; nothing more was written")


def apply_changes(plan: FixPlan, journal: "Journal") -> None:
    check_fresh(plan)
    for change in plan.changes:
        keep = os.path.isfile(change.path) and not os.path.islink(change.path)
        mode = os.stat(change.path).st_mode & 0o7777 if keep else change.mode
        journal.write_file(change.path, change.content.encode(), mode)
