"""Step (optional): non-uniform rotational distortion (NURD).

Mechanical catheters do not rotate at a uniform speed (drive-shaft friction), so the A-lines
are displayed at the wrong angles: a smooth, periodic warp ``theta' = theta + s(theta)`` with
``s(theta) = sum_k a_k sin(k theta + phi_k)``, ``k = 1..harmonics``. The amplitudes are scaled so
the warp's standard deviation is ``max_shift_deg``; they are sampled with numpy (recorded in the
parameters) and applied to the polar image by linear interpolation along the angle axis.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ivus_sim.config import Nurd

__all__ = ["sample_nurd", "apply_nurd"]


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
