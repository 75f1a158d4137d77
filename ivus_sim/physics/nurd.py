"""Step (optional): non-uniform rotational distortion (NURD).

Mechanical catheters do not rotate at a uniform speed (drive-shaft friction), so the A-lines
are displayed at the wrong angles: a smooth, periodic warp ``theta' = theta + s(theta)`` with
``s(theta) = sum_k a_k sin(k theta + phi_k)``, ``k = 1..harmonics``. The amplitudes are scaled so
the warp's standard deviation is ``max_shift_deg``; they are sampled with numpy (recorded in the
parameters) and applied to the polar image by linear interpolation along the angle axis.

The label map a reader would draw on the displayed frame is warped the same way: on a
Cartesian ``(N, N)`` map :func:`warp_cartesian` (nearest neighbour for labels, linear for
images) moves every pixel along its circle to the angle the engine displays it at, so a
segmentation label stays aligned with the distorted image (``augment``, ``corpus``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ivus_sim.config import Nurd

__all__ = ["sample_nurd", "apply_nurd", "nurd_shift", "warp_cartesian"]


def sample_nurd(nurd: Nurd, rng: np.random.Generator) -> dict[str, Any]:
    """Sample warp coefficients: ``{"amplitudes_deg": [...], "phases_rad": [...]}``."""
    k = np.arange(1, nurd.harmonics + 1)
    amp = rng.normal(size=nurd.harmonics) / k
    amp = amp / max(float(np.sqrt(0.5 * np.sum(amp**2))), 1e-9) * nurd.max_shift_deg
    ph = rng.uniform(0, 2 * math.pi, size=nurd.harmonics)
    return {"amplitudes_deg": [float(a) for a in amp], "phases_rad": [float(p) for p in ph]}


def apply_nurd(polar: torch.Tensor, coeffs: dict[str, Any]) -> torch.Tensor:
    """Warp a polar image ``(A, S)`` along angles with the sampled coefficients (circular, linear interp)."""
    a = polar.shape[-2]
    th = torch.arange(a, dtype=torch.float64, device=polar.device) * (2 * math.pi / a)
    shift = torch.zeros_like(th)
    for k, (amp, ph) in enumerate(zip(coeffs["amplitudes_deg"], coeffs["phases_rad"], strict=True), start=1):
        shift = shift + math.radians(amp) * torch.sin(k * th + ph)
    src = (th - shift) / (2 * math.pi / a)  # displayed line k shows the echo acquired at angle src
    i0 = torch.floor(src)
    w = (src - i0).to(polar.dtype)[:, None]
    i0 = i0.long() % a
    i1 = (i0 + 1) % a
    return polar[..., i0, :] * (1 - w) + polar[..., i1, :] * w


def nurd_shift(theta: np.ndarray, coeffs: dict[str, Any]) -> np.ndarray:
    """The warp ``s(theta)`` [rad] at angles ``theta`` [rad] (the law of :func:`apply_nurd`)."""
    shift = np.zeros_like(theta, dtype=np.float64)
    for k, (amp, ph) in enumerate(zip(coeffs["amplitudes_deg"], coeffs["phases_rad"], strict=True), start=1):
        shift = shift + math.radians(amp) * np.sin(k * theta + ph)
    return shift


def warp_cartesian(img: np.ndarray, coeffs: dict[str, Any] | None, *, order: int) -> np.ndarray:
    """Apply a NURD warp to a Cartesian ``(N, N)`` map about the catheter axis.

    The displayed pixel at angle ``theta`` shows what was acquired at ``theta - s(theta)``, as
    :func:`apply_nurd` does on the polar grid (angles as in :mod:`ivus_sim.geometry`:
    ``row = c + r sin(theta)``, ``col = c + r cos(theta)``, ``c = (N - 1) / 2``). Radii are kept, so
    the catheter and the outside of the disc stay where they are.

    Args:
        img: ``(N, N)`` map (label ids, or image values).
        coeffs: the sampled warp (:func:`sample_nurd`); ``None`` returns ``img`` unchanged.
        order: 0 (nearest neighbour: label maps keep their ids) or 1 (bilinear: images).

    Returns:
        The warped ``(N, N)`` map, same dtype as ``img``.
    """
    if coeffs is None:
        return img
    if order not in (0, 1):
        raise ValueError(f"order must be 0 or 1, got {order}")
    from scipy.ndimage import map_coordinates

    n = img.shape[-1]
    c = (n - 1) / 2
    yy, xx = np.mgrid[:n, :n].astype(np.float64)
    th = np.arctan2(yy - c, xx - c)
    r = np.hypot(yy - c, xx - c)
    src = th - nurd_shift(th, coeffs)
    coords = np.stack([c + r * np.sin(src), c + r * np.cos(src)])
    out = map_coordinates(img, coords, order=order, mode="nearest")
    return np.asarray(out, dtype=img.dtype)
