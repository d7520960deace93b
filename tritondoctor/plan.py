"""Fix plans: what `tritondoctor fix` would do, as data, before anything is done.

A plan is computed from the snapshot and its findings (fix modules read files to plan, they never
change one), shown to the user, serialised with `--json`, and only then applied through a
journal. Every plan carries a `Prediction`: the status the targeted findings would have in the
environment the plan produces, computed by deriving the snapshot under that environment and
running the loader checks again. A plan whose prediction is not proven is not applied without
`--force`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from tritondoctor.findings import Finding, Status, worst

if TYPE_CHECKING:
    from tritondoctor.snapshot import Snapshot

# Kinds of FileChange.
CREATE = "create"  # a new file (the path does not exist yet)
REPLACE = "replace"  # an existing file gets new content
APPEND_BLOCK = "append-block"  # a marked block added to an existing file (content holds the result)
REMOVE_BLOCK = "remove-block"  # a marked block taken out of an existing file


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str | None:
    """sha256 of a regular file's bytes (following symlinks); None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            digest = hashlib.sha256()
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
            return digest.hexdigest()
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class FileChange:
    """One file a plan writes. `content` is the file's complete new text; `block` is the part the
    plan adds (or removes), for display; `before_sha256` is what the file held when the plan was
    made (None: absent), so a stale plan is noticed under the lock instead of overwriting.
    `after_sha256` is set where `content` is not the new bytes (a binary the fix copies)."""

    path: str
    kind: str
    content: str
    before_sha256: str | None
    block: str = ""
    mode: int = 0o644
    description: str = ""
    after_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "description": self.description,
            "block": self.block or self.content,
            "sha256_before": self.before_sha256,
            "sha256_after": self.after_sha256 or sha256_bytes(self.content.encode()),
            "mode": oct(self.mode),
        }


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "description": self.description}


@dataclass(frozen=True)
class PackageInstall:
    """A conda package put into the prefix (offline with py-rattler, or through a frontend)."""

    method: str  # "rattler" (an archive, offline) or "frontend" (mamba / micromamba / conda)
    spec: str  # e.g. "libstdcxx-ng>=12"
    archives: tuple[str, ...] = ()  # for "rattler": the verified archive(s)
    sha256: tuple[str, ...] = ()  # of each archive when it was verified
    name: str = ""
    version: str = ""
    build: str = ""
    replaces: tuple[str, ...] = ()  # conda-meta records (file names) the install removes
    defines: tuple[str, ...] = ()  # the GLIBCXX / CXXABI versions its libstdc++.so.6 was read to define
    frontend: str | None = None
    pkgs_dirs: tuple[str, ...] = ()  # the conda package caches searched (a frontend downloads into one)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "spec": self.spec,
            "archives": list(self.archives),
            "sha256": list(self.sha256),
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "replaces": list(self.replaces),
            "defines": list(self.defines),
            "frontend": self.frontend,
            "pkgs_dirs": list(self.pkgs_dirs),
        }


@dataclass(frozen=True)
class Prediction:
    """The status of the targeted findings in the environment the plan produces."""

    proven: bool
    method: str  # how it was computed, in words
    statuses: Mapping[str, str] = field(default_factory=dict)  # finding id -> predicted status
    environ: Mapping[str, str | None] = field(default_factory=dict)  # variables the plan changes (None: unset)
    reason: str = ""  # why it is not proven
    details: tuple[str, ...] = ()
    # Not proven yet, but the proof runs before anything is changed (a package a frontend
    # downloads is read first, and nothing is installed unless it defines what is needed).
    deferred: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "proven": self.proven,
            "deferred": self.deferred,
            "method": self.method,
            "statuses": dict(self.statuses),
            "environ": dict(self.environ),
            "reason": self.reason,
            "details": list(self.details),
        }


@dataclass(frozen=True)
class FixPlan:
    id: str
    title: str
    prefix: str  # the environment the plan changes: where its lock and journal live
    clears: tuple[str, ...]  # finding ids it is meant to turn ok
    prediction: Prediction
    changes: tuple[FileChange, ...] = ()
    commands: tuple[Command, ...] = ()
    install: PackageInstall | None = None
    notes: tuple[str, ...] = ()
    # Directories the plan puts first on LD_LIBRARY_PATH (hooks), in order.
    dirs: tuple[str, ...] = ()
    # Directory -> directory holding the files an install would put there (prediction only).
    overlays: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.commands and self.install is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "prefix": self.prefix,
            "clears": list(self.clears),
            "dirs": list(self.dirs),
            "changes": [c.to_json() for c in self.changes],
            "commands": [c.to_json() for c in self.commands],
            "install": self.install.to_json() if self.install else None,
            "prediction": self.prediction.to_json(),
            "notes": list(self.notes),
        }


class PlanError(Exception):
    """A fix cannot be planned for a reason the user must hear (one line): bad --package, ..."""


class ApplyError(Exception):
    """Applying a plan failed; the journal rolls back what was done. One line for the user."""


@dataclass
class PlanContext:
    """What planning needs beyond the snapshot and findings, and what it learns on the way."""

    packages: tuple[str, ...] = ()  # --package archives
    force: bool = False
    workdir: str = ""  # a temporary directory for extracted archives (the caller removes it)
    previous: list["FixPlan"] = field(default_factory=list)  # plans made before this one, in order
    notes: list[str] = field(default_factory=list)  # problems no plan can fix, for display

    def overlays(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for plan in self.previous:
            out.update(plan.overlays)
        return out


# ---------------------------------------------------------------------------------------------
# Prediction: derive the snapshot under the environment a plan produces, run the checks again
# ---------------------------------------------------------------------------------------------


def split_path(value: str | None) -> list[str]:
    return value.split(":") if value else []


def prepend_dirs(value: str | None, dirs: Iterable[str]) -> str:
    """`dirs` first, then the old value (no empty entry is introduced: "" and unset add nothing)."""
    head = ":".join(dirs)
    return f"{head}:{value}" if value else head


def with_overlays(value: str | None, overlays: Mapping[str, str]) -> str | None:
    """Model files an install would add to a directory: before every LD_LIBRARY_PATH entry naming
    an overlaid directory, the directory holding those files is searched first."""
    if not value or not overlays:
        return value
    real = {os.path.realpath(k): v for k, v in overlays.items()}
    out: list[str] = []
    for entry in value.split(":"):
        extra = real.get(os.path.realpath(entry)) if entry else None
        if extra:
            out.append(extra)
        out.append(entry)
    return ":".join(out)


def statuses_of(findings: list[Finding], ids: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for check_id in ids:
        mine = [f for f in findings if f.id == check_id]
        out[check_id] = worst(mine).value if mine else Status.SKIP.value
    return out


def errors_of(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.id, f.title) for f in findings if f.status == Status.ERROR}


def predict(
    snap: "Snapshot",
    environ: Mapping[str, str],
    targeted: Iterable[str],
    method: str,
    before: list[Finding] | None = None,
) -> tuple[Prediction, "Snapshot", list[Finding]]:
    """Derive `snap` under `environ`, re-run the loader checks; proven when every targeted check
    comes out ok and no loader check gains an error it did not have."""
    from tritondoctor.registry import loader_check_ids, run_checks

    targeted = tuple(targeted)
    derived = snap.derive(environ)
    findings = run_checks(derived, only=set(loader_check_ids()) | set(targeted))
    statuses = statuses_of(findings, targeted)
    bad = {k: v for k, v in statuses.items() if v not in (Status.OK.value,)}
    old_errors = errors_of(before) if before is not None else set()
    new_errors = sorted(title for (fid, title) in errors_of(findings) - old_errors if fid not in targeted)
    changed = {k: environ.get(k) for k in ("LD_LIBRARY_PATH",) if environ.get(k) != snap.environ.get(k)}
    details = tuple(f"{f.id}: {f.status.value}: {f.title}" for f in findings if f.id in targeted or f.status == Status.ERROR)
    if bad or new_errors:
        reasons = [f"{k} would be {v}" for k, v in bad.items()] + [f"new error: {t}" for t in new_errors]
        return Prediction(False, method, statuses, changed, reason="; ".join(reasons), details=details), derived, findings
    return Prediction(True, method, statuses, changed, details=details), derived, findings


def unproven(reason: str, method: str = "not computed", targeted: Iterable[str] = ()) -> Prediction:
    return Prediction(False, method, {t: "unknown" for t in targeted}, reason=reason)
