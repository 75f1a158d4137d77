"""pyplot-free figures for reports and training plots.

Library code must not change the user's matplotlib backend (``matplotlib.use("Agg")`` would
stop plots showing in a notebook) nor keep figures in pyplot's registry. :func:`subplots` mirrors
:func:`matplotlib.pyplot.subplots` but builds a bare :class:`matplotlib.figure.Figure`, which saves
to PNG with the Agg canvas whatever the backend is; :func:`close` is a no-op kept for symmetry.
"""

from __future__ import annotations

from typing import Any

__all__ = ["close", "subplots"]


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             dpi: float | None = None, **kwargs: Any) -> tuple[Any, Any]:
    """A ``(Figure, axes)`` pair like ``pyplot.subplots``, without touching pyplot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def close(fig: Any) -> None:
    """Nothing to release: figures made by :func:`subplots` are not registered with pyplot."""
