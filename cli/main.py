"""``ivus-sim``: the root command. Each command group lives in its own module under ``cli/``.

Errors: commands turn user errors into one ``error: ...`` line and exit 2
(:func:`ivus_sim.cli._common.handles_errors`); the root group does the same for the parser's
usage and range errors (:class:`ivus_sim.cli._common.OneLineErrorGroup`).

Fast start: the console script imports only the module of the command it runs (``ivus-sim
generate`` never imports the training, reader-study or augmentation CLI modules and what they
pull in); ``ivus-sim``, ``ivus-sim --help`` and unknown names build the full app.
``from ivus_sim.cli.main import app`` is always the full app (tests, documentation).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from ivus_sim import __version__
from ivus_sim.cli._common import EXIT_USER_ERROR, OneLineErrorGroup
from ivus_sim.errors import IvusSimError

#: command modules under ivus_sim/cli, in the order of the help listing
MODULES = ("phantom", "simulate", "train", "generate", "evaluate", "augment", "turing")
#: top-level command name -> the module that registers it
COMMANDS = {"phantom": "phantom", "simulate": "simulate", "train": "train", "corpus": "train",
            "generate": "generate", "explore": "generate", "evaluate": "evaluate", "augment": "augment",
            "turing": "turing"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ivus-sim {__version__}")
        raise typer.Exit()


def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Simulate intravascular ultrasound (IVUS) images from tissue phantoms."""


def build_app(modules: Sequence[str] = MODULES) -> typer.Typer:
    """The root app with the commands of ``modules`` (default: all)."""
    application = typer.Typer(
        name="ivus-sim",
        help="Simulate intravascular ultrasound (IVUS) images from tissue phantoms.\n\n"
        "Typical use: ivus-sim generate --phantom examples/calcified_plaque.png --out out/",
        no_args_is_help=True,
        add_completion=False,
        cls=OneLineErrorGroup,  # parser errors: one `error:` line, exit 2
        rich_markup_mode=None,  # help text verbatim: bracketed units such as [mm] stay
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    application.callback()(root)
    for name in modules:
        importlib.import_module(f"ivus_sim.cli.{name}").register(application)
    return application


def __getattr__(name: str) -> Any:  # `app`: the full app, built on first use
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _module_for(argv: Sequence[str]) -> str | None:
    """The command module the arguments name (first non-option argument), or None."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return COMMANDS.get(first) if first is not None else None


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (builds only the named command's module)."""
    args = list(sys.argv[1:] if argv is None else argv)
    module = _module_for(args)
    application = build_app([module]) if module is not None else build_app()
    try:
        application(args=args, prog_name="ivus-sim")
    except IvusSimError as e:  # backstop: commands already handle these
        typer.echo(f"error: {e}", err=True)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
