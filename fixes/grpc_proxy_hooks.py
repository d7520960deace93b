"""Fix `grpc-proxy-hooks`: the environment's activation exports no_grpc_proxy=localhost,127.0.0.1
(catalog row 25), beside the LD_LIBRARY_PATH hooks and in the same way: conda
`etc/conda/activate.d` + `deactivate.d` scripts, or marked blocks in a venv's `bin/activate`.

Activation remembers no_grpc_proxy exactly (unset stays unset) and puts the loopback names in
front of what gRPC would otherwise read (no_grpc_proxy, else no_proxy: gRPC reads only the first
one that is set, so no_proxy's own entries are carried over). Deactivation restores it.
sh/bash/zsh only; fish users export it themselves (the finding says how).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from tritondoctor import hooks
from tritondoctor.checks import grpc_proxy
from tritondoctor.findings import Status
from tritondoctor.fixes import _pathorder, apply_changes
from tritondoctor.fixspec import FixSpec
from tritondoctor.plan import (
    APPEND_BLOCK,
    CREATE,
    REPLACE,
    FileChange,
    FixPlan,
    PlanContext,
    file_sha256,
    predict,
    sha256_bytes,
)

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

ID = "grpc-proxy-hooks"
NAME = "tritondoctor-grpc-proxy.sh"
VAR = "TRITONDOCTOR_SAVED_NO_GRPC_PROXY"
VALUE = "localhost,127.0.0.1"
BEGIN = "# >>> tritondoctor: no_grpc_proxy >>>"
END = "# <<< tritondoctor: no_grpc_proxy <<<"


def sh_apply(indent: str = "") -> str:
    lines = [
        f'if [ -z "${{{VAR}+x}}" ]; then',
        '    if [ -n "${no_grpc_proxy+x}" ]; then',
        f'        {VAR}="set:${{no_grpc_proxy}}"',
        "    else",
        f"        {VAR}=unset",
        "    fi",
        f"    export {VAR}",
        '    _tdx_base="${no_grpc_proxy-${no_proxy-}}"',
        f'    no_grpc_proxy="{VALUE}${{_tdx_base:+,${{_tdx_base}}}}"',
        "    export no_grpc_proxy",
        "    unset _tdx_base",
        "fi",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def sh_restore(indent: str = "") -> str:
    lines = [
        f'if [ -n "${{{VAR}+x}}" ]; then',
        f'    case "${{{VAR}}}" in',
        "        unset) unset no_grpc_proxy ;;",
        f'        *) no_grpc_proxy="${{{VAR}#set:}}"; export no_grpc_proxy ;;',
        "    esac",
        f"    unset {VAR}",
        "fi",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


_HEADER = ("# Written by `tritondoctor fix` (fix id grpc-proxy-hooks) for PyTriton: {what}\n"
           "# gRPC sends even localhost calls to http_proxy/https_proxy without this exemption.\n"
           "# Undo with `tritondoctor fix --undo` (or delete this file and its {twin} twin).\n")


def conda_text(phase: str) -> str:
    if phase == "activate":
        return _HEADER.format(what=f"exports no_grpc_proxy={VALUE},...", twin="deactivate.d") + sh_apply()
    return _HEADER.format(what="restores no_grpc_proxy as it was", twin="activate.d") + sh_restore()


def _block(body: str, indent: str) -> str:
    return (f"{indent}{BEGIN}\n{indent}# Written by `tritondoctor fix` (fix id grpc-proxy-hooks); undo with\n"
            f"{indent}# `tritondoctor fix --undo` or delete this block.\n{body}{indent}{END}\n")


def venv_text(original: str) -> str | None:
    """bin/activate with a restore block at the top of `deactivate` and an apply block at the end;
    None when there is no `deactivate () {` line to hook into. Raises HookError for a block of
    ours without its end line."""
    text = hooks.strip_blocks(original, BEGIN, END)
    match = hooks.SH_DEACTIVATE.search(text)
    if match is None:
        return None
    return hooks.insert_blocks(text, match.end(), _block(sh_restore("    "), "    "), _block(sh_apply(), ""))


def _current(path: str, ctx: PlanContext) -> tuple[str | None, str | None]:
    """(text, sha256) the file will hold when this plan applies: an earlier plan of the same run
    that rewrites it (venv-hooks' bin/activate) is applied first."""
    for plan in reversed(ctx.previous):
        for change in plan.changes:
            if change.path == path:
                return change.content, sha256_bytes(change.content.encode())
    if not os.path.isfile(path):
        return None, None
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read(), file_sha256(path)


def _changes(snap: "Snapshot", ctx: PlanContext) -> list[FileChange] | None:
    prefix = snap.target.prefix if snap.target else ""
    out: list[FileChange] = []
    if snap.target is not None and snap.target.env_kind == "conda":
        for phase in ("activate", "deactivate"):
            path = os.path.join(prefix, "etc", "conda", f"{phase}.d", NAME)
            text, sha = _current(path, ctx)
            wanted = conda_text(phase)
            if text != wanted:
                out.append(FileChange(path, CREATE if text is None else REPLACE, wanted, sha,
                                      description=f"{phase} hook (sh/bash/zsh): "
                                      + ("exports no_grpc_proxy" if phase == "activate" else "restores no_grpc_proxy")))
        return out
    path = os.path.join(prefix, "bin", "activate")
    text, sha = _current(path, ctx)
    new = venv_text(text) if text is not None else None
    if new is None:
        return None
    if new != text:
        out.append(FileChange(path, APPEND_BLOCK, new, sha, block=_block(sh_apply(), ""),
                              description="marked blocks in activate (sh/bash/zsh): export on activate, restore in "
                                          "deactivate"))
    return out


def plan(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> FixPlan | None:
    ctx = ctx or PlanContext()
    target = snap.target
    mine = [f for f in findings if f.id == grpc_proxy.ID and f.status in (Status.ERROR, Status.WARN)]
    if target is None or target.env_kind not in ("conda", "venv") or not mine:
        return None
    try:
        changes = _changes(snap, ctx)
    except hooks.HookError as exc:
        ctx.notes.append(f"{ID}: {target.prefix}/bin/activate: {exc}")
        return None
    if changes is None:
        ctx.notes.append(f"{ID}: {target.prefix}/bin/activate has no `deactivate () {{` to hook into; "
                         f"{grpc_proxy.EXPORT} where PyTriton runs")
        return None
    base = snap.environ.get("no_grpc_proxy", snap.environ.get("no_proxy"))
    environ = dict(snap.environ, no_grpc_proxy=VALUE + (f",{base}" if base else ""))
    prediction, _, _ = predict(snap, environ, [grpc_proxy.ID], "derived the snapshot with the exported no_grpc_proxy "
                               "and ran grpc-proxy again", before=findings)
    prediction = replace(prediction, environ={"no_grpc_proxy": environ["no_grpc_proxy"]})
    guarded = _pathorder.guard_foreign(changes, ctx.force)
    if guarded.foreign and not ctx.force:
        prediction = _pathorder.not_applicable(prediction, guarded.foreign)
    changes = guarded.changes
    notes = ["fish: set -gx no_grpc_proxy localhost,127.0.0.1 in your fish config (no fish hook is written)"]
    notes += guarded.notes
    if not changes and not guarded.foreign:
        notes.append("the hook is already in place: activate the environment again to pick it up")
    return FixPlan(id=ID, title=f"the environment's activation exports no_grpc_proxy={VALUE}", prefix=target.prefix,
                   clears=(grpc_proxy.ID,), prediction=prediction, changes=tuple(changes), notes=tuple(notes))


def apply(plan: FixPlan, journal: "Journal") -> None:
    apply_changes(plan, journal)


FIX = FixSpec(ID, plan, apply,
              summary="the activation hooks export no_grpc_proxy=localhost,127.0.0.1")
