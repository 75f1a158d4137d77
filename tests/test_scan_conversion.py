"""``model.scan_conversion``: one setting drives training targets and the display of a learned model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Interp, cart_to_polar, fov_mask, polar_to_cart
from ivus_sim.modelio import load_model, save_model
from ivus_sim.phantom.random import random_phantom
from ivus_sim.simulator.learned import LearnedBackend
from ivus_sim.training.config import load_train_config
from ivus_sim.training.data import polar_sample
from ivus_sim.two_stage import ModelConfig, TwoStageAAE


def test_config_round_trip_and_old_files_read_as_bilinear() -> None:
    cfg = dataclasses.replace(load_train_config("smoke").model, scan_conversion=Interp.BICUBIC)
    d = cfg.to_dict()
    assert d["scan_conversion"] == "bicubic" and ModelConfig.from_dict(d) == cfg
    del d["scan_conversion"]  # written before the setting existed
    assert ModelConfig.from_dict(d).scan_conversion is Interp.BILINEAR
    with pytest.raises(IvusSimError, match="bilinear or bicubic"):
        ModelConfig.from_dict({**d, "scan_conversion": "nearest"})


def test_display_follows_the_models_setting_through_save_and_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = load_train_config("smoke").model
    model = TwoStageAAE(dataclasses.replace(base, scan_conversion=Interp.BICUBIC), training_parts=False)
    save_model(model, tmp_path / "m", generator_only=True)
    loaded = load_model(tmp_path / "m")
    assert loaded.config.scan_conversion is Interp.BICUBIC
    lab = random_phantom(0, size=48, index=0).labels[0]
    sim = LearnedBackend(loaded, "test", "test", {}, precision="fp32")
    out = sim.render(lab[None], np.zeros(1, int), torch.zeros(1, base.z1_dim), torch.zeros(1, base.z2_dim),
                     loaded.noise(1, torch.Generator().manual_seed(1)).cpu(), want_polar=True)
    polar = torch.as_tensor(out["polar"])
    for interp in (Interp.BICUBIC, Interp.BILINEAR):
        ref = np.asarray(polar_to_cart(polar, 48, interp, 0.0))
        ref_u8 = np.floor(np.clip(ref, 0, 1) * 255 + 0.5).astype(np.uint8)
        same = np.abs(ref_u8.astype(int) - out["image"][0].astype(int)).max() <= 1
        assert same == (interp is Interp.BICUBIC)


def test_training_targets_use_the_setting() -> None:
    g = np.random.default_rng(0)
    lab = random_phantom(0, size=64, index=0).labels[0]
    img = (g.random((64, 64)) * 255).astype(np.uint8)
    lin = polar_sample(lab, img, (64, 32), interp=Interp.BILINEAR)
    cub = polar_sample(lab, img, (64, 32), interp=Interp.BICUBIC)
    inside = img.astype(np.float32) / 255 * fov_mask(64)  # the trainer blanks outside the FOV disc
    ref = np.clip(np.asarray(cart_to_polar(inside, 64, 32, Interp.BICUBIC)), 0, 1)
    assert torch.equal(lin["labels"], cub["labels"])
    np.testing.assert_allclose(cub["image"][0].numpy(), ref, atol=1e-6)
    assert float(cub["image"].std()) > float(lin["image"].std())  # white texture survives bicubic better
