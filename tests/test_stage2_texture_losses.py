"""Own-data texture losses (``s2_texture``, ``s2_hist``): they recover a scanner's speckle contrast
and grain from one realisation, where the pixel-wise L1 to that realisation drives them to zero."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ivus_sim.aae.condition import class_index
from ivus_sim.stage2.texture_losses import texture_losses, tile_statistics
from ivus_sim.tissues import PALETTE_IDS, Tissue

A, S, B = 128, 64, 2


def _labels() -> torch.Tensor:
    lab = torch.full((B, A, S), int(Tissue.PERIVASCULAR))
    lab[:, :, :6] = int(Tissue.CATHETER)
    lab[:, :, 6:24] = int(Tissue.LUMEN)
    lab[:, :, 24:32] = int(Tissue.FIBROUS)
    return lab


def _grain(seed: int, width: float) -> torch.Tensor:
    """Unit-variance correlated noise ``(B, 1, A, S)`` with a Gaussian grain of ``width`` samples (circular)."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(B, 1, A, S, generator=g)
    r = int(3 * width) + 1
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / width) ** 2)
    k = k / k.norm()
    n = F.conv2d(F.pad(n, (0, 0, r, r), mode="circular"), k.view(1, 1, -1, 1))
    return F.conv2d(F.pad(n, (r, r, 0, 0), mode="circular"), k.view(1, 1, 1, -1))


def _image(seed: int, contrast: float | torch.Tensor, width: float = 1.5) -> torch.Tensor:
    lab = _labels()
    mean = torch.full((B, 1, A, S), 0.45)
    mean[..., 6:24] = 0.1
    img = (mean + contrast * _grain(seed, width)).clamp(0, 1)
    blank = (lab == int(Tissue.CATHETER))[:, None]
    return torch.where(blank, torch.zeros(()), img)


def test_tile_statistics_pool_only_pure_non_blank_tiles() -> None:
    lab = _labels()
    stats, count, pure = tile_statistics(_image(0, 0.1), lab, tile=16, lags=3)
    assert stats.shape == (len(PALETTE_IDS), 7)
    # depth tiles 0-15 (catheter + lumen), 16-31 (lumen + fibrous) are mixed; 32-63 perivascular
    peri = PALETTE_IDS.index(int(Tissue.PERIVASCULAR))
    assert int(count[peri]) == B * (A // 16) * 2 and int(count.sum()) == int(count[peri])
    assert (pure[:, :, :2] == -1).all()
    assert torch.equal(class_index(lab[:, 0, 40])[0], torch.tensor(peri))
    # unit-variance grain of width 1.5: lag-1 autocorrelation exp(-1 / (4 * 1.5^2)) ~ 0.89
    assert abs(float(stats[peri, 1]) - 0.895) < 0.05 and abs(float(stats[peri, 4]) - 0.895) < 0.05
    assert abs(float(stats[peri, 0]) - 0.1) < 0.015


def test_another_realisation_scores_far_below_wrong_contrast_or_grain() -> None:
    lab, real = _labels(), _image(0, 0.1)
    same = texture_losses(_image(1, 0.1), real, lab)
    for other in (_image(1, 0.05), _image(1, 0.2), _image(1, 0.1, width=0.7), _image(1, 0.1, width=3.0)):
        worse = texture_losses(other, real, lab)
        assert float(worse["s2_texture"]) > 5 * float(same["s2_texture"])
    assert float(texture_losses(_image(1, 0.2), real, lab)["s2_hist"]) > 5 * float(same["s2_hist"])


def test_gradient_descent_recovers_the_contrast_where_l1_flattens_it(one_thread: None) -> None:
    """Fit a speckle contrast to one realisation: the texture losses find it, pixel L1 shrinks it."""
    lab, real = _labels(), _image(0, 0.12)

    def fit(loss_of: str) -> float:
        c = torch.tensor(0.03, requires_grad=True)
        opt = torch.optim.Adam([c], lr=0.02)
        for step in range(60):
            fake = _image(100 + step, c)
            if loss_of == "texture":
                losses = texture_losses(fake, real, lab)
                loss = losses["s2_texture"] + losses["s2_hist"]
            else:
                loss = (fake - real).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(c.detach())

    assert abs(fit("texture") - 0.12) < 0.02
    assert fit("l1") < 0.03


def test_masked_statistics_see_a_thin_tissue_that_no_tile_covers() -> None:
    """A 6-sample band of fibrous tissue fills no 16 x 16 tile: ``s2_texture`` cannot see a wrong
    contrast there, ``s2_tissue_texture`` (masked, one weight per tissue) does, and its masked std
    and grain of the band match what was put in."""
    from ivus_sim.stage2.calibration_losses import erode_masks
    from ivus_sim.stage2.texture_losses import masked_statistics

    lab = _labels()
    lab[:, :, 40:46] = int(Tissue.FIBRO_FATTY)  # thin band inside the perivascular tissue

    def img(seed: int, band: float) -> torch.Tensor:
        x = _image(seed, 0.1)
        x[..., 40:46] = (0.3 + band * _grain(seed + 50, 1.5)[..., 40:46]).clamp(0, 1)
        return x

    real = img(0, 0.1)
    k = PALETTE_IDS.index(int(Tissue.FIBRO_FATTY))
    _, count, _ = tile_statistics(real, lab)
    assert int(count[k]) == 0
    masks = erode_masks(F.one_hot(class_index(lab), len(PALETTE_IDS)).permute(0, 3, 1, 2))
    stats, npx = masked_statistics(real, masks, lags=2)
    assert int(npx[k]) == B * A * 4  # the band eroded by one sample on each side
    # residual around a local mean of a 4-sample-wide mask: a little below the grain's std 0.1
    assert 0.06 < float(stats[k, 0]) < 0.105
    assert float(stats[k, 1]) > 0.7  # lag-1 along angle: grain of width 1.5 (0.89 before the mean)
    same = texture_losses(img(1, 0.1), real, lab)
    flat = texture_losses(img(1, 0.03), real, lab)
    assert abs(float(flat["s2_texture"]) - float(same["s2_texture"])) < 0.02  # blind to the band
    assert float(flat["s2_tissue_texture"]) > 2 * float(same["s2_tissue_texture"])
    # gradients reach the image through the masked statistics
    fake = img(1, 0.05).requires_grad_(True)
    texture_losses(fake, real, lab)["s2_tissue_texture"].backward()
    assert fake.grad is not None and float(fake.grad[..., 40:46].abs().sum()) > 0
