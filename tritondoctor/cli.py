"""Command line: the one place where results and errors become exit statuses.

Commands (tritondoctor/commands/) return an exit status or raise a ToolError. One signal policy
holds for every command: SIGINT and SIGTERM raise `Interrupted`, `finally` blocks clean up, and
the process says "interrupted" (a JSON object under --json) and exits 130 / 143.
"""

from __future__ import annotations

# Only the standard library modules the interpreter has loaded anyway, and tritondoctor.errors
# (definitions only), come before the signal policy: `python -m tritondoctor` and the console
# script both import this module first, and a Ctrl-C while they do must not be a traceback.
import os
import signal
import sys

from tritondoctor.errors import Interrupted

TYPE_CHECKING = False  # typing itself is not loaded yet, and need not be for this
if TYPE_CHECKING:
    from typing import Any, List, Optional


# Every signal the policy turned into Interrupted, in order: typer catches a KeyboardInterrupt that
# leaves a command and returns a bare 130 (SIGTERM included), so run() needs to know one came.
_received: List[int] = []


def _on_signal(signum: int, _frame: Any) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def install_signal_policy() -> None:
    """SIGINT and SIGTERM raise Interrupted (idempotent; called first by every entry point)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(signum, _on_signal)
        except ValueError:  # not the main thread (an embedding caller): leave its policy alone
            return


def ignore_further_signals() -> None:
    """The status is decided and the output written: what is left (flushing, the caches' atexit
    writes) is not cut in half, and a late signal cannot turn into a traceback from atexit."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(signum, signal.SIG_IGN)
        except ValueError:
            return


def _report_interrupt(signum: int, argv: List[str]) -> int:
    from tritondoctor.errors import EXIT_SIGINT, EXIT_SIGTERM

    name = signal.Signals(signum).name
    status = EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT
    if "--json" in argv:
        import json

        print(json.dumps({"interrupted": True, "signal": name, "exit_status": status}))
    print(f"tritondoctor: interrupted ({name}); everything started was stopped", file=sys.stderr)
    return status


def interrupted_status(exc: BaseException, argv: List[str]) -> int:
    """Say "interrupted" for a KeyboardInterrupt (Interrupted or Python's own); its exit status."""
    return _report_interrupt(_signal_of(exc), argv)


def _signal_of(exc: BaseException) -> int:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Interrupted):
            return seen.signum
        if isinstance(seen, KeyboardInterrupt) and seen.args and isinstance(seen.args[0], int):
            return seen.args[0]  # raised before tritondoctor.errors could be imported (__main__)
        seen = seen.__cause__ or seen.__context__
    return signal.SIGINT


def build_app(argv: List[str] | None = None) -> Any:
    """The typer app. When argv names a command, only that command is declared (typer inspects
    every declared function at start-up; `check` should not pay for `fix`'s options)."""
    import typer

    from tritondoctor.commands import COMMANDS, register_all, register_one

    app = typer.Typer(
        add_completion=True,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        help="Diagnose and fix why PyTriton / Triton Inference Server will not start from a Python environment.",
    )
    if argv and argv[0] in COMMANDS:
        app.callback()(_group)  # keeps `tritondoctor NAME ...` a subcommand with one command declared
        register_one(app, argv[0])
    else:
        register_all(app)
    return app


def _group() -> None:
    """Diagnose and fix why PyTriton / Triton Inference Server will not start from a Python environment."""


def run(argv: List[str]) -> int:
    """Run one command line; returns the exit status (never raises, except SystemExit)."""
    from tritondoctor.errors import EXIT_OK, EXIT_USAGE, ToolError

    signals_before = len(_received)
    try:
        import typer

        command = typer.main.get_command(build_app(argv))
        code = command.main(args=argv, prog_name="tritondoctor", standalone_mode=False)
    except ToolError as exc:
        print(f"tritondoctor: {exc.prefix}{exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt as exc:  # Interrupted included
        return _report_interrupt(_signal_of(exc), argv)
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - typer's usage errors, and the tool's own failure
        import typer

        if isinstance(exc, typer.Abort):  # click turns KeyboardInterrupt into Abort
            return _report_interrupt(_signal_of(exc), argv)
        if isinstance(exc, typer.Exit):
            return int(exc.exit_code)
        if isinstance(exc, typer.TyperException):  # bad flags, missing arguments
            message = exc.format_message()
            if message:  # (no arguments at all: the help was shown, nothing more to say)
                print(f"tritondoctor: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        if os.environ.get("TRITONDOCTOR_DEBUG"):
            raise
        print(f"tritondoctor: internal error: {exc.__class__.__name__}: {exc} "
              "(set TRITONDOCTOR_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_USAGE
    if len(_received) > signals_before:
        # A signal came during the command even though it returned: typer's bare 130 for an
        # Interrupted, or one raised where Python ignores exceptions (an import lock's callback).
        return _report_interrupt(_received[-1], argv)
    return code if isinstance(code, int) else EXIT_OK


def main(argv: Optional[List[str]] = None) -> None:
    """The process's entry point; ends with sys.exit, ignoring SIGINT / SIGTERM from the moment the
    exit status is decided (an embedding caller wants run())."""
    install_signal_policy()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        status = run(args)
        sys.stdout.flush()
    except KeyboardInterrupt as exc:  # a signal between the command's end and here
        status = interrupted_status(exc, args)
    except BrokenPipeError:
        status = 0
    ignore_further_signals()
    sys.exit(status)


if __name__ == "__main__":
    main()
