"""Step: envelope detection.

The envelope is the modulus of the analytic signal ``rf + i H{rf}`` (Hilbert transform), formed
in :meth:`ivus_sim.physics.psf.Psf.analytic_rf`. For fully developed speckle it is Rayleigh
distributed (mean/std = sqrt(pi / (4 - pi)) = 1.91).
"""

from __future__ import annotations

import torch

__all__ = ["envelope"]


def envelope(analytic: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Envelope ``|analytic|`` ``(..., A, S)`` of a complex analytic (or baseband IQ) signal.

    ``eps`` (power units) is added under the square root: 0 for the engine (exact modulus); a tiny
    value keeps the gradient finite where the signal vanishes (the learned stage 2 trains through it).
    """
    ri = torch.view_as_real(analytic)
    p = ri[..., 0] ** 2 + ri[..., 1] ** 2
    return (p + eps).sqrt() if eps else p.sqrt()
