"""The declared record of one check: everything tritondoctor knows about a check id lives in the
check's own module as one `CHECK = CheckSpec(...)`, and `tritondoctor.checks.CHECKS` lists them
all, in report order. From that list come the report order, the loader-check set that fix
predictions re-run, smoke's log signatures and fast-fail lines, and `explain`'s catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.observation import Observation
    from tritondoctor.snapshot import Snapshot

AREAS = (
    "Platform",
    "PyTriton install",
    "Shared libraries",
    "Environment variables",
    "Python packages",
    "GPU and CUDA",
    "Runtime resources",
    "Model repository",
)


class LazyPattern:
    """A regular expression compiled on first use: `check` imports every check's signatures but
    never matches a log, so it should not pay for compiling them."""

    __slots__ = ("source", "_compiled")

    def __init__(self, source: str) -> None:
        self.source = source
        self._compiled: "re.Pattern[str] | None" = None

    @property
    def compiled(self) -> "re.Pattern[str]":
        if self._compiled is None:
            self._compiled = re.compile(self.source)
        return self._compiled

    def search(self, text: str) -> "re.Match[str] | None":
        return self.compiled.search(text)

    def __repr__(self) -> str:
        return f"LazyPattern({self.source!r})"


@dataclass(frozen=True)
class LogSignature:
    """A line a server, stub or PyTriton log prints when this check's problem happens."""

    pattern: LazyPattern
    rows: tuple[int, ...] = ()  # rows of the field catalog (../shared/FAILURES.md) it stands for
    # After this line a model load may hang instead of failing (the stub cannot even start):
    # smoke stops waiting at once.
    fast_fail: bool = False
    cause: str = ""  # one sentence: why this line appears (explain prints it)
    # Means a problem only on a host with a GPU; without one the server prints it harmlessly.
    gpu_only: bool = False


def sig(pattern: str, *rows: int, fast_fail: bool = False, cause: str = "", gpu_only: bool = False) -> LogSignature:
    return LogSignature(LazyPattern(pattern), tuple(rows), fast_fail, cause, gpu_only)


@dataclass(frozen=True)
class Match:
    """A log line one of a check's signatures matched."""

    id: str
    line: str  # the line, trimmed
    groups: tuple[str, ...]
    signature: LogSignature | None = None


LogBuilder = Callable[[Sequence[Match], "Observation"], "Finding"]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    area: str
    run: Callable[["Snapshot"], list["Finding"]]  # pure: reads the snapshot only
    # Its result depends on which files the dynamic loader picks: fix predictions re-run it
    # under the environment a plan would produce.
    loader: bool = False
    signatures: tuple[LogSignature, ...] = ()
    # Smoke's finding for the lines this check's signatures matched in a real run's log.
    from_log: LogBuilder | None = None
    # Its log lines are usually the consequence of another check's (a stub that cannot start
    # because libpython is missing): smoke lists them after the causes.
    log_is_consequence: bool = False
    rows: tuple[int, ...] = ()  # catalog rows `check` detects statically
    summary: str = ""  # what it looks at (README's table, `explain`)
