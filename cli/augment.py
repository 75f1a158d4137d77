"""CLI: augment commands (thin shell over the library)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the augment command(s) to the root app."""
