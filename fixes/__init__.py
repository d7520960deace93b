"""Fixes: one module per fix id, each declaring one `FIX = FixSpec(...)` (tritondoctor/fixspec.py).

`all_fixes()` is the one list, in plan order: an install first (later plans see the files it
would add through `FixPlan.overlays`), then the activation hooks, then clean-ups. Adding a fix =
one module + one line there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tritondoctor.fixspec import FixSpec, apply_changes, check_fresh  # noqa: F401 - the fix modules' helpers
from tritondoctor.plan import FixPlan, PlanContext

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.snapshot import Snapshot


def all_fixes() -> tuple[FixSpec, ...]:
    from tritondoctor.fixes import (
        conda_hooks,
        grpc_proxy_hooks,
        libstdcxx,
        model_stub,
        venv_hooks,
        workspace_cleanup,
    )

    return (libstdcxx.FIX, conda_hooks.FIX, venv_hooks.FIX, grpc_proxy_hooks.FIX, workspace_cleanup.FIX,
            model_stub.FIX)


def spec_for(fix_id: str) -> FixSpec:
    for spec in all_fixes():
        if spec.id == fix_id:
            return spec
    raise KeyError(fix_id)


def plan_all(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> list[FixPlan]:
    ctx = ctx or PlanContext()
    plans: list[FixPlan] = []
    for spec in all_fixes():
        made = spec.plan(snap, findings, ctx)
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
