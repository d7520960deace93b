"""The declared record of one fix: `FIX = FixSpec(...)` in its module in fixes/, listed once in
`tritondoctor.fixes.all_fixes()` in plan order. A fix plans from the findings' typed needs
(reads, never writes), applies only through the journal, and says by its own rule whether a plan
is still true of the environment when the lock is held (or must be made again).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from tritondoctor.plan import ApplyError, FixPlan, PlanContext, file_sha256

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

Planner = Callable[["Snapshot", "list[Finding]", "PlanContext | None"], "FixPlan | None"]


def files_unchanged(plan: FixPlan) -> str | None:
    """The default staleness rule: every file the plan rewrites still holds what it held when the
    plan was made. Returns why the plan is stale, or None."""
    for change in plan.changes:
        if file_sha256(change.path) != change.before_sha256:
            return f"{change.path} changed since the plan was made"
    return None


@dataclass(frozen=True)
class FixSpec:
    id: str
    plan: Planner
    apply: Callable[[FixPlan, "Journal"], None]
    stale: Callable[[FixPlan], "str | None"] = files_unchanged  # why the plan no longer holds, or None
    summary: str = ""
    # Snapshot fields whose facts the fix changes on the disk (not through the environment):
    # the re-check after applying reads them again (tritondoctor.snapshot.regathered).
    touches: tuple[str, ...] = ()
    # A plan that changes several places, each with its own journal (model directories): the
    # plan per place. None: the plan's one prefix.
    split: "Callable[[FixPlan], list[FixPlan]] | None" = None


def check_fresh(plan: FixPlan) -> None:
    reason = files_unchanged(plan)
    if reason is not None:
        raise ApplyError(f"{reason}; nothing more was written")


def apply_changes(plan: FixPlan, journal: "Journal") -> None:
    """Write a plan's file changes through the journal (the default `apply`)."""
    check_fresh(plan)
    for change in plan.changes:
        keep = os.path.isfile(change.path) and not os.path.islink(change.path)
        mode = os.stat(change.path).st_mode & 0o7777 if keep else change.mode
        journal.write_file(change.path, change.content.encode(), mode)
