"""Legacy stage 2 decoder (``model.stage2_kind: spade``): a SPADE residual network draws the speckle.

Kept so that model files trained before the physics-informed stage 2
(:mod:`ivus_sim.stage2.decoder`) still load and generate; new models use the physics-informed one.

Works on the polar grid (A-line x depth), where IVUS speckle is elongated laterally and the
point-spread function is separable. The input is the stage-1 mean, per-pixel noise maps (the
spatial randomness speckle needs; drawn from a seeded generator so output is reproducible) and
the label condition. Residual blocks are spatially conditioned by MONAI's SPADE normalisation
(Park et al., CVPR 2019) on ``[mean, one-hot labels, depth]`` and modulated by z2 through FiLM,
which sets the global speckle "style" (gain, contrast, grain). Output in [0, 1].

The SPADE block is a plain-torch copy of MONAI's ``SPADE`` layout (same parameter names and
computation: instance norm without affine; shared 3x3 conv + LeakyReLU(0.01); gamma and beta 3x3
convs each followed by instance norm, as MONAI's ``Convolution`` defaults do), so generation does
not import MONAI and weights trained with MONAI's block load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ivus_sim.aae.layers import FiLM, PolarConv2d, polar_pad

__all__ = ["Stage2Decoder"]


class _Conv(nn.Module):
    """``conv`` submodule holder (MONAI ``Convolution`` parameter names)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (Park et al., CVPR 2019), MONAI's layout in plain torch.

    ``forward(x (B, C, H, W), seg (B, label_nc, H, W))`` -> ``IN(x) * (1 + gamma(seg)) + beta(seg)``.
    """

    def __init__(self, label_nc: int, norm_nc: int, kernel_size: int = 3, hidden_channels: int = 64) -> None:
        super().__init__()
        self.mlp_shared = _Conv(label_nc, hidden_channels, kernel_size)
        self.mlp_gamma = _Conv(hidden_channels, norm_nc, kernel_size)
        self.mlp_beta = _Conv(hidden_channels, norm_nc, kernel_size)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x.contiguous())
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        actv = F.leaky_relu(self.mlp_shared.conv(seg), 0.01)
        gamma = F.instance_norm(self.mlp_gamma.conv(actv))
        beta = F.instance_norm(self.mlp_beta.conv(actv))
        return normalized * (1 + gamma) + beta


class _SpadeBlock(nn.Module):
    """x + PolarConv(LeakyReLU(FiLM(SPADE(x, seg), z))).

    MONAI's SPADE zero-pads its two 3x3 convolutions; the inputs are padded circularly by
    :attr:`WRAP` A-lines first (and cropped after), so A-line 0 sees its true neighbours.
    """

    WRAP = 2

    def __init__(self, channels: int, seg_channels: int, z_dim: int, spade_hidden: int) -> None:
        super().__init__()
        self.spade = SPADE(label_nc=seg_channels, norm_nc=channels, kernel_size=3, hidden_channels=spade_hidden)
        self.film = FiLM(z_dim, channels)
        self.conv = PolarConv2d(channels, channels, 3)

    def forward(self, x: torch.Tensor, seg: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        p = self.WRAP
        h = self.spade(polar_pad(x, p, 0), polar_pad(seg, p, 0))[..., p:-p, :]
        h = F.leaky_relu(self.film(h, z), 0.2)
        return x + self.conv(h)


class Stage2Decoder(nn.Module):
    """Mean intensity + label condition + z2 + noise -> speckled image on the polar grid.

    Args:
        seg_channels: channels of the spatial condition ``seg`` (mean + one-hot + depth).
        z_dim: size of z2.
        channels: feature width.
        n_blocks: residual SPADE blocks.
        n_noise: per-pixel noise channels (odd-numbered ones are given a 2-sample grain,
            :meth:`shape_noise`).
        spade_hidden: hidden width of each SPADE's shared convolution.

    Shapes: ``seg (B, seg_channels, A, S)``, ``noise (B, n_noise, A, S)``, ``z (B, z_dim)``
    -> ``(B, 1, A, S)`` in [0, 1]. ``seg[:, :1]`` must be the mean intensity.
    """

    def __init__(self, seg_channels: int, z_dim: int = 8, channels: int = 24, n_blocks: int = 3,
                 n_noise: int = 2, spade_hidden: int = 16) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.n_noise = n_noise
        self.inp = PolarConv2d(seg_channels + n_noise, channels, 3)
        self.blocks = nn.ModuleList(_SpadeBlock(channels, seg_channels, z_dim, spade_hidden)
                                    for _ in range(n_blocks))
        self.out = PolarConv2d(channels, 1, 3)

    @staticmethod
    def shape_noise(noise: torch.Tensor) -> torch.Tensor:
        """Make odd-numbered noise channels spatially correlated (2x2 blocks, bilinear): a coarse-grain seed.

        Speckle grains span several samples; giving the network white noise at two scales lets a
        small receptive field produce them. Deterministic in ``noise``, which stays ``(B, n, A, S)``.
        """
        if noise.shape[1] < 2 or noise.shape[-2] % 2 or noise.shape[-1] % 2:
            return noise
        coarse = F.avg_pool2d(noise[:, 1::2], 2) * 2.0  # unit variance again
        coarse = torch.cat([coarse[..., -1:, :], coarse, coarse[..., :1, :]], dim=-2)  # circular in angle
        up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)[..., 2:-2, :]
        out = noise.clone()
        out[:, 1::2] = up
        return out

    def forward(self, seg: torch.Tensor, noise: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.inp(torch.cat([seg, self.shape_noise(noise)], 1))
        for blk in self.blocks:
            h = blk(h, seg, z)
        return torch.sigmoid(self.out(F.leaky_relu(h, 0.2)))
