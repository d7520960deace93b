"""The result types every check returns and every report, fix and smoke test consumes.

Field names and ids are part of the `--json` contract: add, never rename.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    ERROR = "error"
    SKIP = "skip"

    @property
    def rank(self) -> int:
        return {"skip": 0, "ok": 1, "warn": 2, "error": 3}[self.value]


@dataclass(frozen=True)
class FixHint:
    """What to do about a finding: a `tritondoctor fix` id and/or the exact commands to run."""

    id: str
    summary: str
    commands: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "summary": self.summary, "commands": list(self.commands)}


@dataclass(frozen=True)
class LoaderPathNeed:
    """What a finding asks of a fix that edits the loader path: `libdir` first on it."""

    libdir: str
    needed: str  # the file that must come from there (e.g. libpython3.11.so.1.0)


@dataclass(frozen=True)
class SymbolVersionNeed:
    """What a finding asks of a fix that provides a newer library: these versions, from `soname`."""

    soname: str
    missing: tuple[str, ...]
    provider: str  # the file that lacks them now


@dataclass(frozen=True)
class ModelStubNeed:
    """What a finding asks of a fix that gives one model its own stub: `stub` (built for Python
    `minor`) copied to `model_dir`/triton_python_backend_stub."""

    model_dir: str
    minor: str
    stub: str
    model: str = ""  # the model's name, for display


@dataclass(frozen=True)
class Finding:
    """One line of the report. `id` is the check id (stable); several findings may share one id."""

    id: str
    status: Status
    title: str
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: FixHint | None = None
    area: str = ""
    need: "LoaderPathNeed | SymbolVersionNeed | ModelStubNeed | None" = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "title": self.title,
            "detail": self.detail,
            "evidence": self.evidence,
            "fix": self.fix.to_json() if self.fix else None,
        }


def needs(findings: "list[Finding]", kind: type, fix_ids: "set[str] | frozenset[str]") -> "list[Finding]":
    """The findings a fix with one of `fix_ids` can act on: a problem that carries a need of `kind`."""
    return [f for f in findings if f.status in (Status.ERROR, Status.WARN) and isinstance(f.need, kind)
            and f.fix is not None and f.fix.id in fix_ids]


def worst(findings: list[Finding]) -> Status:
    return max((f.status for f in findings), key=lambda s: s.rank, default=Status.OK)
