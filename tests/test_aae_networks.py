"""Shape and invariance tests for the shared AAE networks (CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from ivus_sim.aae import (
    CONDITION_CHANNELS,
    N_CLASSES,
    Encoder,
    FiLM,
    LatentDiscriminator,
    PolarConv2d,
    encoder_regularisation_loss,
    label_condition,
    latent_discriminator_loss,
)
from ivus_sim.tissues import PALETTE_IDS, Tissue


def test_polar_conv_is_equivariant_to_rotation_about_the_catheter() -> None:
    torch.manual_seed(0)
    conv = PolarConv2d(3, 5, 3)
    x = torch.randn(2, 3, 16, 8)
    shift = 5  # rotating the frame = circularly shifting A-lines
    y1 = conv(torch.roll(x, shift, dims=-2))
    y2 = torch.roll(conv(x), shift, dims=-2)
    assert y1.shape == (2, 5, 16, 8)
    assert torch.allclose(y1, y2, atol=1e-6)


def test_polar_conv_stride_two_halves_both_axes() -> None:
    assert PolarConv2d(1, 4, 3, stride=2)(torch.zeros(1, 1, 16, 8)).shape == (1, 4, 8, 4)


def test_film_is_identity_at_initialisation_and_uses_z_after() -> None:
    film = FiLM(4, 3)
    x, z = torch.randn(2, 3, 4, 4), torch.randn(2, 4)
    assert torch.equal(film(x, z), x)
    torch.nn.init.normal_(film.linear.weight)
    assert not torch.allclose(film(x, z), x)


@pytest.mark.parametrize("channels", [(8,), (8, 16), (16, 32, 64)])
def test_encoder_shapes(channels: tuple[int, ...]) -> None:
    enc = Encoder(5, z_dim=6, channels=channels)
    assert enc(torch.randn(3, 5, 32, 16)).shape == (3, 6)


def test_latent_discriminator_shape_and_equilibrium_loss() -> None:
    d = LatentDiscriminator(8, hidden=16)
    assert d(torch.randn(7, 8)).shape == (7,)
    zero = torch.zeros(10)
    assert math.isclose(float(latent_discriminator_loss(zero, zero)), math.log(2), rel_tol=1e-6)
    # a discriminator that is right has a lower loss than the equilibrium; the encoder's loss is then high
    right_real, right_fake = torch.full((10,), 5.0), torch.full((10,), -5.0)
    assert latent_discriminator_loss(right_real, right_fake) < math.log(2)
    assert encoder_regularisation_loss(right_fake) > math.log(2)


def test_label_condition_channels() -> None:
    lab = torch.full((1, 4, 6), int(Tissue.LUMEN), dtype=torch.uint8)
    lab[:, :, 3] = int(Tissue.DENSE_CALCIUM)
    c = label_condition(lab)
    assert c.shape == (1, CONDITION_CHANNELS, 4, 6)
    calc = PALETTE_IDS.index(int(Tissue.DENSE_CALCIUM))
    assert torch.equal(c[:, :N_CLASSES].sum(1), torch.ones(1, 4, 6))  # one-hot
    depth = c[0, N_CLASSES, 0]
    assert torch.all(depth[1:] > depth[:-1]) and 0 < depth[0] and depth[-1] < 1
    behind = c[0, N_CLASSES + 1 + calc, 0]  # calcium in front of each sample
    assert torch.equal(behind[:4], torch.zeros(4)) and torch.all(behind[4:] > 0)
