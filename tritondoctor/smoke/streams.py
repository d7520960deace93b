"""The two streams of a smoke run as the runner reads them: the processes' output (tritonserver's
and the stub's log, the script's tracebacks) and the model script's JSON-line events.

Both go to the log file as they arrive; the output is also kept (up to a bound) for the
diagnosis, and both decide when the run should stop being followed: a fatal log line or a
closing event sets `end_by`.
"""

from __future__ import annotations

import codecs
import json
import os
import sys
import time
from typing import Any, TextIO

from tritondoctor.smoke import diagnose as dx

# Keep at most this much output in memory for the diagnosis; the log file has everything.
_KEEP_OUTPUT = 8 * 1024 * 1024
_RUNAWAY_LINE = 65536


class RunStreams:
    def __init__(self, log: TextIO, verbose: bool, graces: dict[str, float], signature_grace: float) -> None:
        self.log = log
        self.verbose = verbose
        self.graces = graces  # event name -> how long the run may go on after it
        self.signature_grace = signature_grace
        self.events: list[dict[str, Any]] = []
        self.output: list[str] = []
        self.output_size = 0
        self.end_by: float | None = None  # set once the outcome is known: stop following then
        self._line_partial = ""
        self._log_line_open = False
        self._event_partial = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def has_event(self, name: str) -> bool:
        return any(e.get("ev") == name for e in self.events)

    def first(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("ev") == name), None)

    def end_within(self, seconds: float) -> None:
        at = time.monotonic() + seconds
        self.end_by = at if self.end_by is None else min(self.end_by, at)

    # --- output ------------------------------------------------------------------------------

    def on_output(self, data: bytes) -> None:
        self._take_text(self._decoder.decode(data))

    def flush_output(self) -> None:
        self._take_text(self._decoder.decode(b"", final=True))

    def _take_text(self, text: str) -> None:
        if not text:
            return
        self._log_line_open = not text.endswith("\n")
        self.log.write(text)
        self.log.flush()
        if self.output_size < _KEEP_OUTPUT:
            self.output.append(text)
            self.output_size += len(text)
        if self.verbose:
            sys.stderr.write(text)
            sys.stderr.flush()
        *lines, self._line_partial = (self._line_partial + text).split("\n")
        if len(self._line_partial) > _RUNAWAY_LINE:  # judge what there is
            lines.append(self._line_partial)
            self._line_partial = ""
        for line in lines:
            if dx.is_fatal(line) and not self.has_event("result"):
                self.end_within(self.signature_grace)

    # --- events ------------------------------------------------------------------------------

    def on_event_bytes(self, data: bytes) -> None:
        self._event_partial += data
        *lines, self._event_partial = self._event_partial.split(b"\n")
        for raw in lines:
            try:
                event = json.loads(raw.decode("utf-8", errors="replace"))
            except ValueError:
                continue
            if isinstance(event, dict):
                self.on_event(event)

    def on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.log.write(("\n" if self._log_line_open else "") + f"[smoke] {json.dumps(event)[:2000]}\n")
        self._log_line_open = False
        self.log.flush()
        grace = self.graces.get(str(event.get("ev")))
        if grace is not None:
            self.end_within(grace)

    def drain(self, fd: int, events: bool = False) -> None:
        """Read what is left in a pipe whose writers are gone (or stuck) without blocking."""
        os.set_blocking(fd, False)
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            if events:
                self.on_event_bytes(data)
            else:
                self.on_output(data)
