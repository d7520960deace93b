"""`tritondoctor fix`: stages that flow forward and return data.

    request → target (chosen once) → snapshot (taken once) → plans → decision → apply
            → re-check (the snapshot derived under the activated environment) → smoke → report

`--undo` takes the same request and target and goes straight to the journal. Every stage is a
function of what the previous ones returned; only `run_fix` prints, through render/plans.py.

Exit codes: 0 fixed, verified, and no error left (or nothing to fix / nothing left to undo;
--dry-run: every plan can be applied); 1 an error remains (one no plan addresses included), a
plan was not proven, applying failed and was rolled back, or another fix holds the environment;
2 bad usage, a rejected --package, or no terminal to confirm on without --yes.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping

from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS, CannotProceed, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from tritondoctor.findings import Finding
    from tritondoctor.plan import FixPlan, PlanContext
    from tritondoctor.snapshot import Snapshot


@dataclass(frozen=True)
class FixRequest:
    python: str | None
    yes: bool
    dry_run: bool
    json_out: bool
    undo: bool
    force: bool
    packages: tuple[str, ...]
    no_smoke: bool
    # `--model-repository`: the repositories whose models the `model-stub` fix may change (each
    # model directory is its own journal prefix) and that `--undo` restores.
    model_repositories: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, **kw: Any) -> "FixRequest":
        """Validated here, once: a bad combination or a missing --package is a usage error."""
        request = cls(**kw)
        if request.undo and (request.dry_run or request.packages):
            raise UsageError("--undo takes no --dry-run or --package")
        for path in request.packages:
            if not os.path.isfile(path):
                raise UsageError(f"--package {path}: no such file")
        for directory in request.model_repositories:
            if not os.path.isdir(directory):
                raise UsageError(f"--model-repository {directory}: no such directory")
        return replace(request, packages=tuple(os.path.abspath(p) for p in request.packages),
                       model_repositories=tuple(os.path.abspath(d) for d in request.model_repositories))


@dataclass
class PlanSet:
    findings: list["Finding"]
    plans: list["FixPlan"]
    ctx: "PlanContext"

    @property
    def unfixed(self) -> list["Finding"]:
        from tritondoctor.findings import Status

        return [f for f in self.findings if f.status == Status.ERROR and not any(f.id in p.clears for p in self.plans)]

    @property
    def actionable(self) -> list["FixPlan"]:
        return [p for p in self.plans if not p.empty]


@dataclass
class FixReport:
    """What the run did, in the shape `--json` prints."""

    target: dict[str, Any]
    plans: list[dict[str, Any]]
    notes: list[str]
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    journal: str | None = None
    recheck: dict[str, Any] | None = None
    smoke: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------


def choose_target(python: str | None) -> str:
    """The interpreter of the environment to fix, chosen once for every later stage."""
    from tritondoctor.facts.target import TargetError, choose_interpreter

    try:
        executable, _ = choose_interpreter(os.environ, python)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    return executable


def snapshot_for_fix(executable: str, force: bool, model_repositories: tuple[str, ...] = ()) -> "Snapshot":
    """The one snapshot: for a conda env that is not the active one, derived under the
    environment `conda activate` would give it (its activate.d scripts included)."""
    from tritondoctor.activation import activated_environ
    from tritondoctor.commands.common import snapshot
    from tritondoctor.options import CheckOptions

    snap = snapshot(executable, need_target=True, options=CheckOptions(model_repositories=model_repositories))
    assert snap.target is not None
    prefix = snap.target.prefix
    if snap.target.env_kind == "conda" and _is_base_env(snap) and not force:
        raise UsageError(f"{prefix} is the conda base environment: tritondoctor changes it only with --force "
                         "(better: create an environment for PyTriton)")
    active = os.environ.get("CONDA_PREFIX")
    if snap.target.env_kind == "conda" and not (active and os.path.realpath(active) == os.path.realpath(prefix)):
        activated = activated_environ(snap, [])
        if activated != dict(snap.environ):
            snap = snap.derive(activated)
    return snap


def make_plans(snap: "Snapshot", packages: tuple[str, ...], force: bool, workdir: str) -> PlanSet:
    from tritondoctor.fixes import plan_all
    from tritondoctor.plan import PlanContext
    from tritondoctor.registry import run_checks

    findings = run_checks(snap)
    ctx = PlanContext(packages=packages, force=force, workdir=workdir)
    return PlanSet(findings, _per_prefix(plan_all(snap, findings, ctx)), ctx)


def _per_prefix(plans: list["FixPlan"]) -> list["FixPlan"]:
    """One plan per journal prefix: a fix that changes several places (FixSpec.split) is split."""
    from tritondoctor.fixes import spec_for

    out: list["FixPlan"] = []
    for plan in plans:
        split = spec_for(plan.id).split
        out += split(plan) if split is not None else [plan]
    return out


def applicable(plan: "FixPlan", force: bool) -> bool:
    return plan.prediction.proven or plan.prediction.deferred or force


@dataclass(frozen=True)
class Applied:
    plans: list["FixPlan"]
    journal_dir: str | None
    snap: "Snapshot"  # a fresh one when the environment changed under us, else the original


def apply_plans(out: "Console", snap: "Snapshot", plans: list["FixPlan"], packages: tuple[str, ...],
                force: bool, workdir: str) -> Applied:
    """Each prefix in turn (the environment, then each model directory): under its lock, re-plan
    if anything changed since planning, then apply through its own journal."""
    target = os.path.realpath(snap.target.prefix) if snap.target else ""
    groups: dict[str, list["FixPlan"]] = {}
    for plan in plans:
        groups.setdefault(os.path.realpath(plan.prefix) if plan.prefix else target, []).append(plan)
    done: list["FixPlan"] = []
    journal_dirs: list[str] = []
    for prefix, group in groups.items():
        applied = _apply_prefix(out, snap, prefix, group, packages, force, workdir)
        done += applied.plans
        journal_dirs += [applied.journal_dir] if applied.journal_dir else []
        snap = applied.snap if prefix == target else snap
    return Applied(done, ", ".join(journal_dirs) or None, snap)


def _apply_prefix(out: "Console", snap: "Snapshot", prefix: str, plans: list["FixPlan"], packages: tuple[str, ...],
                  force: bool, workdir: str) -> Applied:
    from tritondoctor.journal import PrefixLock
    from tritondoctor.options import CheckOptions
    from tritondoctor.snapshot import take_snapshot

    with PrefixLock(prefix) as lock:
        if lock.waited > 0.5:
            out.print(f"[dim]waited {lock.waited:.1f}s for another tritondoctor fix on {prefix}[/]")
        if _stale_reasons(plans):
            # Another run changed the environment while we planned: plan again from what is there now.
            snap = take_snapshot(python=snap.target.executable if snap.target else None,
                                 options=CheckOptions(model_repositories=snap.options.model_repositories))
            wanted = {p.id for p in plans}
            replanned = make_plans(snap, packages, force, workdir).plans
            plans = [p for p in replanned if p.id in wanted and not p.empty and applicable(p, force)
                     and os.path.realpath(p.prefix) == prefix]
            if not plans:
                out.print("[green]another tritondoctor fix already made these changes; nothing left to do[/]")
                lock.remove_if_unused()
                return Applied([], None, snap)
        journal_dir = _journaled_apply(out, lock, plans)
    return Applied(plans, journal_dir, snap)


def _journaled_apply(out: "Console", lock: Any, plans: list["FixPlan"]) -> str | None:
    from tritondoctor.fixes import spec_for
    from tritondoctor.journal import Journal
    from tritondoctor.plan import ApplyError

    journal = Journal(lock.prefix, [p.id for p in plans], " ".join(shlex.quote(a) for a in sys.argv))
    try:
        for plan in plans:
            out.print(f"[bold]applying[/] {plan.id}: {plan.title}")
            spec_for(plan.id).apply(plan, journal)
        journal.commit()
    except BaseException as exc:
        problems = journal.rollback()
        lock.remove_if_unused()
        if problems:
            raise ApplyError(f"{_reason(exc)}; rolling back failed for: {'; '.join(problems)} "
                             f"(backups in {journal.dir})") from None
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ApplyError(f"{_reason(exc)}; everything was rolled back") from None
    changed = journal.changed if os.path.isdir(journal.dir) else []
    for entry in changed:
        out.print(f"  {'created' if entry['before']['type'] == 'absent' else 'changed'} "
                  f"{os.path.join(journal.prefix, entry['path'])}")
    journal_dir = journal.dir if os.path.isdir(journal.dir) else None
    if journal_dir is None:
        lock.remove_if_unused()
    return journal_dir


def recheck(snap: "Snapshot", environ: Mapping[str, str], plans: list["FixPlan"]) -> dict[str, Any]:
    """The checks again on the snapshot derived under the environment as activated now."""
    from tritondoctor.findings import Status
    from tritondoctor.fixes import spec_for
    from tritondoctor.registry import run_checks
    from tritondoctor.snapshot import regathered

    derived = regathered(snap.derive(environ), [f for p in plans for f in spec_for(p.id).touches])
    findings = run_checks(derived)
    targeted = {i for p in plans for i in p.clears}
    statuses: dict[str, tuple[str, str]] = {}
    for check_id in sorted(targeted):
        mine = [f for f in findings if f.id == check_id]
        bad = [f for f in mine if f.status in (Status.ERROR, Status.WARN)]
        shown = bad[0] if bad else (mine[0] if mine else None)
        statuses[check_id] = ((bad[0].status.value if bad else "ok"), shown.title if shown else "skipped")
    others = [f for f in findings if f.status == Status.ERROR and f.id not in targeted]
    return {"ok": all(s == "ok" for s, _ in statuses.values()), "statuses": statuses,
            "ld_library_path": environ.get("LD_LIBRARY_PATH"), "other_errors": others}


def smoke_after_fix(python: str, environ: Mapping[str, str], repositories: tuple[str, ...] = ()) -> dict[str, Any]:
    """PyTriton's smoke test, or with --model-repository the repository's own models served."""
    if repositories:
        from tritondoctor.smoke.repository import run_repository_smoke

        repo_result = run_repository_smoke(list(repositories), python, dict(environ), None, None, 180.0)
        data = repo_result.to_json()
        data["_findings"] = list(repo_result.findings) + [f for m in repo_result.models for f in m.findings]
        return data
    from tritondoctor.smoke import run_smoke

    result = run_smoke(python, dict(environ))
    data = result.to_json()
    data["passed"] = bool(result.passed)
    data["_findings"] = list(result.findings)
    return data


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def run_fix(req: FixRequest) -> int:
    executable = choose_target(req.python)
    if req.undo:
        return run_undo(executable, req)
    snap = snapshot_for_fix(executable, req.force, req.model_repositories)
    workdir = tempfile.mkdtemp(prefix="tritondoctor-fix-")
    try:
        return _fix(req, snap, make_plans(snap, req.packages, req.force, workdir), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _fix(req: FixRequest, snap: "Snapshot", planset: PlanSet, workdir: str) -> int:
    from tritondoctor.commands.common import console
    from tritondoctor.render.plans import render_plans

    out = console(stderr=req.json_out)
    report = FixReport(target=snap.target_json(), plans=[p.to_json() for p in planset.plans],
                       notes=list(planset.ctx.notes))
    render_plans(out, snap, planset.plans, planset.ctx.notes, planset.unfixed)
    decision = _decide(out, req, planset, report)
    if not decision.to_apply:
        return _finish(req, report, decision.exit_status)
    return _apply_and_verify(out, req, snap, decision, report, workdir)


@dataclass(frozen=True)
class Decision:
    to_apply: list["FixPlan"]  # empty: nothing is applied, and the run ends with exit_status
    skipped: list["FixPlan"]  # not proven (and no --force)
    exit_status: int = EXIT_OK


def _decide(out: "Console", req: FixRequest, planset: PlanSet, report: FixReport) -> Decision:
    """What to apply, said to the user here when it is nothing."""
    actionable = planset.actionable
    left = EXIT_PROBLEMS if planset.unfixed else EXIT_OK
    # A plan left with nothing to write because it would not replace a file that is not ours (or
    # not proven for another reason): its problem stays, and the user must hear it.
    blocked = [p for p in planset.plans if p.empty and not p.prediction.proven and not p.prediction.deferred]
    for plan in blocked:
        out.print(f"[yellow]not applying {plan.id}[/]: {plan.prediction.reason or 'its prediction is not proven'}; "
                  "--force applies it anyway")
    if blocked:
        left = EXIT_PROBLEMS
    if not actionable:
        if not planset.plans:
            out.print("[green]nothing to fix[/]" if not planset.unfixed else
                      "[yellow]no automatic fix for the remaining problems[/] (see `tritondoctor check`)")
        return Decision([], [], left)
    skipped = [p for p in actionable if not applicable(p, req.force)]
    to_apply = [p for p in actionable if applicable(p, req.force)]
    report.skipped = [p.id for p in skipped]
    for plan in skipped:
        out.print(f"[yellow]not applying {plan.id}[/]: its prediction is not proven ({plan.prediction.reason}); "
                  "--force applies it anyway")
    if req.dry_run:
        out.print("[dim]--dry-run: nothing was changed[/]")
        return Decision([], skipped, EXIT_OK if to_apply and not skipped else EXIT_PROBLEMS)
    if not to_apply:
        return Decision([], skipped, EXIT_PROBLEMS)
    if not req.yes and not _confirmed(out, req, report, len(to_apply), planset):
        return Decision([], skipped, EXIT_PROBLEMS)
    return Decision(to_apply, skipped)


def _confirmed(out: "Console", req: FixRequest, report: FixReport, count: int, planset: PlanSet) -> bool:
    if not sys.stdin.isatty():
        if req.json_out:
            _print_json(report)
        raise UsageError("refusing to change the environment without confirmation: no terminal to ask on; "
                         "pass --yes (or --dry-run to only see the plan)")
    from rich.prompt import Confirm

    prefix = planset.plans[0].prefix
    if Confirm.ask(f"Apply {count} fix{'es' if count > 1 else ''} to {prefix}?", console=out, default=False):
        return True
    out.print("nothing was changed")
    return False


def _apply_and_verify(out: "Console", req: FixRequest, snap: "Snapshot", decision: Decision, report: FixReport,
                      workdir: str) -> int:
    from tritondoctor.activation import activated_environ
    from tritondoctor.journal import JournalError
    from tritondoctor.plan import ApplyError
    from tritondoctor.render.plans import render_next_steps, render_recheck

    to_apply = decision.to_apply
    try:
        applied = apply_plans(out, snap, to_apply, req.packages, req.force, workdir)
    except (ApplyError, JournalError) as exc:
        report.error = str(exc)
        if req.json_out:
            _print_json(report)
        raise CannotProceed(str(exc)) from None
    report.applied = [p.id for p in applied.plans]
    report.journal = applied.journal_dir
    environ = activated_environ(applied.snap, applied.plans or to_apply)
    result = recheck(applied.snap, environ, applied.plans or to_apply)
    render_recheck(out, result["statuses"], result["other_errors"])
    report.recheck = dict(result, statuses={k: s for k, (s, _) in result["statuses"].items()},
                          other_errors=[f.to_json() for f in result["other_errors"]])
    code = EXIT_OK if result["ok"] and not decision.skipped and not result["other_errors"] else EXIT_PROBLEMS
    if not req.no_smoke and result["ok"] and not result["other_errors"]:
        out.print("[bold]smoke test[/]: a real model through PyTriton (--no-smoke skips it)")
        smoke = smoke_after_fix(applied.snap.target.executable if applied.snap.target else "python", environ,
                                req.model_repositories)
        _render_smoke_line(out, smoke)
        report.smoke = {k: v for k, v in smoke.items() if not k.startswith("_")}
        code = code if smoke["passed"] else EXIT_PROBLEMS
    render_next_steps(out, snap, bool(applied.plans))
    return _finish(req, report, code)


def _render_smoke_line(out: "Console", smoke: dict[str, Any]) -> None:
    out.print(f"  {'[green]✓ passed[/]' if smoke['passed'] else '[red]✗ failed[/]'}")
    if not smoke["passed"]:
        for finding in smoke.get("_findings", []):
            out.print(f"    {finding.id}: {finding.title}")


def _finish(req: FixRequest, report: FixReport, code: int) -> int:
    if req.json_out:
        _print_json(report)
    return code


def _print_json(report: FixReport) -> None:
    from tritondoctor.commands.common import print_json

    print_json(report.to_json())


def run_undo(executable: str, req: FixRequest) -> int:
    """Undo the last fix of the target's environment; nothing left to undo is said, exit 0."""
    from tritondoctor.commands.common import console, print_json
    from tritondoctor.facts.target import TargetError, probe
    from tritondoctor.journal import JournalError, NothingToUndo, PrefixBusy, undo_last
    from tritondoctor.render.plans import render_undo

    if req.model_repositories:
        return _undo_models(req)
    try:
        prefix = probe(executable, os.environ, selected_by="--python" if req.python else "environment").prefix
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    try:
        result = undo_last(prefix, force=req.force)
    except NothingToUndo as exc:
        if req.json_out:
            print_json({"undone": [], "prefix": prefix, "message": str(exc)})
        else:
            console().print(f"nothing to undo: {exc}")
        return EXIT_OK
    except (PrefixBusy, JournalError) as exc:
        raise CannotProceed(str(exc)) from None
    if req.json_out:
        print_json({"undone": list(result.fixes), "prefix": prefix, "restored": list(result.restored),
                    "removed": list(result.removed), "removed_dirs": list(result.removed_dirs),
                    "kept_copies": list(result.kept_copies)})
    else:
        render_undo(console(), prefix, result)
    return EXIT_OK


def _is_base_env(snap: "Snapshot") -> bool:
    prefix = snap.target.prefix if snap.target else ""
    if os.path.isdir(os.path.join(prefix, "condabin")):
        return True
    base = snap.conda.base_prefix if snap.conda else None
    return base is not None and os.path.realpath(base) == os.path.realpath(prefix)


def _reason(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if isinstance(exc, Exception) and exc.__class__.__name__ in ("ApplyError", "JournalError") \
        else f"{exc.__class__.__name__}: {text}"


def _stale_reasons(plans: list["FixPlan"]) -> list[str]:
    """Each plan's own staleness rule (tritondoctor/fixspec.py), asked under the lock."""
    from tritondoctor.fixes import spec_for

    return [reason for plan in plans if (reason := spec_for(plan.id).stale(plan)) is not None]


def _model_dirs_with_journal(repositories: tuple[str, ...]) -> list[str]:
    from tritondoctor.journal import journals

    dirs = []
    for repository in repositories:
        for name in sorted(os.listdir(repository)):
            path = os.path.join(repository, name)
            if os.path.isdir(path) and not os.path.islink(path) and journals(path):
                dirs.append(path)
    return dirs


def _undo_models(req: FixRequest) -> int:
    """`fix --undo --model-repository DIR`: undo the last fix of each model directory that has one."""
    from tritondoctor.commands.common import console, print_json
    from tritondoctor.journal import JournalError, PrefixBusy, undo_last
    from tritondoctor.render.plans import render_undo

    undone: list[dict[str, Any]] = []
    from tritondoctor.fixes.model_stub import settle_backend_chmod

    for model_dir in _model_dirs_with_journal(req.model_repositories):
        settle_backend_chmod(model_dir)
        try:
            result = undo_last(model_dir, force=req.force)
        except (PrefixBusy, JournalError) as exc:
            raise CannotProceed(str(exc)) from None
        undone.append({"prefix": model_dir, "undone": list(result.fixes), "restored": list(result.restored),
                       "removed": list(result.removed)})
        if not req.json_out:
            render_undo(console(), model_dir, result)
    if req.json_out:
        print_json({"undone": undone, "repositories": list(req.model_repositories)})
    elif not undone:
        console().print(f"nothing to undo: no fix in the models of {', '.join(req.model_repositories)}")
    return EXIT_OK
