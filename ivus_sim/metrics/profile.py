"""Radial intensity profile and acoustic shadowing behind calcium.

Both in the polar measurement frame (:mod:`ivus_sim.metrics.imageset`; depth index ``j`` at
``(j + 0.5) / 160`` of the field-of-view radius).

* Radial profile: mean display value over all angles and frames at each depth; summarised in
  10 equal radial bins (as the calibration figures' ``radial_profile_10``). Captures
  ring-down, time-gain compensation and attenuation with depth.
* Shadow behind calcium: dense calcium reflects almost all the energy, so the tissue behind
  it along the A-line is dark. For every A-line that crosses dense calcium, the samples up to
  ``window`` beyond its deepest calcium sample are compared with the *same depth and tissue*
  on A-lines that cross no calcium (nor guidewire or stent strut) in the same frame:
  ``ratio(d) = sum of I over behind-calcium pixels at distance d / sum of their matched control
  means I_control(tissue, depth)`` (a ratio of sums, so near-black controls cannot blow it up).
  ``ratio ~ 1``: no shadow; ``ratio -> 0``: a full shadow. ``shadow_ratio`` is the mean of the
  curve and ``shadow_depth_px`` the distance behind the calcium at which the curve first
  recovers to half-way between its minimum and 1 (the shadow's extent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ivus_sim.tissues import Tissue

__all__ = ["radial_profile", "shadow_profile", "compare_profiles", "compare_shadows"]

_SKIP = (int(Tissue.LUMEN), int(Tissue.CATHETER), int(Tissue.OUTSIDE), int(Tissue.DENSE_CALCIUM),
         int(Tissue.GUIDEWIRE), int(Tissue.STENT_STRUT))
#: reflectors that cast shadows: A-lines crossing any of them are not controls
_SHADOWING = (int(Tissue.DENSE_CALCIUM), int(Tissue.GUIDEWIRE), int(Tissue.STENT_STRUT))


def radial_profile(images: np.ndarray, n_bins: int | None = None) -> np.ndarray:
    """Mean display value at each depth over all angles and frames.

    Args:
        images: ``(F, A, S)`` polar display values.
        n_bins: if given, average into this many equal depth bins (``S`` must divide evenly).

    Returns:
        ``(S,)`` or ``(n_bins,)`` [grey levels].
    """
    prof = np.asarray(images, dtype=np.float64).mean(axis=(0, 1))
    if n_bins is None:
        return prof
    if prof.size % n_bins:
        raise ValueError(f"{prof.size} depth samples do not split into {n_bins} bins")
    return prof.reshape(n_bins, -1).mean(1)


def shadow_profile(images: np.ndarray, labels: np.ndarray, window: int = 32,
                   min_pixels: int = 20, min_control: int = 5) -> dict[str, Any] | None:
    """Intensity behind dense calcium relative to the same tissue at the same depth elsewhere.

    Args:
        images: ``(F, A, S)`` polar display values.
        labels: ``(F, A, S)`` polar tissue ids.
        window: how many depth samples behind the calcium to follow.
        min_pixels: distances with fewer behind-calcium pixels than this are left out (``nan``).
        min_control: (tissue, depth) cells with fewer control pixels than this are not used.

    Returns:
        ``{"ratio": (window,) list (nan where too few pixels), "shadow_ratio", "shadow_depth_px",
        "alines": number of A-lines crossing calcium, "pixels"}``, or ``None`` when no frame has
        dense calcium with tissue behind it and a calcium-free control at the same depth.
    """
    img = np.asarray(images, dtype=np.float64)
    lab = np.asarray(labels)
    n_frames, _, n_s = img.shape
    n_keys = 256 * n_s
    dist_sum = np.zeros(window)  # sum of behind-calcium intensities per distance
    ctrl_sum = np.zeros(window)  # sum of their matched control means
    dist_cnt = np.zeros(window)
    alines = 0
    depth = np.arange(n_s)
    for f in range(n_frames):
        calc = lab[f] == int(Tissue.DENSE_CALCIUM)
        has = calc.any(1)
        if not has.any():
            continue
        last = np.where(has, n_s - 1 - np.argmax(calc[:, ::-1], axis=1), -1)  # deepest calcium sample
        key = lab[f].astype(np.int64) * n_s + depth[None, :]
        clear = ~np.isin(lab[f], _SHADOWING).any(axis=1)  # A-lines with no shadowing reflector
        ctrl = clear.reshape(-1, 1) & ~np.isin(lab[f], _SKIP)
        c_sum = np.bincount(key[ctrl], img[f][ctrl], minlength=n_keys)
        c_cnt = np.bincount(key[ctrl], minlength=n_keys)
        dist = depth[None, :] - last[:, None]  # distance behind the calcium [samples]
        behind = has[:, None] & (dist >= 1) & (dist <= window) & ~np.isin(lab[f], _SKIP)
        k = key[behind]
        ok = c_cnt[k] >= min_control
        if not ok.any():
            continue
        d = dist[behind][ok] - 1
        dist_sum += np.bincount(d, img[f][behind][ok], minlength=window)
        ctrl_sum += np.bincount(d, c_sum[k][ok] / c_cnt[k][ok], minlength=window)
        dist_cnt += np.bincount(d, minlength=window)
        alines += int(has.sum())
    if dist_cnt.sum() == 0:
        return None
    curve = np.where((dist_cnt >= min_pixels) & (ctrl_sum > 0), dist_sum / np.maximum(ctrl_sum, 1e-9), np.nan)
    valid = np.isfinite(curve)
    if not valid.any():
        return None
    floor = float(np.nanmin(curve))
    half = floor + (1.0 - floor) / 2
    rec = np.nonzero(valid & (curve >= half) & (np.arange(window) >= int(np.nanargmin(curve))))[0]
    depth_px = float(rec[0] + 1) if rec.size else float(window)
    return {
        "ratio": [None if not np.isfinite(v) else float(v) for v in curve],
        "shadow_ratio": float(np.nanmean(curve)),
        "shadow_depth_px": depth_px if floor < 1 else 0.0,
        "alines": alines,
        "pixels": int(dist_cnt.sum()),
    }


def compare_profiles(real: np.ndarray, fake: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Radial profiles of two polar sets and their mean absolute difference.

    Args:
        real: ``(F, A, S)`` real polar images.
        fake: ``(G, A, S)`` simulated polar images.
        n_bins: number of depth bins of the summary.

    Returns:
        ``{"real_10", "fake_10", "l1_10", "real_full", "fake_full", "l1_full"}`` [grey levels].
    """
    rb, fb = radial_profile(real, n_bins), radial_profile(fake, n_bins)
    rf, ff = radial_profile(real), radial_profile(fake)
    return {
        "real_10": rb.tolist(), "fake_10": fb.tolist(), "l1_10": float(np.mean(np.abs(rb - fb))),
        "real_full": rf.tolist(), "fake_full": ff.tolist(), "l1_full": float(np.mean(np.abs(rf - ff))),
    }


def compare_shadows(real: dict[str, Any] | None, fake: dict[str, Any] | None) -> dict[str, Any]:
    """Shadow figures side by side with the fake - real differences (``None`` where either is missing)."""
    out: dict[str, Any] = {"real": real, "fake": fake, "shadow_ratio_diff": None, "shadow_depth_diff_px": None}
    if real is not None and fake is not None:
        out["shadow_ratio_diff"] = fake["shadow_ratio"] - real["shadow_ratio"]
        out["shadow_depth_diff_px"] = fake["shadow_depth_px"] - real["shadow_depth_px"]
    return out
