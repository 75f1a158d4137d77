"""CLI: phantom commands (thin shell over the library)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the phantom command(s) to the root app."""
