"""The tool's own errors and every exit status, in one place.

Commands return an exit status or raise a `ToolError`; only `tritondoctor.cli` turns either into
the process's exit status and prints the error's one line.
"""

from __future__ import annotations

EXIT_OK = 0  # nothing wrong (or: the command did what was asked)
EXIT_PROBLEMS = 1  # something was found, or could not be done, that the user must act on
EXIT_USAGE = 2  # bad usage, bad input, or the tool's own failure
EXIT_SIGINT = 130  # 128 + SIGINT
EXIT_SIGTERM = 143  # 128 + SIGTERM


class ToolError(Exception):
    """A failure told to the user as one line; `exit_status` is what the process exits with."""

    exit_status = EXIT_USAGE
    prefix = "error: "

    def __init__(self, message: str, exit_status: int | None = None) -> None:
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status


class UsageError(ToolError):
    """The request itself is wrong: a bad option value, a missing file, not a Python (exit 2)."""


class CannotProceed(ToolError):
    """The request is fine but the world does not allow it now: the environment is locked by
    another fix, nothing to undo, a write failed and was rolled back (exit 1)."""

    exit_status = EXIT_PROBLEMS
    prefix = ""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; raised by the signal policy in cli so that `finally` blocks
    clean up. A KeyboardInterrupt: no `except Exception` swallows it, and code that already
    cleans up on Ctrl-C does the same on SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        import signal

        return EXIT_SIGTERM if self.signum == signal.SIGTERM else EXIT_SIGINT
