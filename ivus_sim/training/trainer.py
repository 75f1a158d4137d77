"""The trainer loop: steps the optimisers of a :class:`~ivus_sim.two_stage.TwoStageAAE`, phase by phase.

One step runs the phases of :mod:`ivus_sim.training.phases` in order (stage 1: ``g1``,
``latent_d1``, ``e1``; stage 2: ``g2``, ``patch_d``, ``latent_d2``, ``e2``). Each phase returns
named losses; the trainer weights them with ``train.loss_weights`` (generic: a new loss name of the
model is picked up with the model's documented default weight, else 1), sums them and steps that
phase's optimiser. ``train.max_steps`` alone decides how long a run is.

Side effects are confined to :meth:`Trainer.fit`: constructing a trainer does not touch the
global RNGs (the model is initialised inside ``torch.random.fork_rng``; noise and prior draws come
from the trainer's own generator) nor the thread count (``train.threads`` and
``train.deterministic`` apply during ``fit`` and are restored after).

Outputs in the run folder: ``checkpoint.pt`` (atomic, resumable), ``config.yaml`` (the resolved
config), ``log.jsonl`` and ``tensorboard/`` (:mod:`~ivus_sim.training.logging`), ``samples/step_XXXXXX.png`` and
``latent_discriminator.png`` (:mod:`~ivus_sim.training.plots`), ``holdout_realism.json``
(:mod:`~ivus_sim.training.holdout`), ``model/model.safetensors`` + ``model/model.json``
(:mod:`ivus_sim.modelio`, card by :mod:`~ivus_sim.training.card`). With ``train.ema_decay`` > 0 the
grids, the held-out measurement and the model use the average of the generator's weights
(:mod:`~ivus_sim.training.ema`); the checkpoint keeps both.

Data parallel (:mod:`~ivus_sim.training.distributed`): under ``torchrun`` the phases run through
one ``DistributedDataParallel`` wrapper (bucketed gradient averaging), each rank reads its shard
of every epoch, and rank 0 alone writes files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from ivus_sim.errors import IvusSimError
from ivus_sim.io import clean_stale_temps, write_json
from ivus_sim.modelio import MODEL_DIR_NAME, code_version, initial_generator, save_model
from ivus_sim.seeding import derive_seed, rng
from ivus_sim.training import distributed
from ivus_sim.training.card import final_metrics, model_card
from ivus_sim.training.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ivus_sim.training.config import DEFAULT_LOSS_WEIGHT, TrainConfig
from ivus_sim.training.data import augment, collate
from ivus_sim.training.ema import WeightAverage
from ivus_sim.training.logging import RunLog
from ivus_sim.training.phases import Stage2Mean, loss_weight, model_phases
from ivus_sim.two_stage import TwoStageAAE

__all__ = ["Trainer", "NonFiniteLossError", "TrainResult", "StepContext", "SCHEDULE_KEYS", "CONFIG_NAME"]

#: the resolved config of a run, in its folder
CONFIG_NAME = "config.yaml"

#: config fields that may change when a run is resumed (they do not change the weights of the steps
#: already taken): a larger ``max_steps`` extends a finished run
SCHEDULE_KEYS = {"train": ("max_steps", "checkpoint_every", "log_every", "sample_every", "grid_samples"),
                 "evaluate": None}


class NonFiniteLossError(IvusSimError):
    """A loss became NaN or Inf; the run stopped and the last good checkpoint was kept."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    step: int
    finished: bool
    metrics: dict[str, float] = field(default_factory=dict)
    model_dir: Path | None = None
    holdout: dict[str, Any] | None = None


class StepContext:
    """What the phases of one step share (codes, the fake image, the run's generator).

    A plain object rather than a dict, so ``DistributedDataParallel`` passes it through untouched.
    """

    def __init__(self, generator: torch.Generator, unweighted: frozenset[str] = frozenset()) -> None:
        self._d: dict[str, Any] = {"generator": generator, "unweighted": unweighted}

    def __getitem__(self, k: str) -> Any:
        return self._d[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self._d[k] = v

    def get(self, k: str, default: Any = None) -> Any:
        return self._d.get(k, default)


def _schedule_free(d: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for section, keys in SCHEDULE_KEYS.items():
        if keys is None:
            out.pop(section, None)
        elif isinstance(out.get(section), dict):
            for k in keys:
                out[section].pop(k, None)
    out.pop("name", None)
    return out


class Trainer:
    """Train a :class:`TwoStageAAE` on a dataset of polar samples.

    Args:
        config: the training configuration.
        dataset: indexable polar samples (:func:`ivus_sim.training.data.make_dataset`).
        out_dir: the run folder.
        stages: stages to train, ``(1,)``, ``(2,)`` or ``(1, 2)``.
        device: ``torch.device`` to train on.
        seed: the run seed (model init, data order, augmentation, noise, prior samples).
        data_description: free text for the model card (what the data is, where it came from).
        data_fingerprint: content hash of the training data (checkpoints refuse other data).
        command: the command line that reproduces the run (for the model card).
        commands: every command that reproduces the weights, in order (default ``[command]``).
        progress: show a tqdm progress bar.
        holdout: pairs held out from training, measured at the end (:mod:`~ivus_sim.training.holdout`).
        data_info: extra ``training_data`` fields for the card (pairs skipped, held out...).
    """

    def __init__(self, config: TrainConfig, dataset: Dataset[Any], out_dir: str | Path, *,
                 stages: Sequence[int] = (1, 2), device: torch.device | str = "cpu", seed: int = 0,
                 data_description: str = "", data_fingerprint: str = "", command: str = "",
                 commands: Sequence[str] | None = None, progress: bool = True, holdout: Sequence[Any] = (),
                 data_info: dict[str, Any] | None = None) -> None:
        if not set(stages) <= {1, 2} or not stages:
            raise IvusSimError(f"stages must be a non-empty subset of (1, 2), got {tuple(stages)}")
        self.config = config
        self.dataset = dataset
        self.n_data = len(dataset)  # type: ignore[arg-type]
        if self.n_data == 0:
            raise IvusSimError("the training dataset is empty")
        self.out = Path(out_dir)
        self.stages = tuple(sorted(set(stages)))
        self.device = torch.device(device)
        self.seed = int(seed)
        self.data_description = data_description
        self.data_fingerprint = data_fingerprint
        self.command = command
        self.commands = list(commands) if commands is not None else ([command] if command else [])
        self.progress = progress
        self.holdout_refs = list(holdout)
        self.data_info = dict(data_info or {})
        self.rank, self.world = distributed.dist_info()
        self.is_main = self.rank == 0
        self.code_version = code_version()  # of the code that trains (the checkout may move during a run)
        t = config.train
        if t.stage2_mean is Stage2Mean.GENERATED and 1 not in self.stages and t.init is None:
            raise IvusSimError("train.stage2_mean: generated conditions stage 2 on stage 1's output, but this run "
                               "neither trains stage 1 nor starts from a trained model (train.init); train both "
                               "stages, set train.init, or use train.stage2_mean: target")
        with torch.random.fork_rng(devices=[]):  # the seed decides the init; the global RNG is left alone
            torch.manual_seed(derive_seed(self.seed, "model-init"))
            self.model = TwoStageAAE(config.model)
        self.init_model_id: str | None = None
        if t.init is not None:  # transfer: the generator of a trained model (discriminators start fresh)
            sd, self.init_model_id = initial_generator(t.init, config.model)  # same architecture: same keys
            self.model.load_state_dict(sd, strict=False)
        self.model.to(self.device)
        self.phases = model_phases(self.model, self.stages, t.stage2_mean)
        defaults = getattr(self.model, "default_loss_weights", None)
        self.model_loss_defaults: dict[str, float] = dict(defaults()) if callable(defaults) else {}
        # the physical scalars (scanner style, tissue attenuation) learn at their own rate
        fast = {id(q) for q in self.model.physical_parameters()} if t.lr_scanner is not None else set()
        decibel = {id(q) for q in self.model.decibel_parameters()} & fast if t.lr_scanner_db_scale != 1 else set()
        self.optimisers: dict[str, torch.optim.Optimizer] = {}
        for p in self.phases:
            base = t.lr_d if p.discriminator else t.lr
            slow = [q for q in p.params if id(q) not in fast]
            groups: list[dict[str, Any]] = [{"params": slow, "lr": base}] if slow else []
            quick = [q for q in p.params if id(q) in fast and id(q) not in decibel]
            if quick:
                groups.append({"params": quick, "lr": t.lr_scanner})
            in_db = [q for q in p.params if id(q) in decibel]
            if in_db:
                assert t.lr_scanner is not None
                groups.append({"params": in_db, "lr": t.lr_scanner * t.lr_scanner_db_scale})
            self.optimisers[p.name] = torch.optim.Adam(groups, lr=base, betas=(t.beta1, t.beta2))
        self.module = distributed.PhaseModule(self.model, self.phases)
        #: the average of the generator's weights (``train.ema_decay``), what the run exports; None = off
        self.ema: WeightAverage | None = None
        if t.ema_decay > 0:
            gen = {id(q) for p in self.phases if not p.discriminator for q in p.params}
            self.ema = WeightAverage(((n, q) for n, q in self.model.named_parameters() if id(q) in gen),
                                     t.ema_decay)
        self.generator = torch.Generator().manual_seed(derive_seed(self.seed, "train", self.rank))
        self.sampler: DistributedSampler[int] = DistributedSampler(
            range(self.n_data),  # type: ignore[arg-type]
            num_replicas=self.world, rank=self.rank, shuffle=True,
            seed=derive_seed(self.seed, "data-order") % 2**31, drop_last=False)
        self.steps_per_epoch = max(1, math.ceil(len(self.sampler) / t.batch_size))
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.amp = t.amp and self.device.type == "cuda"
        self.log = RunLog(self.out, enabled=self.is_main)
        self._engine: nn.Module = self.module
        self._recent: dict[str, list[float]] = {}
        self._used_weights: dict[str, float] = {}
        #: names of the losses weighted 0: phases may skip computing them (the model's optional losses)
        self.unweighted_losses = frozenset(k for k in {*self.model_loss_defaults, *t.loss_weights}
                                           if self.weight(k) == 0)

    @property
    def total_steps(self) -> int:
        """The run length: ``train.max_steps``."""
        return self.config.train.max_steps

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.log.path

    def weight(self, name: str) -> float:
        """The weight of named loss ``name`` (config, else the model's default, else 1)."""
        return loss_weight(name, self.config.train.loss_weights, self.model_loss_defaults, DEFAULT_LOSS_WEIGHT)

    # ------------------------------------------------------------------ checkpoints
    def _progress(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}

    def _rank_rng(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "global": rng_state()}

    def save(self) -> Path:
        """Write the resumable checkpoint (rank 0 writes; every rank's RNG states are kept)."""
        states = [self._rank_rng()]
        if self.world > 1:
            import torch.distributed as dist

            states = [None] * self.world  # type: ignore[list-item]
            dist.all_gather_object(states, self._rank_rng())
        if not self.is_main:
            return self.checkpoint_path
        return save_checkpoint(self.checkpoint_path, model=self.model, optimisers=self.optimisers,
                               progress=self._progress(), config=self.config.to_dict(),
                               data_fingerprint=self.data_fingerprint,
                               extra={"stages": list(self.stages), "seed": self.seed, "world_size": self.world,
                                      "rank_rng": states,
                                      **({"ema": self.ema.state_dict()} if self.ema is not None else {})})

    def resume(self) -> None:
        """Restore model, optimisers, RNG states and position from the run folder's checkpoint."""
        ck = load_checkpoint(self.checkpoint_path, map_location=self.device)
        try:  # fields added since the checkpoint was written take their defaults (which it trained with)
            written = TrainConfig.from_dict(ck["config"], "checkpoint config").to_dict()
        except IvusSimError:
            written = ck["config"]
        if _schedule_free(written) != _schedule_free(self.config.to_dict()):
            raise IvusSimError(f"{self.checkpoint_path} was written with a different config; resume with the same "
                               "--config (only train.max_steps and the logging/checkpoint intervals may change) "
                               "or start a new --out folder")
        if ck["data_fingerprint"] != self.data_fingerprint:
            raise IvusSimError(f"{self.checkpoint_path} was trained on different data (fingerprint "
                               f"{ck['data_fingerprint']} != {self.data_fingerprint}); resume with the same --data")
        extra = ck.get("extra", {})
        if tuple(extra.get("stages", ())) != self.stages or int(extra.get("seed", -1)) != self.seed:
            raise IvusSimError(f"{self.checkpoint_path} was written with stages {extra.get('stages')} and seed "
                               f"{extra.get('seed')}; resume with the same --stage and --seed")
        if int(extra.get("world_size", 1)) != self.world:
            raise IvusSimError(f"{self.checkpoint_path} was written by {extra.get('world_size', 1)} process(es); "
                               f"resume with the same number (now {self.world})")
        missing = sorted(set(self.optimisers) - set(ck["optimisers"]))
        if missing:
            raise IvusSimError(f"{self.checkpoint_path} lacks optimiser state for {', '.join(missing)}")
        self.model.load_state_dict(ck["model"])
        if self.ema is not None:
            if "ema" not in extra:
                raise IvusSimError(f"{self.checkpoint_path} holds no weight average (train.ema_decay); "
                                   "resume with the config it was written with")
            self.ema.load_state_dict(extra["ema"])
        for k, o in self.optimisers.items():
            o.load_state_dict(ck["optimisers"][k])
        states = extra.get("rank_rng")
        if states:
            mine = states[self.rank]
            self.generator.set_state(mine["generator"])
            set_rng_state(mine["global"])
        elif "rng" in ck:
            set_rng_state(ck["rng"])
        p = ck["progress"]
        self.step, self.epoch, self.batch_in_epoch = int(p["step"]), int(p["epoch"]), int(p["batch_in_epoch"])
        self.log.truncate(self.step)

    # ------------------------------------------------------------------ one step
    def _autocast(self) -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def _check(self, losses: dict[str, torch.Tensor]) -> None:
        bad = next(((k, v) for k, v in losses.items() if not torch.isfinite(v.detach()).all()), None)
        ok = distributed.all_ranks_agree(bad is None) if self.world > 1 else bad is None
        if ok:
            return
        kept = (f"last good checkpoint {self.checkpoint_path} kept" if self.checkpoint_path.exists()
                else "no checkpoint was written yet")
        if bad is None:
            raise NonFiniteLossError(f"a loss became non-finite on another process at step {self.step + 1}; "
                                     f"training stopped, {kept}")
        name, v = bad
        raise NonFiniteLossError(f"non-finite loss {name}={float(v.detach().float().mean())} at step "
                                 f"{self.step + 1}; training stopped, {kept}")

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One step over all phases, optimisers in order. Returns the named losses (unweighted)."""
        ctx = StepContext(self.generator, self.unweighted_losses)
        out: dict[str, float] = {}
        for phase in self.phases:
            with self._autocast():
                losses = self._engine(phase.name, batch, ctx)
            self._check(losses)
            total = sum((self.weight(k) * v.float().mean() for k, v in losses.items()),
                        torch.zeros((), device=self.device))
            for k in losses:
                self._used_weights[k] = self.weight(k)
            opt = self.optimisers[phase.name]
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            out.update({k: float(v.detach().float().mean()) for k, v in losses.items()})
        if self.ema is not None:
            self.ema.update()
        return out

    # ------------------------------------------------------------------ data order
    def epoch_order(self, epoch: int) -> list[int]:
        """This rank's sample indices for ``epoch`` (a seeded permutation, sharded under DDP)."""
        self.sampler.set_epoch(epoch)
        return list(iter(self.sampler))

    def batch(self, epoch: int, b: int) -> dict[str, torch.Tensor]:
        """The augmented batch ``b`` of ``epoch`` (deterministic in seed, epoch and sample index)."""
        bs = self.config.train.batch_size
        idx = self.epoch_order(epoch)[b * bs:(b + 1) * bs]
        aug = self.config.data.augment
        samples = [augment(self.dataset[i], aug, rng(self.seed, "augment", epoch, i)) for i in idx]
        return collate(samples, self.device)

    # ------------------------------------------------------------------ loop
    @contextmanager
    def _run_settings(self) -> Iterator[None]:
        """``train.threads`` / ``train.deterministic`` for the duration of a run, restored after."""
        t = self.config.train
        threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        try:
            if t.threads:
                torch.set_num_threads(int(t.threads))
            if t.deterministic:
                torch.use_deterministic_algorithms(True, warn_only=True)
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(det)

    def _prepare_folder(self, resume: bool) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise IvusSimError(f"--out {self.out} is an existing file; give a folder for the run")
        if resume:
            if not self.checkpoint_path.is_file():
                raise IvusSimError(f"no checkpoint in {self.out}; nothing to resume (run without --resume)")
        elif self.checkpoint_path.exists():
            raise IvusSimError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        distributed.barrier()  # every rank has checked before rank 0 changes the folder
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            clean_stale_temps(self.out, recursive=True, exclusive=True)  # what a kill -9 left mid-write
            if not resume:
                self.log.reset()
        distributed.barrier()

    def fit(self, resume: bool = False, stop_after: int | None = None) -> TrainResult:
        """Train to ``train.max_steps`` (or ``stop_after`` steps in total, simulating a kill).

        Args:
            resume: continue from the run folder's checkpoint (a larger ``max_steps`` extends the run).
            stop_after: stop (without the final outputs) once this global step is reached.
        """
        from tqdm.auto import tqdm

        self._prepare_folder(resume)
        if resume:
            self.resume()
        if self.is_main:
            self.write_config()  # after a resume was accepted (a refused one changes nothing)
        t = self.config.train
        with self._run_settings():
            self._engine = distributed.wrap(self.module, self.device, self.world)
            bar = tqdm(total=self.total_steps, initial=min(self.step, self.total_steps),
                       disable=not (self.progress and self.is_main),
                       desc=f"train stage {'+'.join(map(str, self.stages))}", unit="step", dynamic_ncols=True)
            t0 = time.time()
            try:
                while self.step < self.total_steps:
                    if stop_after is not None and self.step >= stop_after:
                        return TrainResult(self.step, False)
                    losses = self.train_step(self.batch(self.epoch, self.batch_in_epoch))
                    self.step += 1
                    self.batch_in_epoch += 1
                    if self.batch_in_epoch >= self.steps_per_epoch:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    for k, v in losses.items():
                        self._recent.setdefault(k, []).append(v)
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items() if k in
                                     ("s1_rec", "s1_latent_d", "s2_rec", "s2_patch_d", "s2_latent_d")})
                    last = self.step == self.total_steps
                    if self.step % t.log_every == 0 or last:
                        self.log.write({"step": self.step, "epoch": self.epoch, "time": round(time.time() - t0, 3),
                                        **{k: sum(v) / len(v) for k, v in self._recent.items()}},
                                       purge_step=self.step)
                        self._recent = {}
                    if self.is_main and self.step % t.sample_every == 0 and not last:
                        self.sample_grid(self.out / "samples" / f"step_{self.step:06d}.png")
                    if self.step % t.checkpoint_every == 0 or last:
                        self.save()
            finally:
                bar.close()
                self.log.close()
                self._engine = self.module
            return self._finish()

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Within the block the model holds the weights the run exports (the average when
        ``train.ema_decay`` > 0, else the live weights)."""
        with self.ema.applied() if self.ema is not None else nullcontext():
            yield

    def _finish(self) -> TrainResult:
        metrics = final_metrics(self.log.history()) if self.is_main else {}
        holdout = None
        model_dir = None
        if self.is_main:
            self.sample_grid(self.out / "samples" / f"step_{self.step:06d}.png")  # averaged itself
            self.plot_latent_curve(self.out / "latent_discriminator.png")
            with self.averaged():  # the held-out measurement and the model: the weights the run exports
                if self.holdout_refs and self.config.evaluate.holdout_fraction > 0:
                    from ivus_sim.training.holdout import HOLDOUT_NAME, measure_holdout

                    holdout = measure_holdout(self.model, self.holdout_refs, self.config.evaluate, self.seed)
                    write_json(self.out / HOLDOUT_NAME, holdout)
                model_dir = self.out / MODEL_DIR_NAME
                save_model(self.model, model_dir, self.model_card(metrics, holdout))
        return TrainResult(self.step, True, metrics, model_dir, holdout)

    # ------------------------------------------------------------------ outputs
    def write_config(self) -> Path:
        """``<run>/config.yaml``: the resolved config of this run (``--config`` accepts it as is)."""
        import yaml

        from ivus_sim.io import atomic_path

        path = self.out / CONFIG_NAME
        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        return path

    def history(self) -> list[dict[str, Any]]:
        """The JSONL log as a list of records."""
        return self.log.history()

    def final_metrics(self) -> dict[str, float]:
        """Mean of each logged loss over the last 20 % of the log."""
        return final_metrics(self.log.history())

    def model_card(self, metrics: dict[str, float], holdout: dict[str, Any] | None = None) -> dict[str, Any]:
        data = {"description": self.data_description, "fingerprint": self.data_fingerprint,
                "n_pairs": self.n_data, **self.data_info}
        if self.init_model_id is not None:
            data["initialised_from"] = {"init": self.config.train.init, "model_id": self.init_model_id}
        return model_card(name=self.config.name, stages=self.stages, data=data, train_config=self.config.to_dict(),
                          seed=self.seed, steps=self.step, epochs=self.epoch, metrics=metrics,
                          commands=self.commands, device=str(self.device), world_size=self.world, holdout=holdout,
                          loss_weights=dict(sorted(self._used_weights.items())), code=self.code_version)

    def sample_grid(self, path: Path) -> Path:
        """Rows of ``condition | stage 1 | stage 2 | target`` through ``render_polar`` (first samples)."""
        from ivus_sim.training.plots import sample_grid

        k = min(self.config.train.grid_samples, self.n_data)
        with self.averaged():
            return sample_grid(self.model, [self.dataset[i] for i in range(k)], path, self.seed)

    def plot_latent_curve(self, path: Path) -> Path | None:
        """The AAE health signal (latent-discriminator losses against log 2)."""
        from ivus_sim.training.plots import plot_latent_curve

        return plot_latent_curve(self.log.history(), path)
