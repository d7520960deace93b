"""Fix `workspace-cleanup`: remove the PyTriton workspaces under PYTRITON_HOME that no running
process uses (catalog row 29).

Deleted, not journaled, and said so in the plan: the journal keeps backups inside the
environment it changes (`$PREFIX/.tritondoctor`), while PYTRITON_HOME usually lies elsewhere
(~/.cache/pytriton) and often on another file system, so a backup would mean copying 22 MB per
workspace to keep what a killed run left behind. A workspace holds only PyTriton's scratch copy
of files its wheel still has (tritonserver, backends) plus sockets and logs of a dead run; the
next start makes a fresh one. Liveness is checked again right before each deletion.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import TYPE_CHECKING

from tritondoctor.checks import stale_workspaces
from tritondoctor.facts import workspaces as workspaces_facts
from tritondoctor.facts.runtime import human_bytes
from tritondoctor.fixspec import FixSpec
from tritondoctor.plan import (
    ApplyError,
    Command,
    FixPlan,
    PlanContext,
    Prediction,
    statuses_of,
)

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

ID = "workspace-cleanup"
NOT_UNDOABLE = ("not undoable: the stale workspaces are deleted, not backed up (they hold only PyTriton's scratch "
                "copy of the wheel's server files and a dead run's sockets and logs); `tritondoctor fix --undo` does "
                "not bring them back")


def plan(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> FixPlan | None:
    scan = snap.workspaces
    if scan is None or not scan.stale or snap.target is None:
        return None
    stale = scan.stale
    after = dataclasses.replace(snap, workspaces=dataclasses.replace(scan, workspaces=scan.live))
    statuses = statuses_of(stale_workspaces.run(after), [stale_workspaces.ID])
    prediction = Prediction(statuses[stale_workspaces.ID] == "ok",
                            "ran stale-workspaces again on the snapshot without the workspaces to be removed",
                            statuses)
    commands = tuple(Command(("rm", "-rf", "--", w.path), f"{human_bytes(w.size)}, stale for {w.age_s / 3600:.1f} h")
                     for w in stale)
    total = sum(w.size for w in stale)
    notes = (NOT_UNDOABLE,) + ((f"kept (in use): {', '.join(w.path for w in scan.live)}",) if scan.live else ())
    return FixPlan(id=ID, title=f"remove {len(stale)} stale PyTriton workspace(s) under {scan.home} "
                   f"({human_bytes(total)})", prefix=snap.target.prefix, clears=(stale_workspaces.ID,),
                   prediction=prediction, commands=commands, notes=notes)


def apply(plan: FixPlan, journal: "Journal") -> None:
    paths = [c.argv[-1] for c in plan.commands]
    if not paths:
        return
    home = os.path.dirname(paths[0])
    still_stale = {w.path for w in workspaces_facts.scan(home).stale}
    for path in paths:
        if os.path.dirname(path) != home or not os.path.basename(path).startswith(workspaces_facts.PREFIX):
            raise ApplyError(f"{path}: not a PyTriton workspace under {home}; nothing more was removed")
        if path not in still_stale:
            continue  # in use now, or already gone: never remove a live one
        shutil.rmtree(path)


def _stale(plan: FixPlan) -> str | None:
    """Nothing to compare: `apply` checks again, right before each deletion, that a workspace is
    still stale and skips any that came into use."""
    return None


FIX = FixSpec(ID, plan, apply, stale=_stale,
              summary="remove stale PyTriton workspaces (not undoable)", touches=("workspaces",))
