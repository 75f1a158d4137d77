"""Diversity: how different are samples generated from the same phantom?

A simulator that returns the same image for every seed (mode collapse, or speckle frozen
into the weights) cannot serve augmentation or a reader study. For every group of samples
made from one label map, all pairs are compared in the polar measurement frame
(:mod:`ivus_sim.metrics.imageset`, display values scaled to [0, 1]):

* mean absolute difference (L1) of the pair;
* ``1 - SSIM`` (:func:`skimage.metrics.structural_similarity`, data range 1; Wang et al.,
  IEEE TIP 2004).

Both are 0 for identical samples. Independent fully developed speckle on the same anatomy
gives a clearly positive value; compare with the same figure of real frames of a pullback.

:func:`shared_texture` asks where a low figure comes from: the correlation of the *fine texture*
(image minus its 9 x 9 local mean) of two samples inside tissue (label interiors, more than 5
samples from any boundary, lumen excluded). Independent speckle gives ~0 (the 20 MHz physics
engine: ~0.05); a generator that draws part of its texture from the label map alone (fixed-pattern
texture, the same in every sample) gives that part's share of the texture variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from ivus_sim.tissues import SPECKLE_TISSUES

__all__ = ["pairwise_diversity", "group_by_labels", "shared_texture", "tissue_interior"]



def pairwise_diversity(groups: Sequence[np.ndarray]) -> dict[str, Any]:
    """Mean pairwise distances within groups of samples.

    Args:
        groups: each ``(K, A, S)`` polar display values [0, 255] of ``K >= 2`` samples of one
            phantom (groups with fewer than 2 samples are skipped).

    Returns:
        ``{"mean_l1", "mean_1_minus_ssim", "groups", "pairs"}`` (``None`` values when no group
        has two samples).
    """
    l1, dssim = [], []
    used = 0
    for grp in groups:
        g = np.asarray(grp, dtype=np.float64) / 255.0
        if g.shape[0] < 2:
            continue
        used += 1
        for i, j in combinations(range(g.shape[0]), 2):
            l1.append(float(np.abs(g[i] - g[j]).mean()))
            dssim.append(1.0 - float(structural_similarity(g[i], g[j], data_range=1.0)))
    return {
        "mean_l1": float(np.mean(l1)) if l1 else None,
        "mean_1_minus_ssim": float(np.mean(dssim)) if dssim else None,
        "groups": used,
        "pairs": len(l1),
    }


def group_by_labels(labels: Sequence[np.ndarray | None]) -> list[list[int]]:
    """Indices of frames that share an identical label map (frames without labels are left out).

    Returns:
        Groups of frame indices, in order of first appearance (singletons included).
    """
    from ivus_sim.io import array_hash

    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        if lab is None:
            continue
        groups.setdefault(array_hash(np.asarray(lab)), []).append(i)
    return list(groups.values())


def tissue_interior(labels: np.ndarray, erode: int = 5) -> np.ndarray:
    """Bool ``(A, S)``: pixels more than ``erode`` samples inside one tissue of
    :data:`~ivus_sim.tissues.SPECKLE_TISSUES` in a polar label map ``(A, S)`` (periodic along the
    angle; depth edges count as boundaries)."""
    lab = np.asarray(labels)
    k = np.ones((2 * erode + 1, 2 * erode + 1), dtype=bool)
    out = np.zeros(lab.shape, dtype=bool)
    for t in SPECKLE_TISSUES:
        m = lab == int(t)
        if not m.any():
            continue
        m = np.pad(m, ((erode, erode), (0, 0)), mode="wrap")
        out |= ndimage.binary_erosion(m, k, border_value=0)[erode:-erode]
    return out


def shared_texture(groups: Sequence[np.ndarray], labels: Sequence[np.ndarray], window: int = 9) -> dict[str, Any]:
    """Mean pairwise correlation of the fine textures of samples of one phantom (module docstring).

    Args:
        groups: each ``(K, A, S)`` polar display values of ``K >= 2`` samples of one phantom.
        labels: each ``(A, S)`` polar tissue ids of that phantom.
        window: side of the local mean removed [samples] (box, periodic in angle, edge-replicated in depth).

    Returns:
        ``{"mean_correlation", "pairs"}`` (``None`` when no group has two samples and an interior).
    """
    corr = []
    for grp, lab in zip(groups, labels, strict=True):
        g = np.asarray(grp, dtype=np.float64)
        inner = tissue_interior(lab)
        if g.shape[0] < 2 or inner.sum() < 64:
            continue
        fine = [x - ndimage.uniform_filter(x, window, mode=("wrap", "nearest")) for x in g]
        for i, j in combinations(range(len(fine)), 2):
            corr.append(float(np.corrcoef(fine[i][inner], fine[j][inner])[0, 1]))
    return {"mean_correlation": float(np.mean(corr)) if corr else None, "pairs": len(corr)}
