"""TwoStageAAE: the generation contract, shapes of every part, and the AAE regularisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ivus_sim.aae.priors import Prior
from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import fov_mask
from ivus_sim.phantom.random import random_phantom
from ivus_sim.training.config import load_train_config
from ivus_sim.two_stage import ModelConfig, TwoStageAAE


@pytest.fixture(scope="module")
def model() -> TwoStageAAE:
    torch.manual_seed(0)
    return TwoStageAAE(load_train_config("smoke").model)


@pytest.fixture(scope="module")
def labels() -> torch.Tensor:
    return torch.as_tensor(np.stack([random_phantom(0, size=48, index=i).labels[0] for i in range(3)]))


def test_contract_properties(model: TwoStageAAE) -> None:
    assert model.z_dims == (4, 4) and model.prior is Prior.GAUSSIAN and model.polar_shape == (32, 16)


def test_generate_shapes_range_and_fov(model: TwoStageAAE, labels: torch.Tensor) -> None:
    out = model.generate(labels, generator=torch.Generator().manual_seed(1))
    assert out["mean"].shape == out["image"].shape == (3, 1, 48, 48)
    assert out["z1"].shape == (3, 4) and out["z2"].shape == (3, 4)
    assert out["style"]["gain_db"].shape == (3,)  # scanner style decoded from z2
    for k in ("mean", "image"):
        assert float(out[k].min()) >= 0 and float(out[k].max()) <= 1
        assert torch.all(out[k][:, 0][:, ~torch.as_tensor(fov_mask(48).copy())] == 0)


def test_generate_is_deterministic_per_generator_and_codes_matter(model: TwoStageAAE, labels: torch.Tensor) -> None:
    torch.nn.init.normal_(model.stage2.refine.out.conv.weight, std=0.1)
    a = model.generate(labels, generator=torch.Generator().manual_seed(3))
    b = model.generate(labels, generator=torch.Generator().manual_seed(3))
    c = model.generate(labels, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a["image"], b["image"]) and not torch.equal(a["image"], c["image"])
    # given codes are used as given (one code shared by the batch is broadcast)
    z = torch.zeros(4)
    d = model.generate(labels, z1=z, z2=z, generator=torch.Generator().manual_seed(3))
    assert torch.equal(d["z1"], torch.zeros(3, 4))
    e = model.generate(labels, z1=z, z2=torch.full((4,), 2.0), generator=torch.Generator().manual_seed(3))
    assert not torch.equal(d["image"], e["image"])


def test_generate_rejects_bad_input(model: TwoStageAAE, labels: torch.Tensor) -> None:
    with pytest.raises(IvusSimError, match="z1 must have shape"):
        model.generate(labels, z1=torch.zeros(2, 4))
    with pytest.raises(IvusSimError, match="square"):
        model.generate(torch.zeros(1, 8, 9, dtype=torch.uint8))
    with pytest.raises(IvusSimError, match="integer"):  # the one label rule: whole-number floats are ids
        model.generate(labels.float() + 0.5)
    with pytest.raises(IvusSimError, match="phantom palette"):
        model.generate(torch.full((1, 16, 16), 99, dtype=torch.uint8))


def test_every_network_shape(model: TwoStageAAE) -> None:
    b, (a, s) = 2, model.polar_shape
    lab = torch.randint(0, 8, (b, a, s), dtype=torch.uint8)
    mean, img = torch.rand(b, 1, a, s), torch.rand(b, 1, a, s)
    z1, z2 = model.encode1(mean, lab), model.encode2(img, mean, lab)
    assert z1.shape == (b, 4) and z2.shape == (b, 4)
    assert model.decode1(lab, z1).shape == (b, 1, a, s)
    assert model.decode2(mean, lab, z2, model.noise(b)).shape == (b, 1, a, s)
    assert model.latent_d1(z1).shape == (b,) and model.latent_d2(z2).shape == (b,)
    assert model.patch_d(img, model.seg2(mean, lab))[-1].dim() == 4
    # the model returns named losses
    batch = {"labels": lab, "mean": mean, "image": img}
    rec, _ = model.stage1_reconstruction(batch)
    rec2, _, fake = model.stage2_reconstruction(batch, model.noise(b))
    assert set(rec) == {"s1_rec"}
    assert set(rec2) == {"s2_rec", "s2_stats", "s2_adv_g", "s2_texture", "s2_hist", "s2_tissue_texture", "cal_hist",
                         "cal_profile", "cal_speckle"}
    # a group of optional losses is skipped only when all of its names are (what the trainer weights 0)
    core = {"s2_rec", "s2_stats", "s2_adv_g"}
    skip_all = {"s2_texture", "s2_hist", "s2_tissue_texture", "cal_hist", "cal_profile", "cal_speckle"}
    assert set(model.stage2_reconstruction(batch, model.noise(b), skip=skip_all)[0]) == core
    part = set(model.stage2_reconstruction(batch, model.noise(b), skip={"s2_hist", "cal_hist"})[0])
    assert part == core | skip_all
    # the tissue-masked texture loss (weight 0 in every shipped config) is not computed when skipped
    part = set(model.stage2_reconstruction(batch, model.noise(b), skip={"s2_tissue_texture"})[0])
    assert part == core | skip_all - {"s2_tissue_texture"}
    # s2_diversity: only with a second noise draw, and not when skipped; its gradient reaches stage 2
    noise = model.noise(b)
    partly_shared = (noise + noise.flip(-1)) / 2**0.5  # correlated with noise: the loss is > 0
    tissue = {**batch, "labels": torch.zeros(b, a, s, dtype=torch.uint8)}  # one tissue: an interior exists
    with_div, _, _ = model.stage2_reconstruction(tissue, noise, skip=skip_all, noise2=partly_shared)
    assert set(with_div) == core | {"s2_diversity"}
    assert float(with_div["s2_diversity"]) > 0
    model.zero_grad()
    with_div["s2_diversity"].backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.stage2.parameters())
    skipped = model.stage2_reconstruction(tissue, noise, skip=skip_all | {"s2_diversity"}, noise2=partly_shared)
    assert set(skipped[0]) == core
    assert set(model.patch_discriminator_losses(batch, fake)) == {"s2_patch_d"}
    assert set(model.latent_discriminator_losses(1, z1)) == {"s1_latent_d"}
    assert set(model.encoder_regularisation_losses(2, batch)) == {"s2_latent_e"}


def test_config_validation() -> None:
    with pytest.raises(IvusSimError, match="divisible"):
        ModelConfig(n_angles=36)
    with pytest.raises(IvusSimError, match="prior"):
        ModelConfig.from_dict({"prior": "cauchy"})
    with pytest.raises(IvusSimError, match=r"model\.n_anglez: unknown field"):
        ModelConfig.from_dict({"n_anglez": 64})
    cfg = ModelConfig(prior=Prior.UNIFORM)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
