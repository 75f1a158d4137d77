"""The generator weight average (``train.ema_decay``): its recurrence, what a run exports, exact resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ivus_sim.modelio import generator_keys, load_model
from ivus_sim.training.checkpoint import load_checkpoint
from ivus_sim.training.config import TrainConfig, load_train_config
from ivus_sim.training.data import make_dataset
from ivus_sim.training.ema import WeightAverage
from ivus_sim.training.export import export_checkpoint
from ivus_sim.training.synthetic import toy_pairs
from ivus_sim.training.trainer import Trainer


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray]:
    return toy_pairs(6, 32, seed=1)


def _cfg(**train: object) -> TrainConfig:
    cfg = load_train_config("smoke")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **train))


def test_average_follows_the_warmed_up_recurrence_and_applies_reversibly() -> None:
    w = nn.Parameter(torch.zeros(3))
    avg = WeightAverage([("w", w), ("again", w)], decay=0.6)
    assert avg.names == ["w"]  # a parameter listed twice is averaged once
    expected = torch.zeros(3)
    values = [torch.full((3,), float(v)) for v in (1, 5, -2, 4, 3, 8, 0, 2, 6, 7, 1, 9, 3, 2, 5)]
    for n, v in enumerate(values):
        with torch.no_grad():
            w.copy_(v)
        d = min(0.6, (1 + n) / (10 + n))  # capped from n = 13 on
        expected = d * expected + (1 - d) * v
        avg.update()
    assert avg.current_decay() == 0.6  # warmed up: (1 + 15) / 25 > 0.6
    torch.testing.assert_close(avg.averaged()["w"], expected)
    live = w.detach().clone()
    with avg.applied():
        torch.testing.assert_close(w.detach(), expected)
    assert torch.equal(w.detach(), live)  # restored exactly
    with pytest.raises(RuntimeError), avg.applied():  # restored after an error too
        raise RuntimeError
    assert torch.equal(w.detach(), live)
    zero = WeightAverage([("w", w)], decay=0.0)
    with torch.no_grad():
        w.add_(1)
    zero.update()
    assert torch.equal(zero.averaged()["w"], w.detach())  # decay 0: the live weights


def test_run_exports_the_average_and_leaves_discriminators_alone(toy: tuple[np.ndarray, np.ndarray],
                                                                  tmp_path: Path) -> None:
    cfg = _cfg(max_steps=5, ema_decay=0.9, lr=2e-3)
    ds = make_dataset(toy, (cfg.model.n_angles, cfg.model.n_samples))
    tr = Trainer(cfg, ds, tmp_path / "run", progress=False, seed=3)
    tr.fit()
    assert tr.ema is not None
    names = set(tr.ema.names)
    assert not any(n.startswith(("patch_d.", "latent_d1.", "latent_d2.")) for n in names)
    assert any(n.startswith("stage2.") for n in names) and any(n.startswith("encoder1.") for n in names)
    avg, live = tr.ema.averaged(), dict(tr.model.named_parameters())
    moved = [n for n in avg if not torch.equal(avg[n], live[n].detach())]
    assert moved  # the average lags the live weights (the comparison below can fail)
    released = load_model(tmp_path / "run").state_dict()
    for n in moved:
        if n in released:
            torch.testing.assert_close(released[n], avg[n])
    assert any(n in released for n in moved)
    # the checkpoint keeps the live weights (to resume) and the average (to export)
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    n0 = moved[0]
    assert torch.equal(ck["model"][n0], live[n0].detach()) and torch.equal(ck["extra"]["ema"]["shadow"][n0], avg[n0])
    export_checkpoint(tmp_path / "run", tmp_path / "released")  # generator only: decoders
    exported = load_model(tmp_path / "released").state_dict()
    kept = [n for n in moved if n in generator_keys(tr.model)]
    assert kept
    for n in kept:
        torch.testing.assert_close(exported[n], avg[n])


def test_resume_reproduces_the_average(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    cfg = _cfg(max_steps=6, checkpoint_every=2, deterministic=True, ema_decay=0.95)
    ds = make_dataset(toy, (cfg.model.n_angles, cfg.model.n_samples))
    straight = Trainer(cfg, ds, tmp_path / "a", progress=False, seed=2)
    straight.fit()
    Trainer(cfg, ds, tmp_path / "b", progress=False, seed=2).fit(stop_after=3)  # killed after the step-2 checkpoint
    resumed = Trainer(cfg, ds, tmp_path / "b", progress=False, seed=2)
    resumed.fit(resume=True)
    assert straight.ema is not None and resumed.ema is not None
    assert resumed.ema.updates == straight.ema.updates == 6
    a, b = straight.ema.averaged(), resumed.ema.averaged()
    for n in a:
        assert torch.equal(a[n], b[n]), n
    # a checkpoint written without the average cannot be resumed with it
    plain = _cfg(max_steps=2, checkpoint_every=2)
    Trainer(plain, ds, tmp_path / "c", progress=False).fit()
    from ivus_sim.errors import IvusSimError

    with pytest.raises(IvusSimError, match="different config"):
        Trainer(_cfg(max_steps=2, checkpoint_every=2, ema_decay=0.9), ds, tmp_path / "c",
                progress=False).fit(resume=True)


def test_config_range_is_checked(tmp_path: Path) -> None:
    from ivus_sim.errors import IvusSimError

    p = tmp_path / "c.yaml"
    p.write_text("extends: smoke\ntrain:\n  ema_decay: 1.0\n")
    with pytest.raises(IvusSimError, match="ema_decay"):
        load_train_config(p)


def test_a_checkpoint_written_before_the_field_existed_still_resumes(toy: tuple[np.ndarray, np.ndarray],
                                                                      tmp_path: Path) -> None:
    """A checkpoint whose config lacks ``train.ema_decay`` (older code) resumes with the average off."""
    cfg = _cfg(max_steps=2, checkpoint_every=2)
    ds = make_dataset(toy, (cfg.model.n_angles, cfg.model.n_samples))
    Trainer(cfg, ds, tmp_path, progress=False).fit()
    path = tmp_path / "checkpoint.pt"
    ck = load_checkpoint(path)
    del ck["config"]["train"]["ema_decay"]
    torch.save(ck, path)
    longer = _cfg(max_steps=3, checkpoint_every=2)
    res = Trainer(longer, ds, tmp_path, progress=False).fit(resume=True)
    assert res.finished and res.step == 3
    from ivus_sim.errors import IvusSimError

    with pytest.raises(IvusSimError, match="different config"):  # a real change is still refused
        Trainer(_cfg(max_steps=4, checkpoint_every=2, lr=1e-3), ds, tmp_path, progress=False).fit(resume=True)
