"""The fast tier mirrors checks/: every check listed in CHECKS has tests/checks/test_check_<module>.py,
and the synthetic base snapshot those tests start from passes every check."""

from __future__ import annotations

from pathlib import Path

import snapfake as sf
from tritondoctor.checks import CHECKS

HERE = Path(__file__).resolve().parent


def _module(spec: object) -> str:
    return spec.run.__module__.rsplit(".", 1)[-1]  # type: ignore[attr-defined]


def test_every_check_has_fast_tests() -> None:
    missing = [f"test_check_{_module(spec)}.py" for spec in CHECKS
               if not (HERE / f"test_check_{_module(spec)}.py").is_file()]
    assert not missing, f"checks without fast tests in {HERE}: {missing}"


def test_no_fast_tests_for_checks_that_are_gone() -> None:
    modules = {_module(spec) for spec in CHECKS}
    stray = [p.name for p in HERE.glob("test_check_*.py") if p.stem[len("test_check_"):] not in modules]
    assert not stray, stray


def test_base_snapshot_is_healthy() -> None:
    snap = sf.base()
    for spec in CHECKS:
        assert not sf.problems(spec.run(snap)), spec.id
