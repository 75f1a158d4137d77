"""Building blocks shared by both stages: polar convolutions and code modulation.

Polar arrays are ``(B, C, n_angles, n_samples)`` (A-line x depth, see :mod:`ivus_sim.geometry`).
The angle axis is circular (A-line ``n_angles - 1`` neighbours A-line 0), so convolutions pad it
circularly; the depth axis is zero-padded inside the convolution (catheter side and far field;
the depth condition channel tells the networks where they are).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PolarConv2d", "FiLM", "polar_pad"]


def polar_pad(x: torch.Tensor, pad_angle: int, pad_depth: int) -> torch.Tensor:
    """Pad ``(B, C, A, S)`` circularly along angles and by replication along depth."""
    if pad_angle:
        x = torch.cat([x[..., -pad_angle:, :], x, x[..., :pad_angle, :]], dim=-2)
    if pad_depth:
        x = F.pad(x, (pad_depth, pad_depth, 0, 0), mode="replicate")
    return x


class PolarConv2d(nn.Module):
    """A 2-D convolution on polar arrays with circular padding along the angle axis.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel side (same along angle and depth).
        stride: stride (1 keeps the shape; 2 halves both axes, which must be even).
        bias: learn a bias.

    Shapes: ``(B, in, A, S)`` -> ``(B, out, A / stride, S / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.pad = kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(0, self.pad),
                              bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(polar_pad(x, self.pad, 0))


class FiLM(nn.Module):
    """Feature-wise linear modulation by a latent code (the AdaIN-like z injection).

    ``y = x * (1 + gamma(z)) + beta(z)`` per channel (Perez et al., FiLM, AAAI 2018).

    Args:
        z_dim: latent code size.
        channels: feature channels modulated.

    Shapes: ``x (B, C, H, W)``, ``z (B, z_dim)`` -> ``(B, C, H, W)``.
    """

    def __init__(self, z_dim: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(z_dim, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.linear(z).chunk(2, dim=-1)
        return x * (1 + gamma[..., None, None]) + beta[..., None, None]
