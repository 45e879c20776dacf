"""Errors that mean "the input is wrong", not "sigattn is broken".

The ``sigattn`` command prints these as one line (no traceback) and exits with code 2. They subclass
``ValueError``, so code that catches ``ValueError`` keeps working. This module imports nothing of sigattn, so
every layer (features, tasks, train) may raise them.
"""

from __future__ import annotations

__all__ = ["DataError", "UserError"]


class UserError(ValueError):
    """Base of the errors that mean the user's input is wrong (a recipe, a checkpoint, a data file): the CLI
    prints one line and exits with code 2."""


class DataError(UserError):
    """A data file or dataset that cannot be used as it is: truncated or unreadable audio, a CSV with gaps or
    non-numeric values, a recording without the expected channels. The message names the file (and line)."""
