"""The journal's errors: each carries one line for the user."""

from __future__ import annotations


class JournalError(Exception):
    """A one-line message for the user."""


class PrefixBusy(JournalError):
    """Another tritondoctor process holds the environment's lock."""


class NothingToUndo(JournalError):
    """No fix is recorded in the environment (the CLI maps it to exit 0)."""


class UnsafeState(JournalError):
    """tritondoctor's state directory, lock or a journal is not what tritondoctor made (a symlink,
    another owner, a manifest naming paths outside the environment): refused, nothing changed."""


class NoSpace(JournalError):
    """The disk (or quota) of the environment or of its journal is full."""
