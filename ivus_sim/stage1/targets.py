"""Stage-1 training targets: the local mean intensity of a real (or simulated) image.

Given a pair (label map, image), the stage-1 target is a *tissue-aware despeckling* of the
image in the polar domain: a normalised convolution (Knutsson & Westin, CVPR 1993) restricted
to each tissue, i.e. at a sample of tissue t,

    mean(a, s) = sum_{a', s' in t} G(a - a', s - s') I(a', s') / sum_{a', s' in t} G(a - a', s - s'),

with an anisotropic Gaussian G (``sigma_angle`` A-lines laterally, ``sigma_depth`` samples
axially; circular along angles). Averaging only within a tissue keeps tissue boundaries sharp
while removing the speckle; the moderate axial width keeps depth trends (attenuation, shadows
behind calcium) in the target. No annotation beyond the label map is needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ivus_sim.aae.condition import N_CLASSES, class_index

__all__ = ["gaussian_kernel1d", "despeckle"]


def gaussian_kernel1d(sigma: float, truncate: float = 3.0) -> torch.Tensor:
    """Normalised 1-D Gaussian ``(2r + 1,)`` with ``r = ceil(truncate * sigma)``."""
    r = max(1, math.ceil(truncate * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / max(sigma, 1e-6)) ** 2)
    return k / k.sum()


def _blur(x: torch.Tensor, sigma_angle: float, sigma_depth: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, A, S)``: circular along angles, zero-padded along depth.

    Zero padding is right for normalised convolution: numerator and weights are padded alike.
    """
    c = x.shape[1]
    ka = gaussian_kernel1d(sigma_angle).to(x)
    ks = gaussian_kernel1d(sigma_depth).to(x)
    ra, rs = ka.numel() // 2, ks.numel() // 2
    n_a = x.shape[-2]
    reps = ra // n_a + 1
    xa = torch.cat([x] * (2 * reps + 1), dim=-2)[..., reps * n_a - ra: reps * n_a + n_a + ra, :]
    x = F.conv2d(xa, ka.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    x = F.conv2d(F.pad(x, (rs, rs, 0, 0)), ks.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return x


def despeckle(image: torch.Tensor, labels: torch.Tensor, sigma_angle: float = 3.0,
              sigma_depth: float = 2.0) -> torch.Tensor:
    """Tissue-aware local mean of polar images.

    Args:
        image: ``(B, A, S)`` or ``(B, 1, A, S)`` float intensities (any range).
        labels: ``(B, A, S)`` tissue ids on the same polar grid.
        sigma_angle: lateral Gaussian width [A-lines].
        sigma_depth: axial Gaussian width [depth samples].

    Returns:
        the local mean, same shape as ``image``; within a tissue it is a weighted average of that
        tissue's pixels only (a constant image stays constant; boundaries stay sharp).
    """
    squeeze = image.dim() == 3
    img = image[:, None] if squeeze else image
    idx = class_index(labels)  # (B, A, S)
    masks = F.one_hot(idx, N_CLASSES).permute(0, 3, 1, 2).to(img.dtype)  # (B, K, A, S)
    num = _blur(masks * img, sigma_angle, sigma_depth)
    den = _blur(masks, sigma_angle, sigma_depth)
    per_class = num / den.clamp_min(1e-8)
    out = (per_class * masks).sum(1, keepdim=True)
    return out[:, 0] if squeeze else out
