"""Stage 1: decoder shapes and the tissue-aware despeckling that makes its targets."""

from __future__ import annotations

import torch

from ivus_sim.aae import CONDITION_CHANNELS
from ivus_sim.stage1 import Stage1Decoder, despeckle
from ivus_sim.tissues import Tissue


def test_decoder_shapes_range_and_code_dependence() -> None:
    torch.manual_seed(0)
    for down in (1, 2):
        dec = Stage1Decoder(CONDITION_CHANNELS, z_dim=4, channels=(8, 16, 32), downsample=down)
        torch.nn.init.normal_(dec.mid.film.linear.weight, std=0.5)
        cond = torch.rand(2, CONDITION_CHANNELS, 32, 16)
        with torch.no_grad():
            y = dec(cond, torch.randn(2, 4))
        assert y.shape == (2, 1, 32, 16)
        assert float(y.min()) >= 0 and float(y.max()) <= 1
        assert not torch.allclose(dec(cond, torch.zeros(2, 4)), dec(cond, torch.ones(2, 4)))


def _two_tissue(a: int = 32, s: int = 24) -> torch.Tensor:
    lab = torch.full((1, a, s), int(Tissue.FIBROUS), dtype=torch.uint8)
    lab[:, :, s // 2:] = int(Tissue.PERIVASCULAR)
    return lab


def test_despeckle_keeps_piecewise_constant_images_and_sharp_boundaries() -> None:
    lab = _two_tissue()
    img = torch.where(lab == int(Tissue.FIBROUS), torch.tensor(0.8), torch.tensor(0.2)).float()
    out = despeckle(img, lab, sigma_angle=3, sigma_depth=3)
    assert torch.allclose(out, img, atol=1e-5)  # no blur across the boundary


def test_despeckle_removes_speckle_but_keeps_the_tissue_mean() -> None:
    g = torch.Generator().manual_seed(0)
    lab = _two_tissue(64, 48)
    mean = torch.where(lab == int(Tissue.FIBROUS), torch.tensor(0.6), torch.tensor(0.3)).float()
    # Rayleigh speckle with the tissue mean
    c = torch.randn(2, 1, 64, 48, generator=g)
    ray = (c**2).sum(0).sqrt() * (2 / torch.pi) ** 0.5 / 2**0.5 * 2**0.5
    ray = ray / ray.mean()
    img = mean * ray
    out = despeckle(img, lab, sigma_angle=3, sigma_depth=2)
    for t, m in ((Tissue.FIBROUS, 0.6), (Tissue.PERIVASCULAR, 0.3)):
        sel = lab == int(t)
        assert abs(float(out[sel].mean()) - m) < 0.05 * m * 2
        assert float(out[sel].std()) < 0.35 * float(img[sel].std())


def test_despeckle_is_circular_in_angle() -> None:
    g = torch.Generator().manual_seed(1)
    lab = _two_tissue()
    img = torch.rand(1, 32, 24, generator=g)
    a = despeckle(torch.roll(img, 7, -2), torch.roll(lab, 7, -2))
    b = torch.roll(despeckle(img, lab), 7, -2)
    assert torch.allclose(a, b, atol=1e-5)
