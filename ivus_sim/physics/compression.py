"""Step: log compression to display values.

``d = clip((20 log10(e) + gain_db + DR) / DR, 0, 1)``: an envelope of ``-gain_db`` dB maps to white,
``DR`` dB below that to black. For a mean *power* map (echogenicity) the expected log of a
Rayleigh envelope is used: ``E[20 log10 e] = 10 log10 E[e^2] - 2.51 dB`` (Euler-Mascheroni term,
``10 log10(e) x gamma = 2.507 dB``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["log_compress", "log_compress_power", "display_to_power_db", "RAYLEIGH_LOG_BIAS_DB"]

Scalar = float | torch.Tensor

#: E[20 log10 R] - 10 log10 E[R^2] for a Rayleigh envelope R [dB]
RAYLEIGH_LOG_BIAS_DB = -10 * math.log10(math.e) * 0.5772156649015329


def log_compress(env: torch.Tensor, gain_db: Scalar, dynamic_range_db: Scalar, clip: bool = True) -> torch.Tensor:
    """Display values in ``[0, 1]`` from an envelope (amplitude) ``(B, A, S)``.

    ``gain_db`` / ``dynamic_range_db`` are floats or tensors broadcastable to ``env`` (per-image
    learned settings, e.g. ``(B, 1, 1)``); differentiable. ``clip=False`` leaves values outside
    ``[0, 1]`` (for a later residual and a final clip).
    """
    db = 20 * torch.log10(env.clamp_min(1e-12)) + gain_db
    d = (db + dynamic_range_db) / dynamic_range_db
    return d.clamp(0.0, 1.0) if clip else d


def log_compress_power(power: torch.Tensor, gain_db: Scalar, dynamic_range_db: Scalar) -> torch.Tensor:
    """Display value of the mean log-compressed Rayleigh speckle of mean power ``power``."""
    db = 10 * torch.log10(power.clamp_min(1e-24)) + RAYLEIGH_LOG_BIAS_DB + gain_db
    return ((db + dynamic_range_db) / dynamic_range_db).clamp(0.0, 1.0)


def display_to_power_db(display: torch.Tensor, gain_db: Scalar, dynamic_range_db: Scalar) -> torch.Tensor:
    """Inverse of :func:`log_compress_power` (without the clip): mean echo power ``10 log10 E[e^2]`` [dB].

    A mean display value ``d`` of log-compressed Rayleigh speckle comes from
    ``10 log10 P = d DR - DR - gain - RAYLEIGH_LOG_BIAS_DB``.
    """
    return display * dynamic_range_db - dynamic_range_db - gain_db - RAYLEIGH_LOG_BIAS_DB
