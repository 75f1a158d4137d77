"""The :class:`Phantom`: a tissue label map on the shared geometry.

A phantom is a stack of ``F`` label-map frames ``(F, N, N)`` (``F = 1`` for a single
cross-section, ``F > 1`` for a pullback) of uint8 tissue ids from :mod:`ivus_sim.tissues`,
plus its :class:`~ivus_sim.geometry.Geometry`. :func:`finalise_labels` enforces the
geometry convention: pixels outside the field-of-view disc become ``OUTSIDE`` and the
catheter is drawn at the centre when the label map has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ivus_sim.geometry import Geometry, fov_mask, radius_map
from ivus_sim.io import array_hash
from ivus_sim.tissues import Tissue
from ivus_sim.tissues import validate_labels as _validate

__all__ = ["Phantom", "finalise_labels", "validate_labels"]


def finalise_labels(labels: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Apply the geometry convention to label frames ``(..., N, N)`` (returns a new uint8 array).

    * pixels outside the FOV disc -> ``Tissue.OUTSIDE``;
    * ``Tissue.OUTSIDE`` inside the disc (e.g. a sketch coloured to the rim) -> ``PERIVASCULAR``;
    * frames with no ``CATHETER`` pixel get a catheter disc of ``geometry.catheter_radius_px``.
    """
    lab = np.array(labels, dtype=np.uint8, copy=True)
    n = lab.shape[-1]
    inside = fov_mask(n)
    cath = radius_map(n) * (n / 2) <= geometry.catheter_radius_px
    frames = lab.reshape(-1, n, n)
    for f in frames:
        f[inside & (f == Tissue.OUTSIDE)] = Tissue.PERIVASCULAR
        f[~inside] = Tissue.OUTSIDE
        if not (f == Tissue.CATHETER).any():
            f[cath] = Tissue.CATHETER
    return frames.reshape(lab.shape)


def validate_labels(labels: np.ndarray, source: str = "phantom") -> None:
    """Raise :class:`IvusSimError` unless ``labels`` is a valid label stack with a lumen in every frame.

    The rule is :func:`ivus_sim.tissues.validate_labels` (with ``require_lumen=True``).
    """
    _validate(labels, source, require_lumen=True)


@dataclass
class Phantom:
    """Tissue label frames on the shared geometry.

    Args:
        labels: ``(F, N, N)`` uint8 tissue ids (``F = 1`` for one cross-section).
        geometry: size and physical field of view (``geometry.size == N``).
        source: where it came from (path or generator), for sidecars and messages.
        meta: free-form provenance (e.g. random-phantom parameters).
    """

    labels: np.ndarray
    geometry: Geometry
    source: str = "array"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.labels.ndim == 2:
            self.labels = self.labels[None]
        if self.labels.shape[-1] != self.geometry.size:
            raise ValueError(f"labels of side {self.labels.shape[-1]} do not match geometry size {self.geometry.size}")

    @classmethod
    def from_array(cls, labels: np.ndarray, fov_mm: float = 10.0, source: str = "array",
                   meta: dict[str, Any] | None = None) -> Phantom:
        """Build a validated, finalised phantom from an ``(N, N)`` or ``(F, N, N)`` id array."""
        arr = _validate(labels, source, require_lumen=True)
        geometry = Geometry(size=arr.shape[-1], fov_mm=fov_mm)
        return cls(finalise_labels(arr, geometry), geometry, source, dict(meta or {}))

    @property
    def n_frames(self) -> int:
        return int(self.labels.shape[0])

    @property
    def label_map(self) -> np.ndarray:
        """The single ``(N, N)`` frame (error for a multi-frame pullback)."""
        if self.n_frames != 1:
            raise ValueError(f"phantom has {self.n_frames} frames; index .labels instead")
        return self.labels[0]

    def hash(self) -> str:
        """Content hash of the labels and geometry (for sidecars)."""
        return array_hash(self.labels) + f"-{self.geometry.fov_mm:g}mm"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "hash": self.hash(), "frames": self.n_frames,
                "geometry": self.geometry.to_dict(), "meta": self.meta}
