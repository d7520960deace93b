"""`tritondoctor fix` and `tritondoctor env`: plain functions the CLI registers.

    fix_command(python, yes, dry_run, json_out, undo, force, package, no_smoke) -> exit code
    env_command(python, shell) -> exit code

fix: snapshot -> checks -> plans (each with its proven prediction) -> shown -> confirmed (--yes;
no terminal and no --yes: refused, exit 2) -> applied under the environment's lock through a
journal (rolled back on failure) -> checks again in a really activated shell -> smoke test.

Exit codes: 0 fixed, verified, and no error left (or nothing to fix; --dry-run: every plan can be
applied); 1 an error remains (one no plan addresses included), a plan was not proven, applying
failed and was rolled back, another fix holds the environment, or nothing to undo; 2 bad usage,
a rejected --package, or no terminal to confirm on without --yes (one line, no traceback).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Mapping

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class _Usage(Exception):
    pass


def _error(message: str) -> int:
    print(f"tritondoctor: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _console(stderr: bool = False):  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


# ---------------------------------------------------------------------------------------------
# fix
# ---------------------------------------------------------------------------------------------


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

    @classmethod
    def from_options(cls, **kw: Any) -> "FixRequest":
        return cls(**kw)


def run_fix(req: FixRequest) -> int:
    return fix_command(req.python, req.yes, req.dry_run, req.json_out, req.undo, req.force, list(req.packages),
                       req.no_smoke)


def fix_command(
    python: str | None,
    yes: bool,
    dry_run: bool,
    json_out: bool,
    undo: bool,
    force: bool,
    package: list[str],
    no_smoke: bool,
) -> int:
    from tritondoctor.facts.target import TargetError
    from tritondoctor.journal import JournalError, NothingToUndo, PrefixBusy
    from tritondoctor.plan import ApplyError, PlanError

    try:
        if undo:
            if dry_run or package:
                raise _Usage("--undo takes no --dry-run or --package")
            return _undo(python, force, json_out)
        for path in package:
            if not os.path.isfile(path):
                raise _Usage(f"--package {path}: no such file")
        return _fix(python, yes, dry_run, json_out, force, tuple(os.path.abspath(p) for p in package), no_smoke)
    except (_Usage, TargetError, PlanError) as exc:
        return _error(str(exc))
    except NothingToUndo as exc:
        print(f"tritondoctor: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (PrefixBusy, JournalError, ApplyError) as exc:
        print(f"tritondoctor: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS


def _target_prefix(python: str | None) -> str:
    from tritondoctor.facts.target import choose_interpreter, probe

    executable, why = choose_interpreter(os.environ, python)
    return probe(executable, os.environ, selected_by=why).prefix


def _undo(python: str | None, force: bool, json_out: bool) -> int:
    from tritondoctor.journal import undo_last

    prefix = _target_prefix(python)
    result = undo_last(prefix, force=force)
    if json_out:
        print(json.dumps({"undone": result.fixes, "prefix": prefix, "restored": result.restored,
                          "removed": result.removed, "removed_dirs": result.removed_dirs,
                          "kept_copies": result.kept_copies}, indent=2))
        return EXIT_OK
    console = _console()
    console.print(f"[bold]undone[/]: {', '.join(result.fixes) or 'fix'} in {prefix}")
    for rel in result.restored:
        console.print(f"  restored {os.path.join(prefix, rel)}")
    for rel in result.removed:
        console.print(f"  removed  {os.path.join(prefix, rel)}")
    for rel in result.removed_dirs:
        console.print(f"  removed  {os.path.join(prefix, rel)}/")
    for copy in result.kept_copies:
        console.print(f"  [yellow]kept your later version as {copy}[/]")
    console.print("Activate the environment again to drop the change from this shell.")
    return EXIT_OK


def _is_base_env(snap: Any) -> bool:
    prefix = snap.target.prefix
    if os.path.isdir(os.path.join(prefix, "condabin")):
        return True
    base = snap.conda.base_prefix if snap.conda else None
    return base is not None and os.path.realpath(base) == os.path.realpath(prefix)


def _plans(snap: Any, findings: list, packages: tuple[str, ...], force: bool, workdir: str):  # type: ignore[no-untyped-def]
    from tritondoctor.fixes import plan_all
    from tritondoctor.plan import PlanContext

    ctx = PlanContext(packages=packages, force=force, workdir=workdir)
    return plan_all(snap, findings, ctx), ctx


def _fix(python: str | None, yes: bool, dry_run: bool, json_out: bool, force: bool,
         packages: tuple[str, ...], no_smoke: bool) -> int:
    from tritondoctor.registry import run_checks
    from tritondoctor.snapshot import take_snapshot

    snap = take_snapshot(python=python)
    if snap.target is None:
        raise _Usage(snap.target_error or "no Python found: activate your environment or pass --python PATH")
    prefix = snap.target.prefix
    if snap.target.env_kind == "conda" and _is_base_env(snap) and not force:
        raise _Usage(f"{prefix} is the conda base environment: tritondoctor changes it only with --force "
                     "(better: create an environment for PyTriton)")
    active = os.environ.get("CONDA_PREFIX")
    if snap.target.env_kind == "conda" and not (active and os.path.realpath(active) == os.path.realpath(prefix)):
        # Not the active env (--python): plan for the environment `conda activate` would give it,
        # its activate.d scripts included, since that is where PyTriton will run.
        activated = activated_environ(snap, [])
        if activated != dict(snap.environ):
            snap = snap.derive(activated)
    findings = run_checks(snap)
    workdir = tempfile.mkdtemp(prefix="tritondoctor-fix-")
    try:
        plans, ctx = _plans(snap, findings, packages, force, workdir)
        return _run(snap, findings, plans, ctx, yes, dry_run, json_out, force, packages, no_smoke, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _applicable(plan: Any, force: bool) -> bool:
    return plan.prediction.proven or plan.prediction.deferred or force


def _run(snap: Any, findings: list, plans: list, ctx: Any, yes: bool, dry_run: bool, json_out: bool,
         force: bool, packages: tuple[str, ...], no_smoke: bool, workdir: str) -> int:
    from tritondoctor.findings import Status

    prefix = snap.target.prefix
    out = _console(stderr=json_out)
    report: dict[str, Any] = {"target": snap.target_json(), "plans": [p.to_json() for p in plans],
                              "notes": list(ctx.notes), "applied": [], "skipped": [], "journal": None,
                              "recheck": None, "smoke": None, "error": None}
    actionable = [p for p in plans if not p.empty]
    unfixed = [f for f in findings if f.status == Status.ERROR and not any(f.id in p.clears for p in plans)]
    _render_plans(out, snap, plans, ctx.notes, unfixed)
    if not actionable:
        if json_out:
            print(json.dumps(report, indent=2))
        if plans:  # hooks already in place
            return EXIT_OK if not unfixed else EXIT_PROBLEMS
        out.print("[green]nothing to fix[/]" if not unfixed else
                  "[yellow]no automatic fix for the remaining problems[/] (see `tritondoctor check`)")
        return EXIT_OK if not unfixed else EXIT_PROBLEMS
    skipped = [p for p in actionable if not _applicable(p, force)]
    to_apply = [p for p in actionable if _applicable(p, force)]
    report["skipped"] = [p.id for p in skipped]
    for plan in skipped:
        out.print(f"[yellow]not applying {plan.id}[/]: its prediction is not proven ({plan.prediction.reason}); "
                  "--force applies it anyway")
    if dry_run:
        if json_out:
            print(json.dumps(report, indent=2))
        out.print("[dim]--dry-run: nothing was changed[/]")
        return EXIT_OK if to_apply and not skipped else EXIT_PROBLEMS
    if not to_apply:
        if json_out:
            print(json.dumps(report, indent=2))
        return EXIT_PROBLEMS
    if not yes:
        if not sys.stdin.isatty():
            if json_out:
                print(json.dumps(report, indent=2))
            print("tritondoctor: error: refusing to change the environment without confirmation: no terminal to ask "
                  "on; pass --yes (or --dry-run to only see the plan)", file=sys.stderr)
            return EXIT_USAGE
        from rich.prompt import Confirm

        if not Confirm.ask(f"Apply {len(to_apply)} fix{'es' if len(to_apply) > 1 else ''} to {prefix}?",
                           console=out, default=False):
            out.print("nothing was changed")
            return EXIT_PROBLEMS
    from tritondoctor.journal import JournalError
    from tritondoctor.plan import ApplyError

    try:
        applied, journal_dir, fresh_snap = _apply(out, snap, to_apply, packages, force, workdir)
    except (ApplyError, JournalError) as exc:
        report["error"] = str(exc)
        if json_out:
            print(json.dumps(report, indent=2))
        print(f"tritondoctor: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    report["applied"] = [p.id for p in applied]
    report["journal"] = journal_dir
    code = EXIT_OK
    environ = activated_environ(fresh_snap or snap, applied or to_apply)
    recheck = _recheck(out, snap, environ, applied or to_apply)
    report["recheck"] = recheck
    if not recheck["ok"] or skipped or recheck["other_errors"]:
        code = EXIT_PROBLEMS  # something is still wrong: what fix did not touch is listed above
    if not no_smoke and recheck["ok"] and not recheck["other_errors"]:
        smoke = _smoke(out, snap.target.executable, environ)
        report["smoke"] = smoke
        if smoke is not None and not smoke.get("passed"):
            code = EXIT_PROBLEMS
    _next_steps(out, snap, bool(applied))
    if json_out:
        print(json.dumps(report, indent=2))
    return code


def _apply(out: Any, snap: Any, plans: list, packages: tuple[str, ...], force: bool,
           workdir: str) -> tuple[list, str | None, Any]:
    """Under the lock: re-plan if anything changed since planning, then apply through a journal."""
    from tritondoctor.fixes import check_fresh, module_for
    from tritondoctor.journal import Journal, PrefixLock
    from tritondoctor.plan import ApplyError
    from tritondoctor.registry import run_checks
    from tritondoctor.snapshot import take_snapshot

    prefix = snap.target.prefix
    fresh_snap = None
    with PrefixLock(prefix) as lock:
        if lock.waited > 0.5:
            out.print(f"[dim]waited {lock.waited:.1f}s for another tritondoctor fix on {prefix}[/]")
        if not _still_fresh(plans, check_fresh):
            # Another run changed the environment while we planned: plan again from what is there now.
            fresh_snap = take_snapshot(python=snap.target.executable)
            replanned, _ = _plans(fresh_snap, run_checks(fresh_snap), packages, force, workdir)
            wanted = {p.id for p in plans}
            plans = [p for p in replanned if p.id in wanted and not p.empty and _applicable(p, force)]
            if not plans:
                out.print("[green]another tritondoctor fix already made these changes; nothing left to do[/]")
                lock.remove_if_unused()
                return [], None, fresh_snap
        journal = Journal(prefix, [p.id for p in plans], " ".join(shlex.quote(a) for a in sys.argv))
        try:
            for plan in plans:
                out.print(f"[bold]applying[/] {plan.id}: {plan.title}")
                module_for(plan.id).apply(plan, journal)
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
    return plans, journal_dir, fresh_snap


def _reason(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if isinstance(exc, Exception) and exc.__class__.__name__ in ("ApplyError", "JournalError") \
        else f"{exc.__class__.__name__}: {text}"


def _still_fresh(plans: list, check: Any) -> bool:
    for plan in plans:
        try:
            check(plan)
        except Exception:  # noqa: BLE001
            return False
        if plan.install is not None:
            meta = os.path.join(plan.prefix, "conda-meta")
            if any(not os.path.exists(os.path.join(meta, r)) for r in plan.install.replaces):
                return False
    return True


# ---------------------------------------------------------------------------------------------
# The environment after the fix: a real activation in a shell
# ---------------------------------------------------------------------------------------------


def _run_env0(script: str, environ: Mapping[str, str]) -> dict[str, str] | None:
    shell = shutil.which("bash") or shutil.which("sh")
    if shell is None:
        return None
    try:
        proc = subprocess.run([shell, "-c", script], env=dict(environ), capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    out: dict[str, str] = {}
    for item in proc.stdout.split(b"\0"):
        if item and b"=" in item:
            key, _, value = item.partition(b"=")
            out[key.decode(errors="surrogateescape")] = value.decode(errors="surrogateescape")
    return out


def activated_environ(snap: Any, plans: list) -> dict[str, str]:
    """The environment a user gets by activating the target environment now (after the fix): its
    activation really run in bash, starting from the current environment. Falls back to the
    plans' model (their directories put first) when no shell can be run."""
    from tritondoctor.plan import prepend_dirs

    environ = dict(os.environ)
    target = snap.target
    prefix = target.prefix
    q = shlex.quote
    if target.env_kind == "venv":
        result = _run_env0(f". {q(os.path.join(prefix, 'bin', 'activate'))} && env -0",
                           dict(environ, VIRTUAL_ENV_DISABLE_PROMPT="1"))
    elif target.env_kind == "conda":
        active = environ.get("CONDA_PREFIX")
        scripts: list[str] = []
        if active and os.path.isdir(os.path.join(active, "etc", "conda", "deactivate.d")):
            directory = os.path.join(active, "etc", "conda", "deactivate.d")
            scripts += sorted((os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".sh")), reverse=True)
        activate_d = os.path.join(prefix, "etc", "conda", "activate.d")
        if os.path.isdir(activate_d):
            scripts += sorted(os.path.join(activate_d, n) for n in os.listdir(activate_d) if n.endswith(".sh"))
        env = dict(environ)
        if not active or os.path.realpath(active) != os.path.realpath(prefix):
            shlvl = int(environ.get("CONDA_SHLVL", "0") or 0) if (environ.get("CONDA_SHLVL", "0") or "0").isdigit() else 0
            env.update(CONDA_PREFIX=prefix, CONDA_SHLVL=str(max(shlvl, 1)), CONDA_DEFAULT_ENV=prefix,
                       PATH=f"{os.path.join(prefix, 'bin')}:{environ.get('PATH', '')}")
        result = _run_env0("".join(f". {q(s)}\n" for s in scripts) + "env -0", env)
    else:
        result = None
    if result is not None:
        return result
    dirs = [d for p in plans for d in p.dirs]
    if dirs:
        environ["LD_LIBRARY_PATH"] = prepend_dirs(environ.get("LD_LIBRARY_PATH"), dirs)
    return environ


def _recheck(out: Any, snap: Any, environ: Mapping[str, str], plans: list) -> dict[str, Any]:
    from tritondoctor.findings import Status
    from tritondoctor.registry import run_checks
    from tritondoctor.snapshot import take_snapshot

    after_snap = take_snapshot(python=snap.target.executable, environ=environ, options=snap.options)
    findings = run_checks(after_snap)
    targeted = {i for p in plans for i in p.clears}
    results = {}
    ok = True
    out.print("[bold]check again[/] in the environment as activated now:")
    for check_id in sorted(targeted):
        mine = [f for f in findings if f.id == check_id]
        bad = [f for f in mine if f.status in (Status.ERROR, Status.WARN)]
        results[check_id] = "ok" if not bad else bad[0].status.value
        ok = ok and not bad
        mark = "[green]✓[/]" if not bad else "[red]✗[/]"
        out.print(f"  {mark} {check_id}: {mine[0].title if mine and not bad else (bad[0].title if bad else 'skipped')}")
    errors = [f for f in findings if f.status == Status.ERROR and f.id not in targeted]
    for f in errors:
        out.print(f"  [yellow]still[/] {f.id}: {f.title}")
    return {"ok": ok, "statuses": results, "ld_library_path": environ.get("LD_LIBRARY_PATH"),
            "other_errors": [f.to_json() for f in errors]}


def _smoke(out: Any, python: str, environ: Mapping[str, str]) -> dict[str, Any] | None:
    try:
        from tritondoctor.smoke import run_smoke
    except ImportError:
        return None
    out.print("[bold]smoke test[/]: a real model through PyTriton (--no-smoke skips it)")
    result = run_smoke(python, dict(environ))
    passed = bool(getattr(result, "passed", False))
    try:
        data = result.to_json()
    except Exception:  # noqa: BLE001
        data = {}
    data["passed"] = passed
    out.print(f"  {'[green]✓ passed[/]' if passed else '[red]✗ failed[/]'}")
    if not passed:
        for finding in getattr(result, "findings", []) or []:
            out.print(f"    {finding.id}: {finding.title}")
    return data


def _next_steps(out: Any, snap: Any, applied: bool) -> None:
    if not applied:
        return
    prefix = snap.target.prefix
    if snap.target.env_kind == "venv":
        out.print(f"To use it in this shell: [bold]source {shlex.quote(os.path.join(prefix, 'bin', 'activate'))}[/]; "
                  'services that activate nothing: [bold]eval "$(tritondoctor env)"[/]')
    elif snap.target.env_kind == "conda":
        out.print(f"To use it in this shell: [bold]conda deactivate && conda activate {shlex.quote(prefix)}[/]")
    out.print("Undo: [bold]tritondoctor fix --undo[/]")


# ---------------------------------------------------------------------------------------------
# Rendering plans
# ---------------------------------------------------------------------------------------------


def _render_plans(out: Any, snap: Any, plans: list, notes: list[str], unfixed: list) -> None:
    from rich.markup import escape

    target = snap.target
    out.print(f"tritondoctor fix · {escape(target.prefix)} ({target.env_kind}, Python {target.version_string})")
    for n, plan in enumerate(plans, 1):
        pred = plan.prediction
        status = ("[green]proven[/]" if pred.proven else "[cyan]checked before install[/]" if pred.deferred
                  else "[red]not proven[/]")
        out.print(f"\n[bold]{n}. {plan.id}[/]: {escape(plan.title)}")
        if plan.clears:
            out.print(f"   clears: {', '.join(plan.clears)}")
        out.print(f"   prediction: {status}: " + ", ".join(f"{k} → {v}" for k, v in pred.statuses.items()))
        out.print(f"   [dim]{escape(pred.method)}[/]")
        if pred.reason:
            out.print(f"   [yellow]{escape(pred.reason)}[/]")
        for key, value in pred.environ.items():
            out.print(f"   {key} → {escape(repr(value) if value is None else value)}")
        for change in plan.changes:
            out.print(f"   {'+' if change.kind == 'create' else '~'} {escape(change.path)}  [dim]{escape(change.description)}[/]")
            lines = (change.block or change.content).splitlines()
            out.print(f"       [dim]{len(lines)} lines ({'marked blocks' if change.kind == 'append-block' else 'new file'}; "
                      f"--json or --dry-run --json shows them)[/]")
        if plan.install is not None:
            inst = plan.install
            what = f"{inst.name}-{inst.version}-{inst.build}" if inst.name else inst.spec
            out.print(f"   install {escape(what)} ({inst.method}); replaces {', '.join(inst.replaces) or 'nothing'}")
        for command in plan.commands:
            out.print(f"   $ {escape(' '.join(shlex.quote(a) for a in command.argv))}  [dim]{escape(command.description)}[/]")
        for note in plan.notes:
            out.print(f"   [dim]note: {escape(note)}[/]")
    for note in notes:
        out.print(f"\n[yellow]note[/]: {escape(note)}")
    for finding in unfixed:
        hint = f" (see: {finding.fix.id})" if finding.fix else ""
        if finding.fix is not None and finding.fix.id == "env-export":
            hint = ' (no venv or conda env to hook into: eval "$(tritondoctor env)" where PyTriton runs)'
        out.print(f"[yellow]not fixed automatically[/]: {finding.id}: {escape(finding.title)}{escape(hint)}")


# ---------------------------------------------------------------------------------------------
# env
# ---------------------------------------------------------------------------------------------


def env_command(python: str | None, shell: str) -> int:
    from tritondoctor.facts.target import TargetError
    from tritondoctor.fixes import _pathorder
    from tritondoctor.hooks import HookError, conda_script_path, env_exports, parse_dirs
    from tritondoctor.registry import loader_check_ids
    from tritondoctor.registry import run_checks
    from tritondoctor.snapshot import take_snapshot

    kind = {"sh": "sh", "bash": "sh", "zsh": "sh", "dash": "sh", "fish": "fish"}.get(shell)
    if kind is None:
        return _error(f"--shell {shell!r}: expected sh, bash, zsh or fish")
    try:
        snap = take_snapshot(python=python)
    except TargetError as exc:
        return _error(str(exc))
    if snap.target is None:
        return _error(snap.target_error or "no Python found: activate your environment or pass --python PATH")
    prefix = snap.target.prefix
    hook_file = (os.path.join(prefix, "bin", "activate") if snap.target.env_kind == "venv"
                 else conda_script_path(prefix, "activate", "sh"))
    existing = None
    if os.path.isfile(hook_file):
        with open(hook_file, encoding="utf-8", errors="replace") as fh:
            existing = parse_dirs(fh.read())
    findings = run_checks(snap, only=set(loader_check_ids()))
    base, base_findings, base_env = _pathorder.planning_base(snap, findings, prefix, existing)
    need = _pathorder.plan_dirs(base, base_findings, base_env)
    for problem in need.problems:
        print(f"tritondoctor: {problem}", file=sys.stderr)
    if not need.dirs:
        comment = "#" if kind == "sh" else "#"
        print(f"{comment} tritondoctor: nothing to export: PyTriton's libraries resolve in this environment")
        return EXIT_OK if not need.problems else EXIT_PROBLEMS
    if need.prediction is None or not need.prediction.proven:
        reason = need.prediction.reason if need.prediction else "unknown"
        print(f"tritondoctor: no proven LD_LIBRARY_PATH for this environment ({reason})", file=sys.stderr)
        return EXIT_PROBLEMS
    try:
        text = env_exports(need.dirs, snap.environ, kind)
    except HookError as exc:
        print(f"tritondoctor: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"# tritondoctor: {', '.join(need.dirs)} first on LD_LIBRARY_PATH (clears {', '.join(need.clears)})")
    sys.stdout.write(text)
    return EXIT_OK
