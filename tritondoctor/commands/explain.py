"""`tritondoctor explain`: which catalog rows a pasted error line, traceback or log shows.

Exit status: 0 when the text shows something known (a problem, or only harmless messages),
1 when nothing in it is known, 2 for usage errors (no text, an unreadable file, both a text and
--file).
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command()(explain)


def explain(
    text: List[str] = typer.Argument(None, help="The error text (quote it), or - to read a log from stdin."),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="Read the text from this file."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    gpu: bool = typer.Option(False, "--gpu", help="The text comes from a host with an NVIDIA GPU."),
) -> int:
    """Map an error line, a traceback or a whole tritonserver / PyTriton log to the known failures
    it shows: cause, how to confirm, remedy. Exit 0 known, 1 nothing known, 2 usage error."""
    from tritondoctor.commands.common import console, print_json
    from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS
    from tritondoctor.explain import explain as explain_text
    from tritondoctor.render.explain import render

    result = explain_text(read_input(text or [], file), gpu_present=gpu)
    if json_out:
        print_json(result.to_json())
    else:
        render(result, console())
    return EXIT_OK if result.known else EXIT_PROBLEMS


def read_input(words: List[str], path: Optional[str]) -> str:
    """The text to explain: the arguments, stdin (`-`) or a file; a UsageError when there is none."""
    from tritondoctor.errors import UsageError

    if path is not None and words:
        raise UsageError("give the text or --file, not both")
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = f.read().decode("utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(f"--file {path}: {exc.strerror or exc}") from None
        source = path
    elif words == ["-"]:
        data = sys.stdin.buffer.read().decode("utf-8", errors="replace") if sys.stdin is not None else ""
        source = "stdin"
    else:
        data, source = " ".join(words), "the arguments"
    if not data.strip():
        raise UsageError(f"nothing to explain: {source} {'are' if source == 'the arguments' else 'is'} empty"
                         " (give an error line, - for stdin, or --file PATH)")
    return data
