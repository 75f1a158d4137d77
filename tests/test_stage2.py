"""Stage 2: legacy SPADE decoder, conditional patch discriminator and the speckle-statistics loss.

The physics-informed stage 2 (formation layer, refinement, calibration losses) is tested in
``tests/test_stage2_formation.py``.
"""

from __future__ import annotations

import torch

from ivus_sim.stage2 import Stage2Decoder, speckle_statistics_loss
from ivus_sim.stage2.discriminator import ConditionalPatchDiscriminator, make_adversarial_loss


def test_decoder_shapes_and_noise_dependence() -> None:
    torch.manual_seed(0)
    dec = Stage2Decoder(seg_channels=5, z_dim=3, channels=8, n_blocks=2, n_noise=2, spade_hidden=8)
    seg = torch.rand(2, 5, 32, 16)
    z = torch.randn(2, 3)
    n1, n2 = torch.randn(2, 2, 32, 16), torch.randn(2, 2, 32, 16)
    y = dec(seg, n1, z)
    assert y.shape == (2, 1, 32, 16) and float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1
    assert torch.equal(y, dec(seg, n1, z))  # deterministic given its inputs
    assert not torch.allclose(y, dec(seg, n2, z))  # the noise maps drive the speckle


def test_patch_discriminator_shapes_and_loss_ordering() -> None:
    torch.manual_seed(0)
    d = ConditionalPatchDiscriminator(cond_channels=3, channels=8, n_layers=2)
    out = d(torch.rand(2, 1, 32, 32), torch.rand(2, 3, 32, 32))
    assert isinstance(out, list) and out[-1].shape[:2] == (2, 1)
    loss = make_adversarial_loss()
    logits_real = torch.ones(2, 1, 4, 4)
    # least squares: a patch map that says "real" costs nothing as real, a lot as fake
    assert loss(logits_real, target_is_real=True, for_discriminator=True) < loss(
        logits_real, target_is_real=False, for_discriminator=True)


def test_speckle_statistics_loss_prefers_the_right_texture() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(1, 1, 64, 32, generator=g)
    other_realisation = torch.rand(1, 1, 64, 32, generator=g)  # same statistics, other pixels
    blurred = torch.full_like(real, 0.5)  # right mean, no texture
    assert float(speckle_statistics_loss(real, real)) < 1e-3
    assert speckle_statistics_loss(other_realisation, real) < speckle_statistics_loss(blurred, real)
    # pixel-wise L1 prefers the blur: the reason for this loss
    assert (blurred - real).abs().mean() < (other_realisation - real).abs().mean()


def test_decoder_is_rotation_equivariant_across_angle_zero() -> None:
    """No seam at A-line 0: rotating the inputs rotates the output (SPADE padded circularly)."""
    torch.manual_seed(1)
    dec = Stage2Decoder(seg_channels=4, z_dim=2, channels=8, n_blocks=2, n_noise=2, spade_hidden=8)
    seg, noise, z = torch.rand(1, 4, 32, 16), torch.randn(1, 2, 32, 16), torch.randn(1, 2)
    a = dec(torch.roll(seg, 10, -2), torch.roll(noise, 10, -2), z)
    b = torch.roll(dec(seg, noise, z), 10, -2)
    # instance-norm statistics see 2 duplicated A-lines, hence the small tolerance
    assert float((a - b).abs().max()) < 2e-2


def test_speckle_statistics_loss_sees_the_grain_size() -> None:
    g = torch.Generator().manual_seed(2)
    coarse = torch.nn.functional.interpolate(torch.rand(1, 1, 16, 8, generator=g), scale_factor=4, mode="nearest")
    fine = torch.rand(1, 1, 64, 32, generator=g)  # same marginal distribution, 4x smaller grain
    coarse2 = torch.nn.functional.interpolate(torch.rand(1, 1, 16, 8, generator=g), scale_factor=4, mode="nearest")
    assert speckle_statistics_loss(coarse2, coarse) < speckle_statistics_loss(fine, coarse)


def test_noise_maps_get_a_coarse_grain_channel() -> None:
    n = torch.randn(4, 2, 64, 32, generator=torch.Generator().manual_seed(5))
    shaped = Stage2Decoder.shape_noise(n)
    assert torch.equal(shaped[:, 0], n[:, 0])  # fine channel untouched

    def neighbour_corr(x: torch.Tensor) -> float:
        return float((x[..., 1:, :] * x[..., :-1, :]).mean() / (x * x).mean())

    assert neighbour_corr(n[:, 1]) < 0.1 < 0.5 < neighbour_corr(shaped[:, 1])


def test_plain_spade_matches_monai() -> None:
    """The legacy decoder's plain-torch SPADE computes what MONAI's does, with the same parameter names."""
    from monai.networks.blocks.spade_norm import SPADE as MonaiSPADE

    from ivus_sim.stage2.model import SPADE

    torch.manual_seed(0)
    ref = MonaiSPADE(label_nc=5, norm_nc=8, kernel_size=3, spatial_dims=2, hidden_channels=4, norm="INSTANCE")
    mine = SPADE(5, 8, 3, 4)
    mine.load_state_dict(ref.state_dict())
    x, seg = torch.randn(2, 8, 12, 10), torch.rand(2, 5, 12, 10)
    assert torch.allclose(mine(x, seg), ref(x, seg), atol=1e-6)
