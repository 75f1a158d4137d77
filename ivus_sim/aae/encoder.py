"""The AAE encoder q(z | x, c): a target image and its condition -> a low-dimensional code.

A deterministic encoder as in Makhzani et al. (arXiv 1511.05644, section 2): strided polar
convolutions, global average pooling and a linear head. No normalisation layers: per-sample
normalisation would erase exactly the global properties (gain, contrast) the code must carry. The latent discriminator
(:mod:`ivus_sim.aae.latent_discriminator`) shapes the distribution of its codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ivus_sim.aae.layers import PolarConv2d

__all__ = ["Encoder"]


class Encoder(nn.Module):
    """Conditional encoder ``(target, condition) -> z``.

    Args:
        in_channels: channels of ``cat([target, condition])``.
        z_dim: latent code size.
        channels: feature channels of each stride-2 stage (the input sides must be divisible by
            ``2 ** len(channels)``).

    Shapes: ``x (B, in_channels, A, S)`` -> ``z (B, z_dim)``.
    """

    def __init__(self, in_channels: int, z_dim: int = 8, channels: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in channels:
            layers += [PolarConv2d(c_in, c, 3, stride=2), nn.LeakyReLU(0.2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, z_dim)
        self.z_dim = z_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.head(h.mean(dim=(-2, -1)))
