"""Step: time-gain compensation (TGC).

A linear-in-depth amplitude gain (dB) partially compensates attenuation, as set on the scanner:
``G(z) = tgc_db_per_cm x max(z - tgc_start_mm, 0) / 10`` dB.
"""

from __future__ import annotations

import torch

from ivus_sim.config import Processing
from ivus_sim.physics.grid import PolarGrid

__all__ = ["tgc_gain"]


def tgc_gain(processing: Processing, grid: PolarGrid, device: str | torch.device = "cpu") -> torch.Tensor:
    """Amplitude gain ``(S,)`` float32 along depth."""
    z = grid.depths_mm(device)
    db = processing.tgc_db_per_cm * (z - processing.tgc_start_mm).clamp_min(0.0) / 10
    return (10 ** (db / 20)).float()
