"""Step: log compression to display values.

``d = clip((20 log10(e) + gain_db + DR) / DR, 0, 1)``: an envelope of ``-gain_db`` dB maps to white,
``DR`` dB below that to black. For a mean *power* map (echogenicity) the expected log of a
Rayleigh envelope is used: ``E[20 log10 e] = 10 log10 E[e^2] - 2.51 dB`` (Euler-Mascheroni term,
``10 log10(e) x gamma = 2.507 dB``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["log_compress", "log_compress_power", "RAYLEIGH_LOG_BIAS_DB"]

#: E[20 log10 R] - 10 log10 E[R^2] for a Rayleigh envelope R [dB]
RAYLEIGH_LOG_BIAS_DB = -10 * math.log10(math.e) * 0.5772156649015329


def log_compress(env: torch.Tensor, gain_db: float, dynamic_range_db: float) -> torch.Tensor:
    """Display values in ``[0, 1]`` from an envelope (amplitude) ``(B, A, S)``."""
    db = 20 * torch.log10(env.clamp_min(1e-12)) + gain_db
    return ((db + dynamic_range_db) / dynamic_range_db).clamp(0.0, 1.0)


def log_compress_power(power: torch.Tensor, gain_db: float, dynamic_range_db: float) -> torch.Tensor:
    """Display value of the mean log-compressed Rayleigh speckle of mean power ``power``."""
    db = 10 * torch.log10(power.clamp_min(1e-24)) + RAYLEIGH_LOG_BIAS_DB + gain_db
    return ((db + dynamic_range_db) / dynamic_range_db).clamp(0.0, 1.0)
