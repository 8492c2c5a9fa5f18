"""Errors the user can fix; the command line prints them without a traceback."""

from __future__ import annotations


class UsageError(RuntimeError):
    """A problem with how Pantau was asked to run, with what to do about it."""


class ModelLoadError(UsageError):
    """Model weights that cannot be loaded; workers stop at start-up with it."""
