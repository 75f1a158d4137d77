"""Speckle statistics per tissue: first-order (mean/std, Nakagami) and second-order (speckle size).

Measured in the polar measurement frame (:mod:`ivus_sim.metrics.imageset`) on square
patches (``patch x patch`` angle x depth samples, stepped by ``step``) lying wholly inside one
eroded tissue mask, on display values scaled to [0, 1]:

* ``mean_over_std``: patch mean / std (median over patches). For a fully developed speckle
  *envelope* this is 1.91 (Rayleigh); display values are log-compressed, so compare like with like.
* Nakagami ``m`` (shape) and ``omega`` (spread, = E[x^2]) by the moment estimator
  ``omega = E[x^2]``, ``m = omega^2 / Var(x^2)`` (Nakagami 1960; Shankar 2000, "A general
  statistical model for ultrasonic backscattering from tissues", IEEE TUFFC 47(3)), per patch
  (median over patches) and pooled over the whole tissue. ``m = 1``: Rayleigh (fully developed
  speckle); ``m < 1``: pre-Rayleigh (few scatterers, K-distributed); ``m > 1``: Rician (a
  coherent component, e.g. specular reflectors).
* speckle size: full width at half maximum of the 2-D autocorrelation of the mean-removed
  patch, along the angle axis (``fwhm_angle_px``, out of 360) and along the A-line / depth axis
  (``fwhm_depth_px``, out of 160), linearly interpolated at the half-maximum crossing (median
  over patches), plus the mean autocorrelation profiles for plots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "NakagamiFit",
    "SpeckleConfig",
    "nakagami_moments",
    "autocorrelation",
    "fwhm",
    "select_patches",
    "speckle_stats",
    "compare_speckle",
]


@dataclass(frozen=True)
class NakagamiFit:
    """Nakagami parameters: ``m`` shape (>= 0.5 for a true Nakagami), ``omega`` = E[x^2] (units of x^2)."""

    m: float
    omega: float


@dataclass(frozen=True)
class SpeckleConfig:
    """Where speckle is measured.

    Args:
        patch: patch side in polar samples (angle x depth).
        step: patch stride in samples.
        min_std: patches whose display std (0-255 scale) is below this are skipped (flat areas).
        max_patches: at most this many patches per tissue (evenly spaced subset), to bound run time.
    """

    patch: int = 16
    step: int = 8
    min_std: float = 1.0
    max_patches: int = 4000


def nakagami_moments(x: np.ndarray) -> NakagamiFit:
    """Moment estimator of the Nakagami distribution.

    Args:
        x: samples of a non-negative amplitude, any shape.

    Returns:
        :class:`NakagamiFit` with ``omega = E[x^2]`` and ``m = omega^2 / Var(x^2)``
        (``m = inf`` for constant input).

    >>> from ivus_sim.seeding import rng
    >>> round(nakagami_moments(rng(0, "doc").rayleigh(size=200_000)).m, 1)
    1.0
    """
    x2 = np.asarray(x, dtype=np.float64).ravel() ** 2
    if x2.size < 2:
        raise ValueError("need at least two samples for a Nakagami fit")
    omega = float(x2.mean())
    var = float(x2.var())
    return NakagamiFit(m=omega**2 / var if var > 0 else float("inf"), omega=omega)


def autocorrelation(patches: np.ndarray) -> np.ndarray:
    """Normalised 2-D autocorrelation of mean-removed patches (zero-padded, so not circular).

    Args:
        patches: ``(..., h, w)``.

    Returns:
        ``(..., 2h, 2w)`` with the zero lag at ``(h, w)`` equal to 1.
    """
    p = np.asarray(patches, dtype=np.float64)
    p = p - p.mean(axis=(-2, -1), keepdims=True)
    h, w = p.shape[-2:]
    f = np.fft.fft2(p, s=(2 * h, 2 * w))
    ac = np.fft.fftshift(np.fft.ifft2(np.abs(f) ** 2).real, axes=(-2, -1))
    zero = ac[..., h, w][..., None, None]
    return np.divide(ac, zero, out=np.zeros_like(ac), where=zero > 0)


def fwhm(profile: np.ndarray) -> float:
    """Full width at half maximum of a symmetric profile given from its peak outwards.

    Args:
        profile: ``(n,)`` one-sided profile, ``profile[0]`` the (normalised) maximum.

    Returns:
        ``2 x`` the interpolated lag where the profile first falls to half its maximum
        [samples] (``2 (n - 1)`` when it never does).
    """
    p = np.asarray(profile, dtype=np.float64)
    half = p[0] / 2
    below = np.nonzero(p <= half)[0]
    if below.size == 0:
        return float(2 * (p.size - 1))
    k = int(below[0])
    x = (k - 1) + (p[k - 1] - half) / (p[k - 1] - p[k])
    return float(2 * x)


def select_patches(mask: np.ndarray, config: SpeckleConfig) -> np.ndarray:
    """Top-left corners of patches wholly inside a mask.

    Args:
        mask: ``(F, A, S)`` bool.
        config: patch size and stride.

    Returns:
        ``(P, 3)`` int array of (frame, angle, depth) corners.
    """
    p, s = config.patch, config.step
    if mask.shape[-2] < p or mask.shape[-1] < p:
        return np.zeros((0, 3), dtype=np.int64)
    win = sliding_window_view(mask, (p, p), axis=(-2, -1))[:, ::s, ::s]
    inside = win.all(axis=(-2, -1))
    f, a, d = np.nonzero(inside)
    return np.stack([f, a * s, d * s], 1).astype(np.int64)


def _stats_of(values: np.ndarray, patches: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"pixels": int(values.size), "patches": int(patches.shape[0])}
    pooled = nakagami_moments(values / 255.0) if values.size >= 2 else None
    out["nakagami_m_pooled"] = pooled.m if pooled else None
    out["nakagami_omega_pooled"] = pooled.omega if pooled else None
    if patches.shape[0] == 0:
        out.update(mean_over_std=None, nakagami_m=None, nakagami_omega=None, fwhm_angle_px=None,
                   fwhm_depth_px=None, ac_angle=None, ac_depth=None)
        return out
    x = patches / 255.0
    mean = x.mean(axis=(-2, -1))
    std = x.std(axis=(-2, -1))
    x2 = (x**2).reshape(x.shape[0], -1)
    omega = x2.mean(1)
    var2 = x2.var(1)
    m = np.where(var2 > 0, omega**2 / np.where(var2 > 0, var2, 1.0), np.inf)
    ac = autocorrelation(patches)
    h, w = patches.shape[-2:]
    ac_angle = ac[:, h:, w]  # lags 0..h-1 along the angle axis
    ac_depth = ac[:, h, w:]  # lags 0..w-1 along depth (A-line)
    fw_a = [fwhm(r) for r in ac_angle]
    fw_d = [fwhm(r) for r in ac_depth]
    out.update(
        mean_over_std=float(np.median(mean / std)),
        nakagami_m=float(np.median(m)),
        nakagami_omega=float(np.median(omega)),
        fwhm_angle_px=float(np.median(fw_a)),
        fwhm_depth_px=float(np.median(fw_d)),
        ac_angle=ac_angle.mean(0).tolist(),
        ac_depth=ac_depth.mean(0).tolist(),
    )
    return out


def speckle_stats(images: np.ndarray, masks: dict[str, np.ndarray],
                  config: SpeckleConfig | None = None) -> dict[str, dict[str, Any]]:
    """Speckle statistics of every tissue.

    Args:
        images: ``(F, A, S)`` polar display values [0, 255].
        masks: tissue name -> ``(F, A, S)`` eroded mask (:func:`ivus_sim.metrics.imageset.tissue_masks`).
        config: patch geometry.

    Returns:
        Tissue name -> ``{pixels, patches, mean_over_std, nakagami_m, nakagami_omega,
        nakagami_m_pooled, nakagami_omega_pooled, fwhm_angle_px, fwhm_depth_px, ac_angle, ac_depth}``
        (patch figures ``None`` where no patch fits inside the tissue).
    """
    cfg = config or SpeckleConfig()
    out: dict[str, dict[str, Any]] = {}
    p = cfg.patch
    for name, mask in masks.items():
        corners = select_patches(mask, cfg)
        if corners.shape[0]:
            patches = np.stack([images[f, a:a + p, d:d + p] for f, a, d in corners])
            keep = patches.std(axis=(-2, -1)) > cfg.min_std
            patches = patches[keep]
            if patches.shape[0] > cfg.max_patches:
                idx = np.linspace(0, patches.shape[0] - 1, cfg.max_patches).round().astype(np.int64)
                patches = patches[idx]
        else:
            patches = np.zeros((0, p, p))
        out[name] = _stats_of(images[mask], patches)
    return out


def compare_speckle(real: dict[str, dict[str, Any]], fake: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Side-by-side speckle figures and fake/real ratios per tissue.

    Returns:
        ``{"tissues": {name: {"real": ..., "fake": ..., "ratio": {figure: fake/real}}},
        "mean_abs_log_ratio": ...}``; the summary is the mean over tissues and figures of
        ``|ln(fake / real)|`` (0 = identical speckle statistics).
    """
    keys = ("mean_over_std", "nakagami_m", "fwhm_angle_px", "fwhm_depth_px")
    per: dict[str, Any] = {}
    logs: list[float] = []
    for name in real:
        if name not in fake:
            continue
        ratio: dict[str, float | None] = {}
        for k in keys:
            r, f = real[name].get(k), fake[name].get(k)
            if r is None or f is None or not np.isfinite(r) or not np.isfinite(f) or r <= 0 or f <= 0:
                ratio[k] = None
                continue
            ratio[k] = float(f / r)
            logs.append(abs(float(np.log(f / r))))
        per[name] = {"real": real[name], "fake": fake[name], "ratio": ratio}
    return {"tissues": per, "mean_abs_log_ratio": float(np.mean(logs)) if logs else None}
