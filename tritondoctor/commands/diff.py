"""`tritondoctor diff A.json B.json`: what differs between two diagnoses, most relevant first."""

from __future__ import annotations

from typing import Any

import typer


def register(app: typer.Typer) -> None:
    app.command()(diff)


def diff(
    a: str = typer.Argument(..., metavar="A.json", help="A `check --json` or `report --json` file (e.g. the broken one)."),
    b: str = typer.Argument(..., metavar="B.json", help="Another one (e.g. the working one)."),
    json_out: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
) -> int:
    """Compare two check/report JSON files; exit 0 when nothing that matters differs, 1 otherwise."""
    from tritondoctor.commands.common import print_json
    from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS
    from tritondoctor.share.diff import compare, diff_json, render_text

    side_a, side_b = _load(a), _load(b)
    diffs = compare(side_a, side_b)
    if json_out:
        print_json(diff_json(side_a, side_b, diffs))
    else:
        print(render_text(side_a, side_b, diffs), end="")
    return EXIT_PROBLEMS if any(d.matters for d in diffs) else EXIT_OK


def _load(path: str) -> Any:
    import json

    from tritondoctor.errors import UsageError
    from tritondoctor.share.diff import DiffInputError, read_side

    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    try:
        return read_side(doc, path)
    except DiffInputError as exc:
        raise UsageError(f"{path}: {exc}") from None
