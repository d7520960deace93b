"""Kept for imports from the smoke package: the types live in tritondoctor.observation."""

from tritondoctor.observation import SMOKE_AREA, Interpreter, Observation

__all__ = ["SMOKE_AREA", "Interpreter", "Observation"]
