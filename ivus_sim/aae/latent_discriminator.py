"""The AAE latent discriminator: tells encoder codes from prior samples.

An MLP on z giving one logit per code; trained with binary cross-entropy (prior = real = 1,
encoder code = fake = 0). At the AAE's equilibrium it cannot tell them apart, outputs 1/2,
and its loss (mean of the real and fake terms) settles near ``log 2 ~ 0.693`` - the health
signal plotted at the end of training (Makhzani et al., arXiv 1511.05644).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LatentDiscriminator", "latent_discriminator_loss", "encoder_regularisation_loss", "EQUILIBRIUM_LOSS"]

#: BCE loss of a discriminator that outputs 1/2 everywhere
EQUILIBRIUM_LOSS = math.log(2.0)


class LatentDiscriminator(nn.Module):
    """MLP discriminator on latent codes.

    Args:
        z_dim: latent code size.
        hidden: hidden width.
        n_layers: hidden layers.

    Shapes: ``z (B, z_dim)`` -> logits ``(B,)``.
    """

    def __init__(self, z_dim: int = 8, hidden: int = 64, n_layers: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = z_dim
        for _ in range(n_layers):
            layers += [nn.Linear(c, hidden), nn.LeakyReLU(0.2)]
            c = hidden
        layers.append(nn.Linear(c, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


def latent_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """BCE loss of the latent discriminator: prior codes real (1), encoder codes fake (0); mean of both terms."""
    real = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
    fake = F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    return 0.5 * (real + fake)


def encoder_regularisation_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """The encoder's adversarial loss: make the discriminator call its codes real."""
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
