"""Shared CLI plumbing: error handling and common option types.

Every command is wrapped by :func:`handles_errors`: a user error (:class:`IvusSimError`, a
missing file, a keyboard interrupt) prints one ``error: ...`` line on stderr and exits with
status 2 (130 for Ctrl-C), never a traceback. Set ``IVUS_SIM_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ivus_sim.errors import IvusSimError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    """Print ``error: message`` to stderr and return the Exit to raise."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    return typer.Exit(code)


def handles_errors(fn: F) -> F:
    """Decorator for CLI commands: turn user errors into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if os.environ.get("IVUS_SIM_DEBUG"):
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except IvusSimError as e:
            raise fail(str(e)) from None
        except FileNotFoundError as e:
            raise fail(f"file not found: {e.filename or e}") from None
        except IsADirectoryError as e:
            raise fail(f"expected a file, got a directory: {e.filename or e}") from None
        except PermissionError as e:
            raise fail(f"permission denied: {e.filename or e}") from None
        except KeyboardInterrupt:
            raise fail("interrupted; rerun the same command to resume where supported",
                       EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]
