"""CLI: train commands (thin shell over the library)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the train command(s) to the root app."""
