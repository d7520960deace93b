"""What `tritondoctor fix` shows: the plans, what was applied, the re-check, what undo did."""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, Any

from tritondoctor.hooks import FOREIGN_NOTE
from tritondoctor.render.marks import MARKS

if TYPE_CHECKING:
    from rich.console import Console


def render_plans(out: "Console", snap: Any, plans: list, notes: list[str], unfixed: list) -> None:
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
            # The user's own file at one of our paths is said plainly, not as a footnote.
            style = "yellow" if note.startswith(FOREIGN_NOTE) else "dim"
            out.print(f"   [{style}]note: {escape(note)}[/]")
    for note in notes:
        out.print(f"\n[yellow]note[/]: {escape(note)}")
    for finding in unfixed:
        hint = f" (see: {finding.fix.id})" if finding.fix else ""
        if finding.fix is not None and finding.fix.id == "env-export":
            hint = ' (no venv or conda env to hook into: eval "$(tritondoctor env)" where PyTriton runs)'
        out.print(f"[yellow]not fixed automatically[/]: {finding.id}: {escape(finding.title)}{escape(hint)}")


def render_next_steps(out: "Console", snap: Any, applied: bool) -> None:
    if not applied:
        return
    prefix = snap.target.prefix
    if snap.target.env_kind == "venv":
        out.print(f"To use it in this shell: [bold]source {shlex.quote(os.path.join(prefix, 'bin', 'activate'))}[/]; "
                  'services that activate nothing: [bold]eval "$(tritondoctor env)"[/]')
    elif snap.target.env_kind == "conda":
        out.print(f"To use it in this shell: [bold]conda deactivate && conda activate {shlex.quote(prefix)}[/]")
    out.print("Undo: [bold]tritondoctor fix --undo[/]")


def render_undo(out: "Console", prefix: str, result: Any) -> None:
    out.print(f"[bold]undone[/]: {', '.join(result.fixes) or 'fix'} in {prefix}")
    for rel in result.restored:
        out.print(f"  restored {os.path.join(prefix, rel)}")
    for rel in result.removed:
        out.print(f"  removed  {os.path.join(prefix, rel)}")
    for rel in result.removed_dirs:
        out.print(f"  removed  {os.path.join(prefix, rel)}/")
    for copy in result.kept_copies:
        out.print(f"  [yellow]kept your later version as {copy}[/]")
    out.print("Activate the environment again to drop the change from this shell.")


def render_recheck(out: "Console", statuses: dict[str, tuple[str, str]], other_errors: list[Any]) -> None:
    """statuses: check id -> (status, title)."""
    from tritondoctor.findings import Status

    out.print("[bold]check again[/] in the environment as activated now:")
    for check_id, (status, title) in sorted(statuses.items()):
        out.print(f"  {MARKS[Status(status)] if status in ('ok', 'warn', 'error', 'skip') else '?'} {check_id}: {title}")
    for finding in other_errors:
        out.print(f"  [yellow]still[/] {finding.id}: {finding.title}")
