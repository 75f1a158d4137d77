"""Random polar patches for the learned metrics (classifier two-sample test, feature distances).

Patches are ``patch x patch`` windows of the polar measurement frame
(:mod:`ivus_sim.metrics.imageset`: angle x depth, 360 x 160), display values scaled to
[0, 1]. Angles wrap around (the frame is periodic in angle); depths are drawn between
``r_min`` and ``r_max`` of the field-of-view radius so the catheter and its ring-down, which
every simulator copies trivially, do not dominate. Positions are drawn from
:func:`ivus_sim.seeding.rng` and recorded with every patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import rng

__all__ = ["PatchConfig", "Patches", "extract_patches"]


@dataclass(frozen=True)
class PatchConfig:
    """Patch sampling.

    Args:
        patch: patch side [polar samples].
        per_frame: patches drawn from every frame.
        r_min: shallowest patch start, fraction of the FOV radius.
        r_max: deepest patch end, fraction of the FOV radius.
    """

    patch: int = 32
    per_frame: int = 32
    r_min: float = 0.15
    r_max: float = 1.0

    def __post_init__(self) -> None:
        if self.patch < 4 or self.per_frame < 1:
            raise ValueError("patch must be >= 4 and per_frame >= 1")
        if not 0 <= self.r_min < self.r_max <= 1:
            raise ValueError(f"need 0 <= r_min < r_max <= 1, got {self.r_min}, {self.r_max}")


@dataclass
class Patches:
    """Patches of one set.

    Args:
        data: ``(P, patch, patch)`` float32 in [0, 1].
        frame: ``(P,)`` index of the source frame.
        names: frame names (``names[frame[i]]`` is the source of patch ``i``).
        corner: ``(P, 2)`` (angle, depth) index of each patch's first sample.
    """

    data: np.ndarray
    frame: np.ndarray
    names: list[str]
    corner: np.ndarray

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def subset(self, idx: np.ndarray) -> Patches:
        """The patches at ``idx`` (same frame names)."""
        return Patches(self.data[idx], self.frame[idx], self.names, self.corner[idx])


def extract_patches(images: np.ndarray, names: list[str], config: PatchConfig, seed: int,
                    stream: str) -> Patches:
    """Draw random patches from polar images.

    Args:
        images: ``(F, A, S)`` polar display values [0, 255].
        names: ``F`` frame names.
        config: patch size, count and depth range.
        seed: run seed; positions come from ``rng(seed, "patches", stream, frame name)``, so frames
            of the same name in two sets (a simulated frame made from a real frame's label map)
            are sampled at the same positions: a matched design, which keeps position (depth,
            tissue) differences from masquerading as realism differences.
        stream: sampling stream (e.g. ``"c2st"`` or ``"features"``).

    Returns:
        :class:`Patches`.
    """
    n_f, n_a, n_s = images.shape
    p = config.patch
    d_lo = round(config.r_min * n_s)
    d_hi = round(config.r_max * n_s) - p
    if d_hi < d_lo or p > n_a:
        raise IvusSimError(f"patch {p} does not fit in the depth range {config.r_min}-{config.r_max} "
                           f"of a {n_a}x{n_s} polar frame")
    data, frames, corners = [], [], []
    ar = np.arange(p)
    for f in range(n_f):
        g = rng(seed, "patches", stream, names[f])
        a0 = g.integers(0, n_a, config.per_frame)
        d0 = g.integers(d_lo, d_hi + 1, config.per_frame)
        for a, d in zip(a0, d0, strict=True):
            rows = (a + ar) % n_a
            data.append(images[f, rows, d:d + p])
            frames.append(f)
            corners.append((int(a), int(d)))
    return Patches(
        data=(np.stack(data) / 255.0).astype(np.float32),
        frame=np.asarray(frames, dtype=np.int64),
        names=list(names),
        corner=np.asarray(corners, dtype=np.int64),
    )
