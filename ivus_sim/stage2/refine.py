"""Multi-scale refinement of the formed image: what the formation model misses.

A small U-Net on the polar grid (plain torch; circular padding along the angle axis, so there is
no seam at A-line 0). Its input is the formed display, the stage-1 mean (and optional noise),
folded 2 x 2 into channels (pixel unshuffle), plus the label condition (one-hot, depth, cumulative
tissue in front of each sample); the condition is average-pooled and injected again at every
scale (as SPADE injects the label map at every resolution, Park et al. CVPR 2019). Four scales
(1/2 ... 1/16) give a receptive field of about 100 samples along depth and 100 A-lines, which with
the cumulative-tissue channels covers shadows, reverberation, ring-down and the catheter. The
residual-texture part of z2 modulates the coarsest features (FiLM). The residual added to the
formed display is a half-resolution map upsampled bilinearly (circular along angles; no
sub-pixel shuffling, which adversarial training turns into a checkerboard) plus one full-resolution
3x3 filter of the formed display, the mean and the noise (sharpening or local contrast). Both
last convolutions are zero-initialised, so an untrained refinement changes nothing. Working from
half resolution keeps it cheap: the speckle itself comes from the formation layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ivus_sim.aae.layers import FiLM, PolarConv2d, polar_pad

__all__ = ["RefineNet"]


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class RefineNet(nn.Module):
    """Residual refinement U-Net.

    Args:
        in_channels: full-resolution image channels (formed display, mean, noise), unshuffled 2 x 2.
        cond_channels: channels of the label condition (given at half resolution, pooled further).
        z_dim: size of the residual-texture code (0: none).
        channels: widths per scale from 1/2 resolution down (sides divisible by ``2 ** len``).

    Shapes: ``x (B, in_channels, A, S)``, ``cond_half (B, cond_channels, A/2, S/2)``,
    ``z (B, z_dim)`` -> residual ``(B, 1, A, S)``.
    """

    def __init__(self, in_channels: int, cond_channels: int, z_dim: int = 0,
                 channels: Sequence[int] = (12, 24, 32, 48)) -> None:
        super().__init__()
        ch = list(channels)
        if len(ch) < 2:
            raise ValueError("RefineNet needs at least two scales")
        self.inp = nn.Conv2d(4 * in_channels + cond_channels, ch[0], 1)
        self.inp3 = PolarConv2d(ch[0], ch[0], 3)
        self.down = nn.ModuleList(PolarConv2d(ch[i], ch[i + 1], 3, stride=2) for i in range(len(ch) - 1))
        self.merge = nn.ModuleList(nn.Conv2d(ch[i + 1] + cond_channels, ch[i + 1], 1) for i in range(len(ch) - 1))
        self.bottom = PolarConv2d(ch[-1], ch[-1], 3)
        self.z_dim = z_dim
        self.film = FiLM(z_dim, ch[-1]) if z_dim > 0 else None
        # decoder: 1x1 merge of the upsampled features with the skip, then a 3x3 (not at 1/2: the head is 3x3)
        self.up_merge = nn.ModuleList(nn.Conv2d(ch[i + 1] + ch[i], ch[i], 1) for i in reversed(range(len(ch) - 1)))
        self.up_conv = nn.ModuleList(PolarConv2d(ch[i], ch[i], 3) for i in reversed(range(1, len(ch) - 1)))
        self.out = PolarConv2d(ch[0], 1, 3)
        nn.init.zeros_(self.out.conv.weight)
        nn.init.zeros_(self.out.conv.bias)  # type: ignore[arg-type]
        self.local = PolarConv2d(in_channels, 1, 3)
        nn.init.zeros_(self.local.conv.weight)
        nn.init.zeros_(self.local.conv.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, cond_half: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        h = _act(self.inp(torch.cat([F.pixel_unshuffle(x, 2), cond_half], 1)))
        h = _act(self.inp3(h))
        skips = [h]
        c = cond_half
        for down, merge in zip(self.down, self.merge, strict=True):
            c = F.avg_pool2d(c, 2)
            h = _act(merge(torch.cat([_act(down(h)), c], 1)))
            skips.append(h)
        h = _act(self.bottom(skips.pop()))
        if self.film is not None and z is not None:
            h = self.film(h, z)
        for i, merge in enumerate(self.up_merge):
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = _act(merge(torch.cat([h, skip], 1)))
            if i < len(self.up_conv):
                h = _act(self.up_conv[i](h))
        res = polar_pad(self.out(h), 1, 0)  # circular context for the interpolation
        a, s = x.shape[-2:]
        res = F.interpolate(res, size=(a + 4, s), mode="bilinear", align_corners=False)[..., 2:-2, :]
        return res + self.local(x)
