"""Calibration statistics: the reference measurement of IVUS display images.

A library port of ``shared/calibration/measure.py`` with *exactly* its definitions, so
simulated images can be compared like for like with figures measured on real 20 MHz IVUS
frames (``real_20mhz_vh.json``, shipped with the package):

* Geometry: catheter at the image centre, FOV disc inscribed in the square image with
  radius ``0.99 x N/2``; each image/label resampled to a polar grid of 360 angles x 160
  radii from the centre to the disc edge (bilinear for images, nearest for labels).
* Per tissue: mask eroded by one pixel in the polar grid; values pooled over frames; mean,
  std, 5/25/50/75/95 % quantiles, 32-bin histogram over [0, 256) normalised to sum 1.
  ``lumen_beyond_ringdown``: lumen beyond 20 % of the disc radius.
* ``radial_profile_10``: mean over all angles and frames in 10 equal radial bins.
* ``speckle_perivascular``: 32x32 polar patches wholly inside eroded perivascular tissue,
  stepped by 24 angles and 16 radii; median autocorrelation FWHM along angle and radius and
  median patch mean/std (display values).

Images are 8-bit display images (after log compression).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Interp, sample_polar
from ivus_sim.tissues import TISSUES, Tissue

__all__ = [
    "N_THETA",
    "N_R",
    "STAT_TISSUES",
    "reference_polar",
    "autocorr_fwhm",
    "polar_stats",
    "js_divergence",
    "compare_stats",
    "load_reference_stats",
]

N_THETA, N_R = 360, 160
_DISC_FRACTION = 0.99
#: tissues measured (name -> id), as in the reference figures
STAT_TISSUES: dict[str, int] = {
    TISSUES[t].name: int(t)
    for t in (Tissue.PERIVASCULAR, Tissue.LUMEN, Tissue.FIBROUS, Tissue.FIBRO_FATTY, Tissue.NECROTIC_CORE,
              Tissue.DENSE_CALCIUM, Tissue.MEDIA)
}
LUMEN_FAR = "lumen_beyond_ringdown"
_BINS = np.linspace(0, 256, 33)
#: tissues smaller than this (pooled pixels) are too noisy for max-type summaries
MIN_PIXELS_FOR_MAX = 2000


def reference_polar(image: np.ndarray, interp: Interp = Interp.BILINEAR) -> np.ndarray:
    """Resample an ``(N, N)`` image (or label map) to the reference 360 x 160 polar grid."""
    th = np.linspace(0, 2 * np.pi, N_THETA, endpoint=False)
    rr = np.linspace(0, 1, N_R) * _DISC_FRACTION
    a = np.asarray(image)
    src = a.astype(np.float64) if interp == Interp.BILINEAR else a
    out = sample_polar(src, th, rr, interp)
    return np.asarray(out, dtype=np.float64)


def autocorr_fwhm(patch: np.ndarray) -> tuple[int, int]:
    """Full width at half maximum of the autocorrelation of a mean-removed patch.

    Args:
        patch: ``(n_theta, n_r)`` polar patch.

    Returns:
        (width along the angle axis, width along the radius axis) in pixels (odd integers).
    """
    p = patch - patch.mean()
    f = np.fft.fft2(p, s=(2 * p.shape[0], 2 * p.shape[1]))
    ac = np.fft.fftshift(np.fft.ifft2(np.abs(f) ** 2).real)
    ac /= ac.max()
    cy, cx = np.array(ac.shape) // 2

    def width(line: np.ndarray, c: int) -> int:
        k = 0
        while c + k + 1 < len(line) and line[c + k + 1] > 0.5:
            k += 1
        return 2 * k + 1

    return width(ac[:, cx], cy), width(ac[cy, :], cx)


def _summary(v: np.ndarray) -> dict[str, Any]:
    h, _ = np.histogram(v, _BINS)
    return {
        "pixels": int(v.size),
        "mean": round(float(v.mean()), 2),
        "std": round(float(v.std()), 2),
        "q05_25_50_75_95": [round(float(q), 1) for q in np.percentile(v, [5, 25, 50, 75, 95])],
        "hist32": [round(float(x), 5) for x in h / h.sum()],
    }


def polar_stats(images: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, Any]:
    """Measure display images the reference way (see module docstring).

    Args:
        images: ``N`` frames, each ``(H, H)`` uint8 (or float in 0-255) display images.
        labels: matching ``(H, H)`` tissue-id label maps.

    Returns:
        A dict in the format of ``real_20mhz_vh.json``.
    """
    if len(images) != len(labels) or not images:
        raise ValueError(f"need matching non-empty image/label lists, got {len(images)} and {len(labels)}")
    vals: dict[str, list[np.ndarray]] = {k: [] for k in [*STAT_TISSUES, LUMEN_FAR]}
    radial, fw_t, fw_r, snr = [], [], [], []
    for img_c, lab_c in zip(images, labels, strict=True):
        img = reference_polar(np.asarray(img_c, dtype=np.float64))
        lab = reference_polar(np.asarray(lab_c, dtype=np.uint8), Interp.NEAREST).astype(np.int64)
        lab_e = {k: ndimage.binary_erosion(lab == i, iterations=1) for k, i in STAT_TISSUES.items()}
        for k in STAT_TISSUES:
            if lab_e[k].any():
                vals[k].append(img[lab_e[k]])
        far = lab_e["lumen"].copy()
        far[:, : int(0.2 * N_R)] = False
        if far.any():
            vals[LUMEN_FAR].append(img[far])
        radial.append(img.mean(0))
        m = lab_e["perivascular"]
        for t0 in range(0, N_THETA - 32, 24):
            for r0 in range(0, N_R - 32, 16):
                if m[t0:t0 + 32, r0:r0 + 32].all():
                    patch = img[t0:t0 + 32, r0:r0 + 32]
                    if patch.std() > 1:
                        a, b = autocorr_fwhm(patch)
                        fw_t.append(a)
                        fw_r.append(b)
                        snr.append(patch.mean() / patch.std())
    out: dict[str, Any] = {"frames": len(images), "tissues": {}}
    for k, v_list in vals.items():
        if v_list:
            out["tissues"][k] = _summary(np.concatenate(v_list))
    rp = np.mean(radial, 0)
    out["radial_profile_10"] = [round(float(x), 2) for x in rp.reshape(10, -1).mean(1)]
    if fw_t:
        out["speckle_perivascular"] = {
            "patches": len(fw_t),
            "fwhm_theta_px_of_360": round(float(np.median(fw_t)), 2),
            "fwhm_r_px_of_160": round(float(np.median(fw_r)), 2),
            "snr_mean_over_std": round(float(np.median(snr)), 3),
        }
    return out


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint) of two histograms."""
    pa, qa = np.asarray(p, dtype=np.float64) + 1e-12, np.asarray(q, dtype=np.float64) + 1e-12
    pa, qa = pa / pa.sum(), qa / qa.sum()
    m = (pa + qa) / 2
    return float(0.5 * np.sum(pa * np.log2(pa / m)) + 0.5 * np.sum(qa * np.log2(qa / m)))


def compare_stats(stats: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Compare measured ``stats`` with ``reference`` figures (both in :func:`polar_stats` format).

    Returns per-tissue JS divergence and mean/std/quantile differences (simulated - reference),
    the pixel-weighted JS (weights = reference pixel counts), the max JS over tissues with at
    least :data:`MIN_PIXELS_FOR_MAX` reference pixels, the radial-profile mean absolute difference
    (``radial_profile_l1``) and the speckle figures side by side.
    """
    per: dict[str, dict[str, Any]] = {}
    for name, ref in reference["tissues"].items():
        sim = stats["tissues"].get(name)
        if sim is None:
            continue
        per[name] = {
            "js": round(js_divergence(ref["hist32"], sim["hist32"]), 4),
            "mean_ref": ref["mean"], "mean_sim": sim["mean"], "mean_diff": round(sim["mean"] - ref["mean"], 2),
            "std_ref": ref["std"], "std_sim": sim["std"], "std_diff": round(sim["std"] - ref["std"], 2),
            "quantile_diff": [round(a - b, 1) for a, b in zip(sim["q05_25_50_75_95"], ref["q05_25_50_75_95"],
                                                              strict=True)],
            "ref_pixels": ref["pixels"],
        }
    w = {n: reference["tissues"][n]["pixels"] for n in per}
    big = [v["js"] for n, v in per.items() if w[n] >= MIN_PIXELS_FOR_MAX]
    out: dict[str, Any] = {
        "tissue_js_weighted": round(sum(per[n]["js"] * w[n] for n in per) / max(sum(w.values()), 1), 4) if per
        else None,
        "tissue_js_max": max(big) if big else None,
        "tissues": per,
        "radial_profile_l1": round(float(np.mean(np.abs(np.array(stats["radial_profile_10"]) -
                                                        np.array(reference["radial_profile_10"])))), 2),
        "radial_profile_sim": stats["radial_profile_10"],
        "radial_profile_ref": reference["radial_profile_10"],
        "speckle_sim": stats.get("speckle_perivascular"),
        "speckle_ref": reference.get("speckle_perivascular"),
    }
    return out


def load_reference_stats(path: str | Path | None = None) -> dict[str, Any]:
    """Load reference figures (default: the shipped real 20 MHz VH-IVUS figures).

    Raises:
        IvusSimError: the file is not UTF-8 JSON holding ``tissues`` and ``radial_profile_10`` (one line,
            naming the file).
    """
    if path is None:
        text = resources.files("ivus_sim.metrics").joinpath("real_20mhz_vh.json").read_text()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise IvusSimError(f"{path}: not a reference-statistics file (not UTF-8 JSON text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise IvusSimError(f"{path}: not a reference-statistics file (invalid JSON at line {e.lineno})") from None
    if not isinstance(data, dict) or "tissues" not in data or "radial_profile_10" not in data:
        raise IvusSimError(f"{path}: not a reference-statistics file (needs 'tissues' and 'radial_profile_10')")
    return data
