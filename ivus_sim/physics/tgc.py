"""Step: time-gain compensation (TGC).

A linear-in-depth amplitude gain (dB) partially compensates attenuation, as set on the scanner:
``G(z) = tgc_db_per_cm x max(z - tgc_start_mm, 0) / 10`` dB.
"""

from __future__ import annotations

import torch

from ivus_sim.config import Processing
from ivus_sim.physics.grid import PolarGrid

__all__ = ["tgc_gain", "tgc_gain_db"]


def tgc_gain_db(depth_mm: torch.Tensor, tgc_db_per_cm: float | torch.Tensor,
                tgc_start_mm: float | torch.Tensor) -> torch.Tensor:
    """TGC in dB at ``depth_mm`` (differentiable; tensor settings broadcast, e.g. ``(B, 1)`` x ``(S,)``)."""
    return tgc_db_per_cm * (depth_mm - tgc_start_mm).clamp_min(0.0) / 10


def tgc_gain(processing: Processing, grid: PolarGrid, device: str | torch.device = "cpu") -> torch.Tensor:
    """Amplitude gain ``(S,)`` float32 along depth."""
    db = tgc_gain_db(grid.depths_mm(device), processing.tgc_db_per_cm, processing.tgc_start_mm)
    return (10 ** (db / 20)).float()
