"""`tritondoctor explain`: from pasted text (an error line, a traceback, a whole tritonserver or
PyTriton log) to the rows of the field catalog it shows, each with its cause, what to run to
confirm it and the remedy.

There is one signature table: the checks' declared signatures plus smoke's own
(`tritondoctor.smoke.diagnose.signatures`); the remedy is the one the matching check's log
builder gives for the line. Pure and offline: nothing is started, nothing is asked of PyTriton.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tritondoctor.checkspec import CheckSpec, Match
    from tritondoctor.findings import FixHint

HARMLESS_ROW = 15  # CUDA / NVML / DCGM messages of a host without a GPU
GPU_ROW = 16  # the same CUDA message on a host with a GPU: a problem
UNKNOWN = "no known failure in this text; run tritondoctor check"

# What confirms a smoke-only finding (one that no static check can see).
_SMOKE_CONFIRM: dict[str, tuple[str, ...]] = {
    "server-signal": ("tritondoctor smoke --verbose", "dmesg | tail"),
}
_REPOSITORY_CHECK = "model-repository"


@dataclass(frozen=True)
class Explained:
    """One line of the text that a catalog signature stands for."""

    rows: tuple[int, ...]
    id: str
    line: str
    cause: str
    confirm: tuple[str, ...]
    remedy: str
    remedy_commands: tuple[str, ...] = ()

    @property
    def row(self) -> int | None:
        return self.rows[0] if self.rows else None

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "rows": list(self.rows), "id": self.id, "line": self.line, "cause": self.cause,
                "confirm": list(self.confirm), "remedy": self.remedy, "remedy_commands": list(self.remedy_commands)}


@dataclass(frozen=True)
class HarmlessLine:
    """A message that is expected on a host without a GPU, and why."""

    line: str
    why: str
    rows: tuple[int, ...]
    gpu_row: int | None = None  # the row the same message stands for on a host with a GPU

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "why": self.why, "rows": list(self.rows), "problem_with_gpu_row": self.gpu_row}


@dataclass(frozen=True)
class Explanation:
    matches: tuple[Explained, ...]
    harmless: tuple[HarmlessLine, ...]
    gpu_present: bool

    @property
    def known(self) -> bool:
        """Whether anything in the text is in the catalog (a problem or a harmless message)."""
        return bool(self.matches or self.harmless)

    @property
    def gpu_note(self) -> bool:
        """Some harmless message would be a problem (row 16) on a host with a GPU."""
        return any(h.gpu_row is not None for h in self.harmless)

    @property
    def rows(self) -> list[int]:
        return sorted({r for m in self.matches for r in m.rows} | {r for h in self.harmless for r in h.rows})

    def to_json(self) -> dict[str, Any]:
        return {"matches": [m.to_json() for m in self.matches], "known": self.known,
                "harmless": [h.to_json() for h in self.harmless], "gpu_present": self.gpu_present,
                "message": None if self.known else UNKNOWN}


def explain(text: str, gpu_present: bool = False) -> Explanation:
    """Every catalog row `text` shows, causes first. `gpu_present`: the text comes from a host
    with an NVIDIA GPU (then the CUDA messages a GPU-less host prints harmlessly are problems)."""
    from tritondoctor.smoke import diagnose as dx

    specs = _specs()
    found = dx.scan(text, gpu_present)
    if any(m.id != dx.MODEL_LOAD_ID for m in found):
        # A bare failed load is the consequence of the cause found beside it.
        found = [m for m in found if m.id != dx.MODEL_LOAD_ID]
    consequence = {i for i, spec in specs.items() if spec.log_is_consequence}
    found.sort(key=lambda m: m.id in consequence)
    matches = tuple(_explained(match, specs.get(match.id)) for match in found)
    harmless = tuple(_harmless(line, why, gpu_present) for line, why in dx.harmless_lines(text, gpu_present))
    return Explanation(matches, harmless, gpu_present)


def _specs() -> dict[str, "CheckSpec"]:
    from tritondoctor.registry import all_checks

    return {spec.id: spec for spec in all_checks()}


def _harmless(line: str, why: str, gpu_present: bool) -> HarmlessLine:
    from tritondoctor.smoke import diagnose as dx

    item = next((h for h in dx.HARMLESS if h.why == why), None)
    rows = item.rows if item is not None else ()
    gpu_row = GPU_ROW if item is not None and item.gpu_only_error and not gpu_present else None
    return HarmlessLine(line, why, rows, gpu_row)


def _explained(match: "Match", spec: "CheckSpec | None") -> Explained:
    signature = match.signature
    rows = signature.rows if signature is not None else ()
    cause = signature.cause if signature is not None and signature.cause else ""
    fix = _builder_fix(match, spec)
    if fix is not None:
        remedy, commands = fix.summary, fix.commands
    else:
        remedy, commands = (cause or "see the catalog row"), ()
    return Explained(rows, match.id, match.line, cause, confirm_commands(match.id, spec), remedy, tuple(commands))


def _builder_fix(match: "Match", spec: "CheckSpec | None") -> "FixHint | None":
    """The fix the check's log builder gives for this one line, with no run behind it."""
    if spec is None or spec.from_log is None:
        return None
    try:
        finding = spec.from_log([match], unknown_run())
    except Exception:  # noqa: BLE001 - a builder that needs run facts: fall back to the cause
        return None
    return finding.fix


def unknown_run() -> Any:
    """An Observation with no run data. Its interpreter is a placeholder with a shared
    libpython: an entirely empty one reads as "built without --enable-shared", which pasted text
    does not say."""
    from tritondoctor.observation import Interpreter, Observation

    libdir = "/path/to/env/lib"
    return Observation(interpreter=Interpreter(python="python", libdir=libdir, enable_shared=True,
                                               own_libpython=libdir + "/libpython3.X.so.1.0"))


def confirm_commands(check_id: str, spec: "CheckSpec | None") -> tuple[str, ...]:
    """What to run to see whether the environment has this problem."""
    if spec is None:
        return _SMOKE_CONFIRM.get(check_id, ("tritondoctor smoke",))
    if check_id == _REPOSITORY_CHECK:
        return (f"tritondoctor check --only {check_id} --model-repository /path/to/model_repository",
                "tritondoctor smoke")
    return (f"tritondoctor check --only {check_id}", "tritondoctor smoke")
