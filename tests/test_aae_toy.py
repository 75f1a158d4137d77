"""The toy adversarial autoencoder (ivus_sim.aae.toy): phases, determinism, metrics, patches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ivus_sim.aae import Prior
from ivus_sim.aae.toy import (
    ToyAAEConfig,
    decode_grid,
    encode_all,
    prior_gap_fraction,
    sample_images,
    train_toy_aae,
)
from ivus_sim.errors import IvusSimError
from ivus_sim.physics.patches import physics_patches

TINY: dict[str, Any] = {"channels": (4, 8), "disc_hidden": 16, "batch_size": 16}


def _blobs(n: int = 96, side: int = 8, seed: int = 0) -> torch.Tensor:
    """Smooth images with two factors of variation (brightness, position of a bright band)."""
    g = np.random.default_rng(seed)
    a = g.uniform(0.2, 0.8, n)
    pos = g.uniform(1, side - 2, n)
    cols = np.arange(side)
    img = a[:, None, None] * np.exp(-((cols[None, None, :] - pos[:, None, None]) ** 2) / 2.0)
    img = np.broadcast_to(img, (n, side, side)) + 0.05
    return torch.tensor(img[:, None], dtype=torch.float32)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[Any, ...]]:
    x = _blobs()
    out: dict[str, tuple[Any, ...]] = {}
    for adv in (True, False):
        cfg = ToyAAEConfig(adversarial=adv, epochs=120, snapshot_epochs=(0, 120), seed=3, **TINY)
        out["aae" if adv else "ae"] = (*train_toy_aae(x, cfg), cfg)
    return {"x": (x,), **out}


@pytest.mark.slow  # shares the ~30 s `trained` fixture
def test_history_and_snapshots(trained: dict[str, tuple[Any, ...]]) -> None:
    _, hist, cfg = trained["aae"]
    assert len(hist.reconstruction) == len(hist.discriminator) == len(hist.regularisation) == cfg.epochs
    assert sorted(hist.snapshots) == [0, 120] and hist.snapshots[0].shape == (96, 2)
    assert hist.reconstruction[-1] < hist.reconstruction[0]
    _, ae_hist, _ = trained["ae"]
    assert ae_hist.discriminator == [] and ae_hist.regularisation == []  # no regularisation phase


@pytest.mark.slow  # shares the ~30 s `trained` fixture
def test_adversarial_phase_matches_codes_to_prior(trained: dict[str, tuple[Any, ...]]) -> None:
    (x,) = trained["x"]
    prior = Prior.GAUSSIAN.sample(2000, 2, generator=torch.Generator().manual_seed(0)).numpy()
    gap_aae = prior_gap_fraction(encode_all(trained["aae"][0], x), prior, radius=0.5)
    gap_ae = prior_gap_fraction(encode_all(trained["ae"][0], x), prior, radius=0.5)
    before = prior_gap_fraction(trained["aae"][1].snapshots[0], prior, radius=0.5)
    assert gap_aae < gap_ae and gap_aae < before
    # the codes' spread moves towards N(0, I)'s (std 1); the plain autoencoder's stays where it fell
    std_aae = encode_all(trained["aae"][0], x).std(0)
    std_ae = encode_all(trained["ae"][0], x).std(0)
    assert np.abs(np.log(std_aae)).mean() < np.abs(np.log(std_ae)).mean()
    assert 0.5 < std_aae.mean() < 2.0


def test_same_seed_same_model() -> None:
    x = _blobs(32)
    cfg = ToyAAEConfig(epochs=2, **TINY)
    a, _ = train_toy_aae(x, cfg)
    b, _ = train_toy_aae(x, cfg)
    c, _ = train_toy_aae(x, ToyAAEConfig(epochs=2, seed=1, **TINY))
    assert np.array_equal(encode_all(a, x), encode_all(b, x))
    assert not np.array_equal(encode_all(a, x), encode_all(c, x))


@pytest.mark.slow  # shares the ~30 s `trained` fixture
def test_decode_grid_layout(trained: dict[str, tuple[Any, ...]]) -> None:
    model = trained["aae"][0]
    imgs, axis = decode_grid(model, lim=2.0, n=3)
    assert imgs.shape == (3, 3, 8, 8) and np.allclose(axis, [-2, 0, 2])
    with torch.no_grad():  # top-left is (z0, z1) = (-2, +2); bottom-right (2, -2)
        tl = model.decode(torch.tensor([[-2.0, 2.0]]))[0, 0].numpy()
        br = model.decode(torch.tensor([[2.0, -2.0]]))[0, 0].numpy()
    assert np.allclose(imgs[0, 0], tl, atol=1e-6) and np.allclose(imgs[2, 2], br, atol=1e-6)
    imgs_s, z = sample_images(model, 5, seed=0)
    assert imgs_s.shape == (5, 8, 8) and z.shape == (5, 2)
    assert ((imgs_s >= 0) & (imgs_s <= 1)).all()


def test_prior_gap_fraction_reference() -> None:
    g = np.random.default_rng(0)
    codes, prior = g.normal(size=(50, 2)), g.normal(size=(300, 2))
    d = np.sqrt(((prior[:, None] - codes[None]) ** 2).sum(-1)).min(1)
    assert prior_gap_fraction(codes, prior, 0.3) == pytest.approx(float((d > 0.3).mean()), abs=1e-6)
    # codes of the wrong scale leave holes; codes that are prior draws cover it
    many = g.normal(size=(2000, 2))
    assert prior_gap_fraction(0.1 * many, prior) > 0.8 > 0.2 > prior_gap_fraction(many, prior)
    with pytest.raises(IvusSimError, match="same d"):
        prior_gap_fraction(codes, prior[:, :1])


def test_bad_input() -> None:
    with pytest.raises(IvusSimError, match="divisible"):
        train_toy_aae(torch.rand(8, 1, 6, 8), ToyAAEConfig(epochs=1, **TINY))
    with pytest.raises(IvusSimError, match=r"\(N, 1, A, S\)"):
        train_toy_aae(torch.rand(8, 8, 8), ToyAAEConfig(epochs=1, **TINY))
    bad = torch.rand(8, 1, 8, 8)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(IvusSimError, match="NaN"):
        train_toy_aae(bad, ToyAAEConfig(epochs=1, **TINY))
    with pytest.raises(IvusSimError, match="patch_angles"):
        physics_patches(1, n_angles=64, patch_angles=10)


def test_physics_patches_are_sectors_of_each_frame() -> None:
    from ivus_sim.phantom import random_phantom
    from ivus_sim.physics import PhysicsSimulator

    p = physics_patches(3, size=32, n_angles=32, patch_angles=8, depth_samples=8, seed=5, batch_size=2)
    assert p.shape == (12, 1, 8, 8) and p.dtype == torch.float32
    assert float(p.min()) >= 0 and float(p.max()) <= 1
    # image 2 alone (stream index 2) gives patches 8..11; sector k = A-lines 8k..8k+7
    sim = PhysicsSimulator(n_angles=32)
    polar = torch.as_tensor(sim.simulate(random_phantom(5, size=32, index=2).labels, seed=5, first_index=2).polar)
    ref = torch.nn.functional.adaptive_avg_pool1d(polar[0][None], 8)[0].clamp(0, 1)  # (32 A-lines, 8 depths)
    assert torch.allclose(p[8:12, 0].reshape(32, 8), ref, atol=1e-5)
    assert not torch.allclose(p[0:4, 0].reshape(32, 8), ref)
