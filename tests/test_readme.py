"""README's tables are derived from the code's declarations: every declared check id and every
command appears in them (a new check or command without its README line fails here)."""

from __future__ import annotations

from pathlib import Path

from tritondoctor.commands import COMMANDS
from tritondoctor.registry import all_checks

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_every_declared_check_is_in_the_check_id_table() -> None:
    table = _section("Check ids (stable)")
    missing = [c.id for c in all_checks() if f"| `{c.id}` |" not in table]
    assert not missing, f"README's check id table lacks {missing}"


def test_every_command_is_in_the_command_table() -> None:
    table = _section("Commands")
    missing = [name for name in COMMANDS if f"`tritondoctor {name}" not in table]
    assert not missing, f"README's command table lacks {missing}"


def test_the_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    quick = _section("Quick start")
    blocks = [b.split("```", 1)[0].strip() for b in quick.split("```sh\n")[1:]]
    assert len(blocks) == 2 and all("\n" not in b for b in blocks), blocks
    assert "tritondoctor check" in blocks[0]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1] in ci
