"""Step: envelope detection.

The envelope is the modulus of the analytic signal ``rf + i H{rf}`` (Hilbert transform), formed
in :meth:`ivus_sim.physics.psf.Psf.analytic_rf`. For fully developed speckle it is Rayleigh
distributed (mean/std = sqrt(pi / (4 - pi)) = 1.91).
"""

from __future__ import annotations

import torch

__all__ = ["envelope"]


def envelope(analytic: torch.Tensor) -> torch.Tensor:
    """Envelope ``|analytic|`` ``(B, A, S)`` float32 of a complex analytic RF signal."""
    ri = torch.view_as_real(analytic)
    return (ri[..., 0] ** 2 + ri[..., 1] ** 2).sqrt()
