"""The one exception type users see.

Every problem caused by the user's input (a missing file, a bad option value, weights that
cannot be found) raises :class:`BrushworkError` with a one-line message. The CLI prints it as
``brushwork: error: <message>`` and exits with status 2; library callers can catch it.
"""

from __future__ import annotations


class BrushworkError(Exception):
    """A user-facing error with a one-line, actionable message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class BrushworkWarning(UserWarning):
    """Something was adjusted to make a run possible (e.g. a mask stretched to the content);
    the CLI prints it as ``brushwork: warning: <message>``."""
