"""Stage 1 decoder: polar label condition + code z1 -> mean intensity (echogenicity, no speckle).

A small U-Net on the polar grid (A-line x depth) with circular padding along angles; the code
z1 modulates every decoder block through FiLM (AdaIN-like), and is also broadcast as extra
channels at the bottleneck. Depth effects (attenuation, the shadow behind calcium) are learned
from the targets with the help of the depth and cumulative-tissue condition channels
(:mod:`ivus_sim.aae.condition`). Output in [0, 1] through a sigmoid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ivus_sim.aae.condition import N_CLASSES
from ivus_sim.aae.layers import FiLM, PolarConv2d
from ivus_sim.stage1.transmission import LearnedTransmission

__all__ = ["Stage1Decoder"]


class _Block(nn.Module):
    """PolarConv -> GroupNorm -> FiLM(z) -> LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, z_dim: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = PolarConv2d(c_in, c_out, 3, stride=stride)
        self.norm = nn.GroupNorm(math.gcd(8, c_out), c_out)
        self.film = FiLM(z_dim, c_out)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.film(self.norm(self.conv(x)), z), 0.2)


class Stage1Decoder(nn.Module):
    """Label condition + z1 -> mean intensity on the polar grid.

    Args:
        cond_channels: channels of the condition (:data:`ivus_sim.aae.CONDITION_CHANNELS`).
        z_dim: size of z1.
        channels: feature channels per resolution level, first level first; the polar sides
            must be divisible by ``downsample * 2 ** (len(channels) - 1)``.
        downsample: the U-Net runs on the condition average-pooled by this factor (soft tissue
            fractions, anti-aliased) and its output is upsampled bilinearly; the mean intensity is
            smooth, so 2 costs little accuracy and saves ~4x compute.
        transmission: add the Beer-Lambert transmission along each A-line with learned per-tissue
            attenuation (:class:`~ivus_sim.stage1.transmission.LearnedTransmission`) as one more
            input channel, computed from the condition's one-hot channels at full resolution.
            Thin reflectors (guidewire, stent struts) then cast shadows a small U-Net can draw.

    Shapes: ``cond (B, cond_channels, A, S)``, ``z (B, z_dim)`` -> ``(B, 1, A, S)`` in [0, 1].
    """

    def __init__(self, cond_channels: int, z_dim: int = 8, channels: Sequence[int] = (16, 32, 64),
                 downsample: int = 1, transmission: bool = False) -> None:
        super().__init__()
        if downsample < 1:
            raise ValueError(f"downsample must be >= 1, got {downsample}")
        self.downsample = downsample
        ch = list(channels)
        if len(ch) < 2:
            raise ValueError("channels needs at least two levels")
        self.z_dim = z_dim
        self.transmission = LearnedTransmission() if transmission else None
        self.inp = _Block(cond_channels + (1 if transmission else 0), ch[0], z_dim)
        self.down = nn.ModuleList(_Block(ch[i], ch[i + 1], z_dim, stride=2) for i in range(len(ch) - 1))
        self.mid = _Block(ch[-1] + z_dim, ch[-1], z_dim)
        self.up = nn.ModuleList(_Block(ch[i + 1] + ch[i], ch[i], z_dim) for i in reversed(range(len(ch) - 1)))
        self.out = PolarConv2d(ch[0], 1, 3)

    def forward(self, cond: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        full = cond.shape[-2:]
        if self.transmission is not None:
            cond = torch.cat([cond, self.transmission(cond[:, :N_CLASSES])], 1)
        if self.downsample > 1:
            cond = F.avg_pool2d(cond, self.downsample)
        h = self.inp(cond, z)
        skips = [h]
        for blk in self.down:
            h = blk(h, z)
            skips.append(h)
        zmap = z[..., None, None].expand(-1, -1, *h.shape[-2:])
        h = self.mid(torch.cat([h, zmap], 1), z)
        skips.pop()
        for blk in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = blk(torch.cat([h, skip], 1), z)
        out = self.out(h)
        if self.downsample > 1:
            r = 1  # circular context for the angle axis before interpolating
            out = torch.cat([out[..., -r:, :], out, out[..., :r, :]], dim=-2)
            out = F.interpolate(out, scale_factor=self.downsample, mode="bilinear", align_corners=False)
            k = self.downsample * r
            out = out[..., k:-k, :]
            assert out.shape[-2:] == full
        return torch.sigmoid(out)
