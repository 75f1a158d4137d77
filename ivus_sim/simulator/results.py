"""What the generation API returns: :class:`GenerationResult` and :class:`GridResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ivus_sim.phantom.phantom import Phantom

__all__ = ["GenerationResult", "GridResult"]


@dataclass
class GenerationResult:
    """What :meth:`Simulator.generate <ivus_sim.simulator.Simulator.generate>` returns.

    Args:
        images: uint8 display images, ``(n, N, N)`` for one frame or ``(n, F, N, N)`` for a
            pullback; 0 outside the field of view.
        records: one JSON-able dict per image (its sidecar: phantom hash, engine, model id,
            seed, index, latent codes, scanner style, preset, geometry).
        stages: intermediate stages by name, float32 with the leading shape of ``images``
            (learned: ``"mean"``, the stage-1 mean intensity in [0, 1]; physics: the engine's
            stages). Empty unless ``return_stages=True``.
        phantom: the (validated, finalised) phantom the images were made from.
        polar: the display images on the polar grid, float32 in [0, 1], ``(n, A, S)`` or
            ``(n, F, A, S)`` (A-lines x depth samples); ``None`` unless ``return_polar=True``.
    """

    images: np.ndarray
    records: list[dict[str, Any]]
    stages: dict[str, np.ndarray] = field(default_factory=dict)
    phantom: Phantom | None = None
    polar: np.ndarray | None = None


@dataclass
class GridResult:
    """What :meth:`Simulator.explore` and :meth:`Simulator.interpolate` return.

    Args:
        images: uint8 tiles ``(rows, cols, N, N)``.
        codes: the full latent code of each tile ``(rows, cols, d1 + d2)`` (z1 then z2).
        record: JSON-able description (phantom, model, dims, values, seed) that regenerates it.
    """

    images: np.ndarray
    codes: np.ndarray
    record: dict[str, Any]

    def mosaic(self, gap: int = 2) -> np.ndarray:
        """The tiles as one uint8 image ``(rows*N + gap*(rows-1), cols*N + gap*(cols-1))``."""
        r, c, n, _ = self.images.shape
        out = np.zeros((r * n + gap * (r - 1), c * n + gap * (c - 1)), np.uint8)
        for i in range(r):
            for j in range(c):
                out[i * (n + gap): i * (n + gap) + n, j * (n + gap): j * (n + gap) + n] = self.images[i, j]
        return out
