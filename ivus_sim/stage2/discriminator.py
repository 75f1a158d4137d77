"""Stage 2 image-level patch discriminator (conditioned on the mean and the labels).

MONAI's :class:`~monai.networks.nets.PatchDiscriminator` (pix2pix's PatchGAN, Isola et al.,
CVPR 2017) on ``cat([image, mean, one-hot labels])`` in the polar domain, with MONAI's
:class:`~monai.losses.PatchAdversarialLoss` (least squares by default). It judges local speckle
texture given what the tissue should look like there.
"""

from __future__ import annotations

import torch
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import PatchDiscriminator
from torch import nn

__all__ = ["ConditionalPatchDiscriminator", "make_adversarial_loss"]


class ConditionalPatchDiscriminator(nn.Module):
    """Patch discriminator on an image and its condition.

    Args:
        cond_channels: channels of the condition concatenated to the 1-channel image.
        channels: width of the first layer (doubles per layer).
        n_layers: downsampling layers.

    Shapes: ``image (B, 1, A, S)``, ``cond (B, cond_channels, A, S)`` -> list of feature maps,
    the last one being the patch logits ``(B, 1, A', S')``.
    """

    def __init__(self, cond_channels: int, channels: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        self.net = PatchDiscriminator(spatial_dims=2, channels=channels, in_channels=1 + cond_channels,
                                      out_channels=1, num_layers_d=n_layers, norm="INSTANCE")

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = self.net(torch.cat([image, cond], 1))
        return out


def make_adversarial_loss(criterion: str = "least_squares") -> PatchAdversarialLoss:
    """MONAI's patch adversarial loss (``least_squares``, ``bce`` or ``hinge``)."""
    return PatchAdversarialLoss(criterion=criterion)
