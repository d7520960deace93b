"""What a smoke run saw, as data: the input of smoke's diagnosis and of each check's log builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SMOKE_AREA = "Smoke test"


@dataclass(frozen=True)
class Interpreter:
    """The target interpreter as the model script reported it (its `hello` event)."""

    python: str = ""
    version: str = ""
    minor: str = ""
    prefix: str = ""
    env_kind: str = "system"
    libdir: str | None = None
    enable_shared: bool = False
    own_libpython: str | None = None
    pytriton: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any] | None) -> "Interpreter":
        if not event:
            return cls()
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: event[k] for k in names if k in event and event[k] is not None})


@dataclass
class Observation:
    """Everything a run saw; `diagnose` is a pure function of it."""

    log: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    interpreter: Interpreter = field(default_factory=Interpreter)
    gpu_present: bool = False
    timed_out: bool = False
    timeout_s: float = 0.0
    server_vanished: bool = False  # the runner saw tritonserver go without the script telling
    script_exit: int | None = None
    stub_libpython: dict[str, str | None] = field(default_factory=dict)  # path the stub mapped -> version
    ports: dict[str, int] = field(default_factory=dict)
    log_path: str | None = None
    shm_free_bytes: int | None = None  # free space of /dev/shm when the run ended

    def first(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("ev") == name), None)

    def last_phase(self) -> str:
        phases = [e.get("name", "") for e in self.events if e.get("ev") == "phase"]
        return phases[-1] if phases else "starting"
