"""User-facing errors.

Every problem a user can cause (bad file, bad option, bad data) raises
:class:`IvusSimError` with a one-line message; the CLI prints it and exits non-zero
without a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

__all__ = ["IvusSimError"]


class IvusSimError(Exception):
    """A clear, one-line error about the user's input or options."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
