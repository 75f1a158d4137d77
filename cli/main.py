"""``ivus-sim``: the root command. Each command group lives in its own module under ``cli/``.

Errors: commands turn user errors into one ``error: ...`` line and exit 2
(:func:`ivus_sim.cli._common.handles_errors`); the root group does the same for the parser's
usage and range errors (:class:`ivus_sim.cli._common.OneLineErrorGroup`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ivus_sim import __version__
from ivus_sim.cli import augment, evaluate, generate, phantom, simulate, train, turing
from ivus_sim.cli._common import EXIT_USER_ERROR, OneLineErrorGroup
from ivus_sim.errors import IvusSimError

app = typer.Typer(
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ivus-sim {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Simulate intravascular ultrasound (IVUS) images from tissue phantoms."""


for module in (phantom, simulate, train, generate, evaluate, augment, turing):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except IvusSimError as e:  # backstop: commands already handle these
        typer.echo(f"error: {e}", err=True)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
