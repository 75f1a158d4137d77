"""Per-tissue intensity distributions: how far simulated tissue brightness is from real.

The "shift in tissue-specific intensity distributions" used to judge IVUS simulators, made
into numbers. For each tissue (eroded masks in the polar measurement frame, values pooled
over frames, see :mod:`ivus_sim.metrics.imageset`):

* Jensen-Shannon divergence of the 32-bin histograms over [0, 256) (bits; 0 identical,
  1 disjoint; :func:`ivus_sim.metrics.calibration.js_divergence`, as the calibration figures);
* Wasserstein-1 (earth mover's) distance of the raw display values [grey levels]
  (:func:`scipy.stats.wasserstein_distance`): unlike JS it grows with the size of a shift;
* mean, std and 5/25/50/75/95 % quantile differences (fake - real) [grey levels].

Pixel-weighted summaries weight each tissue by its real pixel count (as
``measure.py compare``); ``js_max`` ignores tissues with fewer than
:data:`~ivus_sim.metrics.calibration.MIN_PIXELS_FOR_MAX` real pixels (too noisy for a max).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from ivus_sim.metrics.calibration import MIN_PIXELS_FOR_MAX, js_divergence

__all__ = ["HIST_BINS", "QUANTILES", "histogram32", "compare_distributions", "compare_intensities"]

#: histogram bin edges [grey levels]: 32 bins over [0, 256), as the calibration figures
HIST_BINS = np.linspace(0, 256, 33)
QUANTILES = (5, 25, 50, 75, 95)
_MAX_W1_VALUES = 200_000  # W1 on a deterministic even subsample above this (sorting cost)


def histogram32(values: np.ndarray) -> np.ndarray:
    """32-bin histogram over [0, 256) normalised to sum 1 ``(32,)``."""
    h, _ = np.histogram(np.asarray(values, dtype=np.float64), HIST_BINS)
    total = h.sum()
    return h / total if total else h.astype(np.float64)


def _thin(v: np.ndarray) -> np.ndarray:
    if v.size <= _MAX_W1_VALUES:
        return v
    return np.sort(v)[np.linspace(0, v.size - 1, _MAX_W1_VALUES).round().astype(np.int64)]


def compare_distributions(real: np.ndarray, fake: np.ndarray) -> dict[str, Any]:
    """Compare two samples of display values [0, 255].

    Args:
        real: ``(n,)`` real values.
        fake: ``(m,)`` simulated values.

    Returns:
        ``js`` [bits], ``w1`` [grey levels], means/stds/quantiles of both and their differences
        (fake - real), pixel counts and both histograms (for plots).
    """
    real = np.asarray(real, dtype=np.float64).ravel()
    fake = np.asarray(fake, dtype=np.float64).ravel()
    if real.size == 0 or fake.size == 0:
        raise ValueError("both samples must be non-empty")
    hr, hf = histogram32(real), histogram32(fake)
    qr = np.percentile(real, QUANTILES)
    qf = np.percentile(fake, QUANTILES)
    return {
        "pixels_real": int(real.size),
        "pixels_fake": int(fake.size),
        "js": float(js_divergence(hr, hf)),
        "w1": float(wasserstein_distance(_thin(real), _thin(fake))),
        "mean_real": float(real.mean()),
        "mean_fake": float(fake.mean()),
        "mean_diff": float(fake.mean() - real.mean()),
        "std_real": float(real.std()),
        "std_fake": float(fake.std()),
        "std_diff": float(fake.std() - real.std()),
        "quantiles": list(QUANTILES),
        "quantiles_real": qr.tolist(),
        "quantiles_fake": qf.tolist(),
        "quantile_diff": (qf - qr).tolist(),
        "hist_real": hr.tolist(),
        "hist_fake": hf.tolist(),
    }


def compare_intensities(real: dict[str, np.ndarray], fake: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-tissue and pixel-weighted intensity comparison.

    Args:
        real: tissue name -> pooled real values (:func:`ivus_sim.metrics.imageset.tissue_values`).
        fake: tissue name -> pooled simulated values.

    Returns:
        ``{"tissues": {name: compare_distributions(...)}, "js_weighted", "w1_weighted",
        "abs_mean_diff_weighted", "js_max", "missing_in_fake"}``; tissues present in only one set
        are listed in ``missing_in_fake`` / ``missing_in_real`` and left out of the summaries.
    """
    common = [n for n in real if n in fake]
    per = {n: compare_distributions(real[n], fake[n]) for n in common}
    w = np.array([per[n]["pixels_real"] for n in common], dtype=np.float64)

    def weighted(key: str, fn: Any = float) -> float | None:
        if not common:
            return None
        return float(np.sum(w * np.array([fn(per[n][key]) for n in common])) / w.sum())

    big = [per[n]["js"] for n in common if per[n]["pixels_real"] >= MIN_PIXELS_FOR_MAX]
    return {
        "tissues": per,
        "js_weighted": weighted("js"),
        "w1_weighted": weighted("w1"),
        "abs_mean_diff_weighted": weighted("mean_diff", abs),
        "js_max": max(big) if big else None,
        "missing_in_fake": [n for n in real if n not in fake],
        "missing_in_real": [n for n in fake if n not in real],
    }
