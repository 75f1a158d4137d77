"""Speckle-statistics loss for stage 2.

Pixel-wise L1 to one particular speckle realisation pulls a noise-driven generator towards a
blurry median; matching *local statistics* instead rewards the right texture. The loss compares
local mean and local standard deviation maps (box windows of ``window`` samples) of the
generated and target images (cf. the first two moments used to characterise speckle,
Wagner et al., IEEE T-SU 1983) at several scales: at scale ``k`` both images are first
average-pooled by ``k``, so fine-grained noise (which averages out) no longer matches coarse
speckle (which does not) - the grain size, i.e. the speckle correlation length, is matched too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ivus_sim.stage2.decoder import local_box_mean

__all__ = ["local_moments", "speckle_statistics_loss"]


def local_moments(x: torch.Tensor, window: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """Local mean and standard deviation ``(B, 1, A, S)`` over ``window x window`` boxes (circular in
    angle, edge-replicated in depth: :func:`~ivus_sim.stage2.decoder.local_box_mean`)."""
    m = local_box_mean(x, window)
    m2 = local_box_mean(x * x, window)
    return m, (m2 - m * m).clamp_min(1e-8).sqrt()


def speckle_statistics_loss(fake: torch.Tensor, real: torch.Tensor, window: int = 7,
                            scales: tuple[int, ...] = (1, 2, 4)) -> torch.Tensor:
    """Mean over ``scales`` of the L1 between local mean and std maps of ``fake`` and ``real`` ``(B, 1, A, S)``."""
    total = fake.new_zeros(())
    used = 0
    for k in scales:
        if min(fake.shape[-2:]) < k * window // 2:
            continue
        f = F.avg_pool2d(fake, k) if k > 1 else fake
        r = F.avg_pool2d(real, k) if k > 1 else real
        mf, sf = local_moments(f, window)
        mr, sr = local_moments(r, window)
        total = total + (mf - mr).abs().mean() + (sf - sr).abs().mean()
        used += 1
    return total / max(used, 1)
