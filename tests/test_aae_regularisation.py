"""The AAE regularisation works: after a short training the encoder's codes follow the prior.

Measured, not assumed: the stage-1 AAE is trained (reconstruction + regularisation phases, the
real Trainer) on synthetic mean-intensity images that vary continuously (gain and depth decay),
then the mean and variance of the codes of *held-out* images are compared with the prior's.
The same measurement on the untrained encoder fails the tolerance.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ivus_sim.aae.priors import Prior
from ivus_sim.training.config import load_train_config
from ivus_sim.training.data import Augmentation, collate
from ivus_sim.training.trainer import Trainer
from ivus_sim.two_stage import TwoStageAAE


def _samples(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = np.random.default_rng(seed)
    depth = (np.arange(16) + 0.5) / 16
    out = []
    for a, b in zip(g.uniform(0.3, 0.9, n), g.uniform(0.0, 2.0, n), strict=True):
        m = torch.as_tensor(a * np.exp(-b * depth), dtype=torch.float32).expand(16, 16)[None].clone()
        out.append({"labels": torch.full((16, 16), 2, dtype=torch.uint8), "mean": m, "image": m.clone()})
    return out


def _stats(model: TwoStageAAE, held_out: dict[str, torch.Tensor]) -> tuple[float, float]:
    with torch.no_grad():
        z = model.encode1(held_out["mean"], held_out["labels"])[:, 0]
    return float(z.mean()), float(z.var())


@pytest.mark.slow
def test_encoder_codes_match_the_prior_after_training(tmp_path: Path) -> None:
    base = load_train_config("smoke")
    cfg = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, n_angles=16, n_samples=16, z1_dim=1, latent_hidden=64,
                                  prior=Prior.GAUSSIAN),
        train=dataclasses.replace(base.train, batch_size=128, max_steps=250, lr=1e-3, lr_d=1e-3,
                                  log_every=25, checkpoint_every=10_000, sample_every=10_000),
        data=dataclasses.replace(base.data, augment=Augmentation(rotate=False, gain=0.0, gamma=0.0)),
    )
    held_out = collate(_samples(512, seed=1))
    tr = Trainer(cfg, _samples(512, seed=0), tmp_path, stages=(1,), progress=False, seed=0)  # type: ignore[arg-type]
    _, var0 = _stats(tr.model, held_out)
    assert var0 < 0.1  # untrained: the codes of different images hardly differ (far from the prior)
    tr.fit()
    mean, var = _stats(tr.model, held_out)
    assert abs(mean - 0.0) < 0.5, mean
    assert 0.5 < var < 1.6, var
    # and the health signal sits near its equilibrium log 2
    hist = tr.history()
    assert abs(float(np.mean([r["s1_latent_d"] for r in hist[-4:]])) - np.log(2)) < 0.12
