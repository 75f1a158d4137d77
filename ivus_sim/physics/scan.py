"""Step: scan conversion (polar A-lines -> Cartesian display grid).

The RF grid is finer in depth than the output pixels, so the envelope is first averaged over
``q`` consecutive samples (box decimation, as a scanner decimates before display), then
resampled with :func:`ivus_sim.geometry.polar_to_cart` (bilinear, circular in angle).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F

from ivus_sim.geometry import Interp, polar_to_cart

__all__ = ["decimation_factor", "decimate_depth", "scan_convert"]


def decimation_factor(n_samples: int, size: int) -> int:
    """Depth decimation keeping at least ``size`` samples (two per output pixel of radius)."""
    return max(1, n_samples // max(size, 1))


def decimate_depth(x: torch.Tensor, q: int) -> torch.Tensor:
    """Average ``(B, A, S)`` over ``q`` consecutive depth samples -> ``(B, A, S // q)``."""
    if q <= 1:
        return x
    s = (x.shape[-1] // q) * q
    return F.avg_pool1d(x[..., :s].reshape(-1, 1, s), q).reshape(*x.shape[:-1], s // q)


def scan_convert(polar: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear scan conversion ``(B, A, S)`` -> ``(B, size, size)`` (0 outside the FOV disc)."""
    return cast(torch.Tensor, polar_to_cart(polar, size, Interp.BILINEAR, outside=0.0))
