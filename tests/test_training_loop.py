"""Training loop: smoke run end to end, loss decreases, exact resume, NaN stop, atomic checkpoints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Interp
from ivus_sim.modelio import load_model
from ivus_sim.training.checkpoint import load_checkpoint, save_checkpoint
from ivus_sim.training.config import TrainConfig, load_train_config
from ivus_sim.training.data import make_dataset
from ivus_sim.training.synthetic import toy_pairs
from ivus_sim.training.trainer import NonFiniteLossError, Trainer


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray]:
    return toy_pairs(8, 32, seed=0)


def _cfg(**train: object) -> TrainConfig:
    cfg = load_train_config("smoke")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **train))


def _dataset(toy: tuple[np.ndarray, np.ndarray], cfg: TrainConfig):  # type: ignore[no-untyped-def]
    return make_dataset(toy, (cfg.model.n_angles, cfg.model.n_samples))


def test_smoke_config_trains_end_to_end(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    cfg = _cfg()
    res = Trainer(cfg, _dataset(toy, cfg), tmp_path, progress=False, command="pytest").fit()
    assert res.finished and res.step == cfg.train.max_steps
    for name in ("checkpoint.pt", "log.jsonl", "latent_discriminator.png", "samples/step_000002.png",
                 "samples/step_000004.png", "model/model.safetensors", "model/model.json"):
        assert (tmp_path / name).is_file(), name
    assert any((tmp_path / "tensorboard").iterdir())
    card = json.loads((tmp_path / "model" / "model.json").read_text())
    assert card["command"] == "pytest" and card["training_data"]["n_pairs"] == 8
    assert load_train_config(tmp_path / "config.yaml").to_dict() == cfg.to_dict()
    assert set(card["metrics"]) >= {"s1_rec", "s2_rec", "s1_latent_d", "s2_patch_d"}
    # grid: rows of condition | stage 1 | stage 2 | target
    from PIL import Image

    grid = np.asarray(Image.open(tmp_path / "samples" / "step_000004.png"))
    n = 2 * cfg.model.n_samples
    assert grid.shape == (cfg.train.grid_samples * n, 4 * n, 3)
    # the released model generates images
    model = load_model(tmp_path)
    out = model.generate(torch.as_tensor(toy[0][:2]), generator=torch.Generator().manual_seed(0))
    assert out["image"].shape == (2, 1, 32, 32)


def test_losses_go_down_on_a_fixed_batch(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    cfg = _cfg(lr=2e-3)
    tr = Trainer(cfg, _dataset(toy, cfg), tmp_path, progress=False)
    batch = tr.batch(0, 0)
    first = tr.train_step(batch)
    for _ in range(25):
        last = tr.train_step(batch)
    assert last["s1_rec"] < 0.7 * first["s1_rec"]
    assert last["s2_stats"] < first["s2_stats"]


def test_resume_after_kill_reproduces_the_uninterrupted_run(toy: tuple[np.ndarray, np.ndarray],
                                                           tmp_path: Path) -> None:
    cfg = _cfg(checkpoint_every=2, deterministic=True, max_steps=6)  # checkpoints at 2, 4, 6
    ds = _dataset(toy, cfg)
    straight = Trainer(cfg, ds, tmp_path / "a", progress=False, seed=5)
    straight.fit()
    killed = Trainer(cfg, ds, tmp_path / "b", progress=False, seed=5)
    part = killed.fit(stop_after=4)  # "killed" before step 5; last checkpoint at step 4
    assert not part.finished and load_checkpoint(tmp_path / "b" / "checkpoint.pt")["progress"]["step"] == 4
    resumed = Trainer(cfg, ds, tmp_path / "b", progress=False, seed=5)
    resumed.fit(resume=True)
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    for name in straight.optimisers:
        oa, ob = straight.optimisers[name].state_dict()["state"], resumed.optimisers[name].state_dict()["state"]
        for pid in oa:
            assert torch.equal(oa[pid]["exp_avg"], ob[pid]["exp_avg"])
    # the log has one record per step, none duplicated by the resume
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))
    # a fresh run with a different seed differs (the comparison can fail)
    other = Trainer(cfg, ds, tmp_path / "c", progress=False, seed=6)
    other.fit()
    assert not torch.equal(other.model.state_dict()["stage1.out.conv.weight"], sa["stage1.out.conv.weight"])


def test_resume_refuses_other_data_or_config(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    cfg = _cfg(max_steps=2)
    ds = _dataset(toy, cfg)
    Trainer(cfg, ds, tmp_path, progress=False, data_fingerprint="aaa").fit()
    with pytest.raises(IvusSimError, match="different data"):
        Trainer(cfg, ds, tmp_path, progress=False, data_fingerprint="bbb").fit(resume=True)
    with pytest.raises(IvusSimError, match="different config"):
        Trainer(_cfg(max_steps=2, lr=1e-3), ds, tmp_path, progress=False, data_fingerprint="aaa").fit(resume=True)
    with pytest.raises(IvusSimError, match="already holds a run"):
        Trainer(cfg, ds, tmp_path, progress=False, data_fingerprint="aaa").fit()


def test_nan_loss_stops_with_step_and_name_and_keeps_last_checkpoint(toy: tuple[np.ndarray, np.ndarray],
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(checkpoint_every=2)
    tr = Trainer(cfg, _dataset(toy, cfg), tmp_path, progress=False)
    original = tr.model.stage2_reconstruction
    calls = {"n": 0}

    def poisoned(batch, noise, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        losses, z, fake = original(batch, noise, **kw)
        if calls["n"] == 3:
            losses["s2_rec"] = losses["s2_rec"] * float("nan")
        return losses, z, fake

    monkeypatch.setattr(tr.model, "stage2_reconstruction", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"s2_rec=nan at step 3"):
        tr.fit()
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["progress"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert not (tmp_path / "model").exists()


def test_checkpoint_write_is_atomic(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(max_steps=2)
    tr = Trainer(cfg, _dataset(toy, cfg), tmp_path, progress=False)
    tr.fit()
    path = tmp_path / "checkpoint.pt"
    before = path.read_bytes()

    def crash(obj, f, *a, **k):  # type: ignore[no-untyped-def]
        Path(f).write_bytes(b"partial")  # half-written temp file, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model=tr.model, optimisers=tr.optimisers, progress={"step": 99, "epoch": 0,
                        "batch_in_epoch": 0}, config=cfg.to_dict(), data_fingerprint="")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp litter
    assert load_checkpoint(path)["progress"]["step"] == 2


def test_trainer_construction_has_no_global_side_effects(toy: tuple[np.ndarray, np.ndarray]) -> None:
    import random

    cfg = _cfg(threads=1, deterministic=True)
    ds = _dataset(toy, cfg)
    torch.manual_seed(1234)
    np.random.seed(5)
    random.seed(6)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), torch.get_num_threads(),
              torch.are_deterministic_algorithms_enabled())
    t1 = Trainer(cfg, ds, "unused", progress=False, seed=3)
    after = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), torch.get_num_threads(),
             torch.are_deterministic_algorithms_enabled())
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    # the seed alone decides the initial weights, whatever the global RNG holds
    torch.manual_seed(999)
    t2 = Trainer(cfg, ds, "unused", progress=False, seed=3)
    for k, v in t1.model.state_dict().items():
        assert torch.equal(v, t2.model.state_dict()[k]), k


def test_fit_restores_threads_and_determinism(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    cfg = _cfg(threads=1, deterministic=True, max_steps=1)
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    Trainer(cfg, _dataset(toy, cfg), tmp_path, progress=False).fit()
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det


def test_max_steps_alone_decides_the_run_length(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    cfg = _cfg(max_steps=5, checkpoint_every=100, sample_every=100)  # 8 pairs / batch 4 = 2 steps per epoch
    tr = Trainer(cfg, _dataset(toy, cfg), tmp_path, progress=False)
    res = tr.fit()
    assert res.step == 5 and (tr.epoch, tr.batch_in_epoch) == (2, 1)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["progress"]["step"] == 5  # the last step is checkpointed
    card = json.loads((tmp_path / "model" / "model.json").read_text())
    assert card["steps"] == 5 and "epochs" not in card["train_config"]["train"]


def test_named_losses_are_weighted_generically(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(loss_weights={"s1_rec": 0.0, "my_new_loss": 3.0}, lr=1e-2)
    tr = Trainer(cfg, _dataset(toy, cfg), tmp_path, progress=False)
    defaults = getattr(tr.model, "default_loss_weights", lambda: {})()
    assert tr.weight("s1_rec") == 0.0 and tr.weight("my_new_loss") == 3.0
    assert tr.weight("never_heard_of") == defaults.get("never_heard_of", 1.0) == 1.0
    if "s2_rec" in defaults:
        assert tr.weight("s2_rec") == (cfg.train.loss_weights.get("s2_rec", defaults["s2_rec"]))
    # s1_rec weighted 0 and nothing else in phase g1: the stage-1 decoder does not move
    before = {k: v.clone() for k, v in tr.model.stage1.state_dict().items()}
    original = tr.model.stage2_reconstruction

    def with_extra(batch, noise, **kw):  # type: ignore[no-untyped-def]
        losses, z, fake = original(batch, noise, **kw)
        losses["my_new_loss"] = fake.mean()  # a loss the trainer has never heard of
        return losses, z, fake

    monkeypatch.setattr(tr.model, "stage2_reconstruction", with_extra)
    out = tr.train_step(tr.batch(0, 0))
    assert "my_new_loss" in out
    # optional losses weighted 0 (the texture losses by default) are not computed at all
    assert tr.weight("s2_texture") == tr.weight("s2_hist") == 0.0
    assert "s2_texture" not in out and "s2_hist" not in out and "s2_rec" in out
    for k, v in tr.model.stage1.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert tr._used_weights["my_new_loss"] == 3.0 and tr._used_weights["s1_rec"] == 0.0


def test_init_starts_from_a_trained_generator_and_records_it(toy: tuple[np.ndarray, np.ndarray],
                                                              tmp_path: Path) -> None:
    """train.init: the generator starts as the source model's (transfer); discriminators start fresh;
    the card names the source; another architecture is a one-line error."""
    from ivus_sim.modelio import generator_keys

    cfg = _cfg()
    Trainer(cfg, _dataset(toy, cfg), tmp_path / "src", progress=False).fit()
    source = load_model(tmp_path / "src")
    init = _cfg(init=str(tmp_path / "src"))
    tr = Trainer(init, _dataset(toy, init), tmp_path / "ft", progress=False, seed=5)
    sd, src_sd = tr.model.state_dict(), source.state_dict()
    keys = generator_keys(tr.model)
    assert keys and all(torch.equal(sd[k], src_sd[k]) for k in keys)
    scratch = Trainer(cfg, _dataset(toy, cfg), tmp_path / "scratch", progress=False, seed=5).model.state_dict()
    assert not all(torch.equal(scratch[k], src_sd[k]) for k in keys)  # a real change, not the seed's init
    tr.fit()
    card = json.loads((tmp_path / "ft" / "model" / "model.json").read_text())
    assert card["training_data"]["initialised_from"]["init"] == str(tmp_path / "src")
    assert card["training_data"]["initialised_from"]["model_id"].startswith("src-")
    other = dataclasses.replace(init, model=dataclasses.replace(init.model, z1_dim=init.model.z1_dim + 1))
    with pytest.raises(IvusSimError, match=r"train.init: .* another architecture \(model.z1_dim"):
        Trainer(other, _dataset(toy, other), tmp_path / "bad", progress=False)
    with_t = dataclasses.replace(init, model=dataclasses.replace(init.model, transmission=True))
    with pytest.raises(IvusSimError, match=r"another architecture \(model.transmission"):
        Trainer(with_t, _dataset(toy, with_t), tmp_path / "bad_t", progress=False)
    # the scan conversion is not architecture: the weights carry over
    other_interp = Interp.BICUBIC if init.model.scan_conversion is Interp.BILINEAR else Interp.BILINEAR
    bicubic = dataclasses.replace(init, model=dataclasses.replace(init.model, scan_conversion=other_interp))
    sd2 = Trainer(bicubic, _dataset(toy, bicubic), tmp_path / "ft2", progress=False, seed=5).model.state_dict()
    assert all(torch.equal(sd2[k], src_sd[k]) for k in keys)


@pytest.mark.slow
def test_scanner_parameters_get_their_own_learning_rate(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """train.lr_scanner: stage 2's scanner scalars step at their own rate (fine-tuning a scanner in a
    few hundred steps), everything else at lr; unset, one rate for all."""
    cfg = _cfg(lr_scanner=3e-3)
    tr = Trainer(cfg, _dataset(toy, cfg), tmp_path / "a", progress=False)
    scanner = {id(q) for q in tr.model.stage2.scanner.parameters()}
    assert scanner
    seen = set()
    for opt in tr.optimisers.values():
        for g in opt.param_groups:
            ids = {id(q) for q in g["params"]}
            if ids & scanner:
                assert ids <= scanner and g["lr"] == 3e-3
                seen |= ids
            else:
                assert g["lr"] in (cfg.train.lr, cfg.train.lr_d)
    assert seen == scanner
    before = {n: q.detach().clone() for n, q in tr.model.stage2.scanner.named_parameters()}
    tr.fit()
    moved = max(float((q - before[n]).abs().max()) for n, q in tr.model.stage2.scanner.named_parameters())
    plain = Trainer(_cfg(), _dataset(toy, cfg), tmp_path / "b", progress=False)
    before = {n: q.detach().clone() for n, q in plain.model.stage2.scanner.named_parameters()}
    plain.fit()
    moved_plain = max(float((q - before[n]).abs().max()) for n, q in plain.model.stage2.scanner.named_parameters())
    assert moved > 3 * moved_plain


def test_decibel_scanner_parameters_can_learn_faster(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """train.lr_scanner_db_scale: gain, noise floor and TGC (decibels) step at lr_scanner x scale, the
    log-space scalars at lr_scanner; one Adam step moves each by about its rate."""
    cfg = _cfg(lr_scanner=3e-3, lr_scanner_db_scale=10.0)
    tr = Trainer(cfg, _dataset(toy, cfg), tmp_path / "a", progress=False)
    scanner = tr.model.stage2.scanner
    decibel = {id(getattr(scanner, n)) for n in scanner.DECIBEL_PARAMETERS}
    assert decibel == {id(q) for q in tr.model.decibel_parameters()} and len(decibel) == 3
    rates = {}
    for opt in tr.optimisers.values():
        for g in opt.param_groups:
            for q in g["params"]:
                rates[id(q)] = g["lr"]
    for name, q in scanner.named_parameters():
        assert rates[id(q)] == pytest.approx(3e-2 if id(q) in decibel else 3e-3), name
    before = {n: q.detach().clone() for n, q in scanner.named_parameters()}
    tr.train_step(tr.batch(0, 0))
    step = {n: float((q - before[n]).abs().max()) for n, q in scanner.named_parameters()}
    assert 0.5 * 3e-2 < step["noise_db"] <= 1.01 * 3e-2
    assert 0.5 * 3e-2 < step["gain_db"] <= 1.01 * 3e-2
    assert step["log_dynamic_range"] <= 1.01 * 3e-3


def test_stage2_can_train_on_stage1_output(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """train.stage2_mean: generated conditions every stage-2 phase on stage 1's output for a prior z1 (as at
    generation), not on the stage-1 target; stage 1 gets no gradient from stage 2; the run completes and
    its config records the choice. The default (target) is teacher forcing."""
    from ivus_sim.training.phases import Stage2Mean

    def spied(stage2_mean: Stage2Mean, name: str) -> tuple[list[torch.Tensor], list[torch.Tensor], Trainer]:
        cfg = _cfg(stage2_mean=stage2_mean)
        tr = Trainer(cfg, _dataset(toy, cfg), tmp_path / name, progress=False)
        m = tr.model
        seen: list[torch.Tensor] = []
        priors: list[torch.Tensor] = []
        made: list[torch.Tensor] = []
        rec, prior, dec1 = m.stage2_reconstruction, m.sample_prior, m.decode1

        def spy_rec(b, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(b["mean"])
            return rec(b, *args, **kwargs)

        def spy_prior(n, dim, generator=None):  # type: ignore[no-untyped-def]
            z = prior(n, dim, generator)
            priors.append(z)
            return z

        def spy_dec1(labels, z1):  # type: ignore[no-untyped-def]
            out = dec1(labels, z1)
            if any(z1 is z for z in priors):
                made.append(out)
            return out

        m.stage2_reconstruction, m.sample_prior, m.decode1 = spy_rec, spy_prior, spy_dec1  # type: ignore[method-assign]
        tr.phases = [p for p in tr.phases if p.name in ("g2", "patch_d", "latent_d2", "e2")]  # stage 1 fixed
        return seen, made, tr

    seen, made, tr = spied(Stage2Mean.GENERATED, "g")
    batch = tr.batch(0, 0)
    stage1_before = {n: q.detach().clone() for n, q in tr.model.stage1.named_parameters()}
    tr.train_step(batch)
    assert len(seen) == 1 and len(made) == 1
    assert seen[0] is made[0] or torch.equal(seen[0], made[0])  # stage 1's output for a prior z1
    assert not torch.allclose(seen[0], batch["mean"])
    assert not seen[0].requires_grad
    for n, q in tr.model.stage1.named_parameters():
        assert torch.equal(q, stage1_before[n]), n
    seen_t, made_t, tr_t = spied(Stage2Mean.TARGET, "t")
    batch_t = tr_t.batch(0, 0)
    tr_t.train_step(batch_t)
    assert made_t == [] and torch.equal(seen_t[0], batch_t["mean"])
    cfg = _cfg(stage2_mean=Stage2Mean.GENERATED)
    assert Trainer(cfg, _dataset(toy, cfg), tmp_path / "run", progress=False).fit().finished
    assert "stage2_mean: generated" in (tmp_path / "run" / "config.yaml").read_text()
    # stage 2 alone on an untrained stage 1 would be conditioned on noise: refused with a clear error
    with pytest.raises(IvusSimError, match="neither trains stage 1 nor starts from a trained model"):
        Trainer(cfg, _dataset(toy, cfg), tmp_path / "s2", stages=(2,), progress=False)
    Trainer(_cfg(), _dataset(toy, cfg), tmp_path / "s2t", stages=(2,), progress=False)  # teacher forcing: fine


def test_skipping_losses_weighted_zero_changes_nothing_but_the_log(toy: tuple[np.ndarray, np.ndarray],
                                                                    tmp_path: Path) -> None:
    """The trainer does not compute optional losses weighted 0; computing them anyway gives the same weights."""
    cfg = _cfg()
    runs = []
    for i, skip in enumerate((True, False)):
        tr = Trainer(cfg, _dataset(toy, cfg), tmp_path / str(i), progress=False)
        assert {"s2_texture", "s2_hist"} <= tr.unweighted_losses
        if not skip:
            tr.unweighted_losses = frozenset()
        outs = [tr.train_step(tr.batch(0, 0)) for _ in range(2)]
        runs.append((tr.model.state_dict(), outs[-1]))
    (sd_skip, log_skip), (sd_all, log_all) = runs
    assert "s2_texture" in log_all and "s2_texture" not in log_skip
    for k, v in sd_skip.items():
        assert torch.equal(v, sd_all[k]), k
