"""Step: log compression to display values.

``d = clip((20 log10(e) + gain_db + DR) / DR, 0, 1)``: an envelope of ``-gain_db`` dB maps to white,
``DR`` dB below that to black. For a mean *power* map (echogenicity) the expected log of a
Rayleigh envelope is used: ``E[20 log10 e] = 10 log10 E[e^2] - 2.51 dB`` (Euler-Mascheroni term,
``10 log10(e) x gamma = 2.507 dB``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["log_compress", "log_compress_power", "display_to_power_db", "clipped_display_to_power_db",
           "RAYLEIGH_LOG_BIAS_DB"]

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


def _clip_table() -> tuple[torch.Tensor, torch.Tensor]:
    """``g(a) = E[max(a + x, 0)]`` [dB] on a grid of ``a`` [dB], ``x = 10 log10 E``, ``E ~ Exp(1)``.

    ``a + x`` is the log-compressed Rayleigh speckle (in dB above black) of a region whose mean power
    sits ``a`` dB above black (before the -2.51 dB log bias); ``g`` is its mean after the clip at black.
    """
    u = (torch.arange(4096, dtype=torch.float64) + 0.5) / 4096  # quantiles of E ~ Exp(1)
    x = 10 * torch.log10(-torch.log1p(-u))  # ascending
    a = torch.linspace(-60.0, 120.0, 1441, dtype=torch.float64)
    # mean over x of max(a + x, 0) = (n_above * a + sum of the x above -a) / n, by suffix sums (fast at import)
    tail = torch.cat([torch.flip(torch.cumsum(torch.flip(x, [0]), 0), [0]), x.new_zeros(1)])
    k = torch.searchsorted(x, -a, right=True)
    g = ((x.numel() - k) * a + tail[k]) / x.numel()
    return a.float(), g.float()


_A_GRID, _G_GRID = _clip_table()


def clipped_display_to_power_db(display: torch.Tensor, gain_db: Scalar, dynamic_range_db: Scalar) -> torch.Tensor:
    """Like :func:`display_to_power_db` for a mean of display values *clipped at black*.

    A local mean of displayed speckle (e.g. a despeckled image, the learned stage 1's target)
    averages ``max(d, 0)``: in dark regions (noise floor, shadows) it is brighter than the mean of
    the unclipped log, and :func:`display_to_power_db` would overestimate the power. This inverts
    ``m DR = E[max(a + x, 0)]`` (``x`` the log of Rayleigh speckle power in dB) for the level ``a``
    by interpolation in a fixed table (differentiable); where no clipping occurs it equals
    :func:`display_to_power_db`. The clip at white is not modelled.
    """
    a_grid, g_grid = _A_GRID.to(display.device), _G_GRID.to(display.device)
    y = (display * dynamic_range_db).clamp(float(g_grid[0]), float(g_grid[-1]))
    i = torch.searchsorted(g_grid, y.detach().contiguous()).clamp(1, g_grid.numel() - 1)
    g0, g1 = g_grid[i - 1], g_grid[i]
    a = a_grid[i - 1] + (y - g0) / (g1 - g0).clamp_min(1e-9) * (a_grid[i] - a_grid[i - 1])
    return a - dynamic_range_db - gain_db
