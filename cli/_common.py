"""Shared CLI plumbing: error handling, the root group class and the options every command shares.

Every command is wrapped by :func:`handles_errors`: a user error (:class:`IvusSimError`, a
missing file, a keyboard interrupt) prints one ``error: ...`` line on stderr and exits with
status 2 (130 for Ctrl-C), never a traceback. Set ``IVUS_SIM_DEBUG=1`` to see tracebacks.
Usage and range errors found by the option parser (``--n 0``, an unknown option) take the same
form through :class:`OneLineErrorGroup`, the root app's group class (no multi-line box).

Shared options (use these, so an option means the same thing in every command):
:data:`SeedOption` (``--seed``, checked by :func:`ivus_sim.seeding.check_seed`) and
:data:`ProgressOption` (``--progress/--no-progress``).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
import typer.core

try:  # typer >= 0.25 vendors click as typer._click: its parser raises these, not click's
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as click_exc  # type: ignore[no-redef]

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


def one_line(message: str) -> str:
    """``message`` on one line (whitespace runs, including newlines, collapsed)."""
    return " ".join(str(message).split())


class OneLineErrorGroup(typer.core.TyperGroup):
    """The root group: parser errors (bad values, ranges, unknown options) print ONE ``error:`` line, exit 2.

    Click's standalone mode prints a usage block (typer: a rich box) for these; here the app runs
    with ``standalone_mode=False`` and formats the exception itself, so ``ivus-sim`` (console
    script) and in-process ``CliRunner`` calls behave the same.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              windows_expand_args=windows_expand_args, **extra)
        except click_exc.NoArgsIsHelpError as e:
            e.show()
            code = e.exit_code
        except click_exc.UsageError as e:
            cmd = e.ctx.command_path if e.ctx is not None else "ivus-sim"
            typer.echo(f"error: {one_line(e.format_message())} (see: {cmd} --help)", err=True)
            code = EXIT_USER_ERROR
        except click_exc.ClickException as e:
            typer.echo(f"error: {one_line(e.format_message())}", err=True)
            code = EXIT_USER_ERROR
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = EXIT_INTERRUPTED
        else:
            code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _seed_callback(value: int | None) -> int | None:
    from ivus_sim.seeding import check_seed

    if value is None:
        return None
    try:
        return check_seed(value, "--seed")
    except IvusSimError as e:
        raise typer.BadParameter(str(e)) from None


#: ``--seed``: the one seed of every random draw (the same option, help and check in every command)
SeedOption = Annotated[int, typer.Option("--seed", callback=_seed_callback,
                                         help="The one seed of every random draw (0 <= seed < 2**63).")]
#: ``--progress/--no-progress``: a progress bar on stderr
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar (stderr).")]
