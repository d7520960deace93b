"""Fix `model-stub`: give a Python-backend model whose execution environment's Python differs
from the stub that would serve it the stub nvidia-pytriton ships for that Python, copied to
`<model>/triton_python_backend_stub` (a stub in the model directory wins over the backend's).

Journaled with the model directory as the prefix (state in `<model>/.tritondoctor/`: Triton
ignores a model's non-numeric subdirectories), so `fix --undo --model-repository DIR` restores
each model byte for byte. Proven before anything is written: the repository facts are gathered
again for a shadow of the model directory (links to its entries) holding the copied stub, and
the model's findings must come out without a new error. When the stub would still not load (an
old libstdc++ or no libpython in the environment's lib/), nothing is planned for that model and
the advice is listed as not fixed automatically: tritondoctor never edits a user's tarball.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import tempfile
from typing import TYPE_CHECKING

from tritondoctor.findings import Finding, ModelStubNeed, Status, needs
from tritondoctor.fixspec import FixSpec, check_fresh
from tritondoctor.plan import (
    CREATE,
    REPLACE,
    ApplyError,
    Command,
    FileChange,
    FixPlan,
    PlanContext,
    Prediction,
    file_sha256,
    sha256_bytes,
)

if TYPE_CHECKING:
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

ID = "model-stub"
CHECK_ID = "model-repository"
STUB_NAME = "triton_python_backend_stub"
METHOD = ("gathered the repository facts again for the model directory with the copied stub in place "
          "and ran the model-repository check")


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """The model's findings with the copied stub in place, against those before."""

    proven: bool
    new_errors: tuple[Finding, ...]


def plan(snap: "Snapshot", findings: list[Finding], ctx: PlanContext | None = None) -> FixPlan | None:
    ctx = ctx or PlanContext()
    wanted = needs(findings, ModelStubNeed, {ID})
    if not wanted or snap.repositories is None:
        return None
    plans = [p for p in (_plan_model(snap, f, findings, ctx) for f in wanted) if p is not None]
    if not plans:
        return None
    return plans[0] if len(plans) == 1 else _merged(plans)


def split(plan: FixPlan) -> list[FixPlan]:
    """One plan per model directory (each is its own journal prefix)."""
    out = []
    for change, command in zip(plan.changes, plan.commands):
        prefix = os.path.dirname(change.path)
        out.append(dataclasses.replace(plan, prefix=prefix, title=_title(command), changes=(change,),
                                       commands=(command,)))
    return out or [plan]


def _merged(plans: list[FixPlan]) -> FixPlan:
    first = plans[0]
    return dataclasses.replace(
        first, title=f"copy the matching stub into {len(plans)} model directories",
        changes=tuple(c for p in plans for c in p.changes), commands=tuple(c for p in plans for c in p.commands),
        notes=tuple(n for p in plans for n in p.notes),
        prediction=dataclasses.replace(first.prediction, proven=all(p.prediction.proven for p in plans),
                                       details=tuple(d for p in plans for d in p.prediction.details),
                                       reason="; ".join(p.prediction.reason for p in plans if p.prediction.reason)))


def _title(command: Command) -> str:
    return f"copy {command.argv[1]} to {command.argv[2]}"


def _plan_model(snap: "Snapshot", finding: Finding, findings: list[Finding], ctx: PlanContext) -> FixPlan | None:
    need = finding.need
    assert isinstance(need, ModelStubNeed)
    dest = os.path.join(need.model_dir, STUB_NAME)
    source_sha = file_sha256(need.stub)
    if source_sha is None:
        ctx.notes.append(f"{ID}: {need.stub} is gone; reinstall nvidia-pytriton")
        return None
    before = file_sha256(dest) if os.path.lexists(dest) else None
    command = Command(("cp", need.stub, dest), f"sha256 {source_sha}")
    change = FileChange(dest, REPLACE if before else CREATE, "", before, mode=0o755,
                        block=f"the Python {need.minor} stub nvidia-pytriton ships ({need.stub}, sha256 {source_sha})",
                        description=f"model '{need.model}': its own stub for Python {need.minor}",
                        after_sha256=source_sha)
    if os.path.lexists(dest) and not _is_wheel_stub(dest, snap) and not ctx.force:
        reason = (f"{dest} is not a stub nvidia-pytriton ships (a custom build?); kept — --force replaces it, "
                  "backed up by the journal")
        return FixPlan(ID, f"model '{need.model}': keep {dest}", need.model_dir, (CHECK_ID,),
                       Prediction(False, METHOD, reason=reason), notes=(reason,))
    outcome = _predict(snap, need, findings, ctx.workdir)
    if outcome.new_errors:
        for error in outcome.new_errors:
            ctx.notes.append(_advice(need, error))
        return None
    prediction = Prediction(outcome.proven, METHOD, {CHECK_ID: "ok" if outcome.proven else "error"},
                            details=(f"model '{need.model}': the Python {need.minor} stub loads the environment's "
                                     f"libpython{need.minor}",))
    return FixPlan(ID, _title(command), need.model_dir, (CHECK_ID,), prediction, changes=(change,),
                   commands=(command,))


def _advice(need: ModelStubNeed, error: Finding) -> str:
    fix = error.fix
    how = f" ({fix.summary}: {' && '.join(fix.commands)})" if fix and fix.commands else (f" ({fix.summary})" if fix else "")
    return (f"{ID}: not fixed automatically: model '{need.model}' would still fail with the Python {need.minor} "
            f"stub: {error.title}{how}")


def _is_wheel_stub(path: str, snap: "Snapshot") -> bool:
    """The file at `path` is byte for byte one of the stubs nvidia-pytriton ships."""
    stubs = snap.repositories.backend.pytriton_stubs if snap.repositories and snap.repositories.backend else {}
    sha = file_sha256(path)
    return sha is not None and any(file_sha256(s) == sha for s in stubs.values())


def _predict(snap: "Snapshot", need: ModelStubNeed, findings: list[Finding], workdir: str) -> _Outcome:
    from tritondoctor.checks import model_repository
    from tritondoctor.repository import gather_repositories

    root = tempfile.mkdtemp(prefix="model-stub-", dir=workdir or None)
    try:
        shadow_repo = os.path.join(root, "repo")
        _shadow_model(need, shadow_repo)
        facts = gather_repositories([shadow_repo], snap.target, snap.environ, snap.options.backend_directory,
                                    cwd=snap.cwd)
        after = model_repository.run_repositories(facts)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    real_repo = os.path.dirname(need.model_dir)
    before = {f.title for f in findings if f.status == Status.ERROR}
    errors = [f for f in after if f.status == Status.ERROR]
    renamed = [dataclasses.replace(f, title=f.title.replace(shadow_repo, real_repo)) for f in errors]
    new = tuple(f for f in renamed if f.title not in before)
    mismatch_left = any(f.need is not None and isinstance(f.need, ModelStubNeed) for f in errors)
    return _Outcome(proven=not new and not mismatch_left, new_errors=new)


def _shadow_model(need: ModelStubNeed, shadow_repo: str) -> str:
    """A model directory whose entries link to the real one's, with the stub copied in."""
    shadow = os.path.join(shadow_repo, os.path.basename(need.model_dir))
    os.makedirs(shadow)
    for entry in os.listdir(need.model_dir):
        if entry not in (STUB_NAME, ".tritondoctor"):
            os.symlink(os.path.join(need.model_dir, entry), os.path.join(shadow, entry))
    shutil.copyfile(need.stub, os.path.join(shadow, STUB_NAME))
    os.chmod(os.path.join(shadow, STUB_NAME), 0o755)
    return shadow


def apply(plan: FixPlan, journal: "Journal") -> None:
    check_fresh(plan)
    for change, command in zip(plan.changes, plan.commands):
        source, dest = command.argv[1], command.argv[2]
        with open(source, "rb") as fh:
            data = fh.read()
        if sha256_bytes(data) != change.after_sha256:
            raise ApplyError(f"{source} changed since the plan was made; nothing more was written")
        if os.path.realpath(os.path.dirname(dest)) != journal.prefix:
            raise ApplyError(f"{dest}: not in the model directory {journal.prefix}")
        journal.write_file(dest, data, stat.S_IMODE(change.mode))


def settle_backend_chmod(model_dir: str) -> bool:
    """Triton's python backend chmods a model's own stub to owner-execute only (0100) every time
    it loads the model; put back the mode the fix wrote so that undo does not take the server's
    doing for a user's edit. Only when the content is still exactly what the fix wrote."""
    from tritondoctor.journal import JournalError, journals, load_manifest

    found = journals(model_dir)
    if not found:
        return False
    try:
        entries = load_manifest(found[-1])["entries"]
    except JournalError:
        return False
    path = os.path.join(model_dir, STUB_NAME)
    for entry in entries:
        after = entry.get("after") or {}
        if entry["path"] != STUB_NAME or after.get("type") != "file" or os.path.islink(path):
            continue
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            return False
        if mode == 0o100 and mode != after["mode"] and file_sha256(path) == after["sha256"]:
            os.chmod(path, after["mode"])
            return True
    return False


FIX = FixSpec(ID, plan, apply, summary="copy the stub for the model's Python into its model directory",
              touches=("repositories",), split=split)
