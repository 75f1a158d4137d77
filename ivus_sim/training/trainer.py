"""The trainer: steps the optimisers of a :class:`~ivus_sim.two_stage.TwoStageAAE` in explicit order.

One training step, per stage trained (``stages`` = (1,), (2,) or (1, 2)):

stage 1 (conditional AAE)
    1. reconstruction: ``g1`` (encoder 1 + decoder 1) on ``s1_rec``;
    2. regularisation a: ``latent_d1`` on ``s1_latent_d`` (prior samples vs the phase-1 codes);
    3. regularisation b: ``e1`` (encoder 1) on ``s1_latent_e``.

stage 2 (conditional AAE + patch GAN, teacher-forced on the stage-1 target)
    1. reconstruction + generator: ``g2`` on ``s2_rec``, ``s2_stats``, ``s2_adv_g``;
    2. patch discriminator: ``patch_d`` on ``s2_patch_d``;
    3. regularisation a: ``latent_d2`` on ``s2_latent_d``;
    4. regularisation b: ``e2`` on ``s2_latent_e``.

Outputs in the run folder: ``checkpoint.pt`` (atomic, resumable), ``log.jsonl`` and
``tensorboard/`` (scalars), ``samples/epoch_XXXX.png`` (condition | stage 1 | stage 2 | target),
``latent_discriminator.png`` (the AAE health signal; settles near log 2 = 0.693),
``model/model.safetensors`` + ``model/model.json`` (the model card).

Data parallel: under ``torchrun`` (``WORLD_SIZE > 1``) the process group is initialised, each
rank reads its shard of every epoch (``DistributedSampler``), gradients are averaged across
ranks before every optimiser step, and rank 0 alone writes files.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from ivus_sim.aae.latent_discriminator import EQUILIBRIUM_LOSS
from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Interp, polar_to_cart
from ivus_sim.io import atomic_path, save_png
from ivus_sim.seeding import derive_seed, rng, seed_everything, torch_generator
from ivus_sim.tissues import colourise
from ivus_sim.training.checkpoint import (
    CHECKPOINT_NAME,
    code_version,
    load_checkpoint,
    save_checkpoint,
    save_model,
    set_rng_state,
)
from ivus_sim.training.config import TrainConfig
from ivus_sim.training.data import augment, collate
from ivus_sim.two_stage import TwoStageAAE

__all__ = ["Trainer", "NonFiniteLossError", "TrainResult", "resolve_device", "dist_info"]


class NonFiniteLossError(IvusSimError):
    """A loss became NaN or Inf; the run stopped and the last good checkpoint was kept."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    step: int
    finished: bool
    metrics: dict[str, float] = field(default_factory=dict)
    model_dir: Path | None = None


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available (the local rank's GPU under torchrun), else CPU."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise IvusSimError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise IvusSimError("--device cuda requested but no CUDA device is available")
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return torch.device(device)


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` from the torchrun environment (``(0, 1)`` without it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


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
        progress: show a tqdm progress bar.
    """

    def __init__(self, config: TrainConfig, dataset: Dataset[Any], out_dir: str | Path, *,
                 stages: Sequence[int] = (1, 2), device: torch.device | str = "cpu", seed: int = 0,
                 data_description: str = "", data_fingerprint: str = "", command: str = "",
                 progress: bool = True) -> None:
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
        self.progress = progress
        self.rank, self.world = dist_info()
        self.is_main = self.rank == 0
        t = config.train
        if t.threads:
            torch.set_num_threads(int(t.threads))
        seed_everything(self.seed, deterministic=t.deterministic)
        torch.manual_seed(derive_seed(self.seed, "model-init"))
        self.model = TwoStageAAE(config.model).to(self.device)
        torch.manual_seed(derive_seed(self.seed, "train", self.rank))  # noise and prior draws, per rank
        self.optimisers = self._make_optimisers()
        self.sampler: DistributedSampler[int] = DistributedSampler(
            range(self.n_data),  # type: ignore[arg-type]
            num_replicas=self.world, rank=self.rank, shuffle=True,
            seed=derive_seed(self.seed, "data-order") % 2**31, drop_last=False)
        self.steps_per_epoch = math.ceil(len(self.sampler) / t.batch_size)
        total = t.epochs * self.steps_per_epoch
        self.total_steps = min(total, t.max_steps) if t.max_steps is not None else total
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.amp = t.amp and self.device.type == "cuda"
        self._writer: Any = None
        self._recent: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ setup
    def _make_optimisers(self) -> dict[str, torch.optim.Optimizer]:
        t = self.config.train
        m = self.model
        betas = (t.beta1, t.beta2)

        def adam(params: Iterator[nn.Parameter] | list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
            return torch.optim.Adam(list(params), lr=lr, betas=betas)

        opts: dict[str, torch.optim.Optimizer] = {}
        if 1 in self.stages:
            opts["g1"] = adam([*m.encoder1.parameters(), *m.stage1.parameters()], t.lr)
            opts["latent_d1"] = adam(m.latent_d1.parameters(), t.lr_d)
            opts["e1"] = adam(m.encoder1.parameters(), t.lr)
        if 2 in self.stages:
            opts["g2"] = adam([*m.encoder2.parameters(), *m.stage2.parameters()], t.lr)
            opts["patch_d"] = adam(m.patch_d.parameters(), t.lr_d)
            opts["latent_d2"] = adam(m.latent_d2.parameters(), t.lr_d)
            opts["e2"] = adam(m.encoder2.parameters(), t.lr)
        return opts

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_NAME

    def _progress(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}

    def save(self) -> Path:
        """Write the resumable checkpoint (rank 0 only)."""
        if not self.is_main:
            return self.checkpoint_path
        return save_checkpoint(self.checkpoint_path, model=self.model, optimisers=self.optimisers,
                               progress=self._progress(), config=self.config.to_dict(),
                               data_fingerprint=self.data_fingerprint,
                               extra={"stages": list(self.stages), "seed": self.seed})

    def resume(self) -> None:
        """Restore model, optimisers, RNG states and position from the run folder's checkpoint."""
        ck = load_checkpoint(self.checkpoint_path, map_location=self.device)
        if ck["config"] != self.config.to_dict():
            raise IvusSimError(f"{self.checkpoint_path} was written with a different config; resume with the same "
                               "--config or start a new --out folder")
        if ck["data_fingerprint"] != self.data_fingerprint:
            raise IvusSimError(f"{self.checkpoint_path} was trained on different data (fingerprint "
                               f"{ck['data_fingerprint']} != {self.data_fingerprint}); resume with the same --data")
        if tuple(ck["extra"].get("stages", ())) != self.stages or int(ck["extra"].get("seed", -1)) != self.seed:
            raise IvusSimError(f"{self.checkpoint_path} was written with stages {ck['extra'].get('stages')} and seed "
                               f"{ck['extra'].get('seed')}; resume with the same --stage and --seed")
        self.model.load_state_dict(ck["model"])
        for k, o in self.optimisers.items():
            o.load_state_dict(ck["optimisers"][k])
        set_rng_state(ck["rng"])
        p = ck["progress"]
        self.step, self.epoch, self.batch_in_epoch = int(p["step"]), int(p["epoch"]), int(p["batch_in_epoch"])
        self._truncate_log()

    # ------------------------------------------------------------------ logging
    @property
    def log_path(self) -> Path:
        return self.out / "log.jsonl"

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint (they will be written again)."""
        if not (self.is_main and self.log_path.exists()):
            return
        keep = [ln for ln in self.log_path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= self.step]
        text = "".join(ln + "\n" for ln in keep)
        with atomic_path(self.log_path) as tmp:
            tmp.write_text(text)

    def _log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=self.step)
        for k, v in record.items():
            if k not in ("step", "epoch", "time") and isinstance(v, (int, float)):
                self._writer.add_scalar(f"loss/{k}", v, record["step"])

    # ------------------------------------------------------------------ one step
    def _autocast(self) -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def _check(self, losses: dict[str, torch.Tensor]) -> None:
        for name, v in losses.items():
            if not torch.isfinite(v.detach()).all():
                kept = (f"last good checkpoint {self.checkpoint_path} kept" if self.checkpoint_path.exists()
                        else "no checkpoint was written yet")
                raise NonFiniteLossError(f"non-finite loss {name}={float(v.detach().float().mean())} at step "
                                         f"{self.step + 1}; training stopped, {kept}")

    def _optimise(self, name: str, loss: torch.Tensor) -> None:
        opt = self.optimisers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1:
            import torch.distributed as dist

            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                        p.grad /= self.world
        opt.step()

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One step over all trained stages, optimisers in the documented order. Returns the named losses."""
        m, w = self.model, self.config.loss
        out: dict[str, float] = {}
        if 1 in self.stages:
            with self._autocast():
                rec, z1 = m.stage1_reconstruction(batch)
            self._check(rec)
            self._optimise("g1", w.s1_rec * rec["s1_rec"])
            with self._autocast():
                dz = m.latent_discriminator_losses(1, z1)
            self._check(dz)
            self._optimise("latent_d1", dz["s1_latent_d"])
            with self._autocast():
                ez = m.encoder_regularisation_losses(1, batch)
            self._check(ez)
            self._optimise("e1", w.latent_e * ez["s1_latent_e"])
            out.update({k: float(v.detach()) for k, v in {**rec, **dz, **ez}.items()})
        if 2 in self.stages:
            lab = batch["labels"]
            noise = m.noise(lab.shape[0], shape=(lab.shape[-2], lab.shape[-1]))
            with self._autocast():
                rec2, z2, fake = m.stage2_reconstruction(batch, noise)
            self._check(rec2)
            g_loss = w.s2_rec * rec2["s2_rec"] + w.s2_stats * rec2["s2_stats"] + w.s2_adv_g * rec2["s2_adv_g"]
            self._optimise("g2", g_loss)
            with self._autocast():
                pd = m.patch_discriminator_losses(batch, fake.detach())
            self._check(pd)
            self._optimise("patch_d", pd["s2_patch_d"])
            with self._autocast():
                dz2 = m.latent_discriminator_losses(2, z2)
            self._check(dz2)
            self._optimise("latent_d2", dz2["s2_latent_d"])
            with self._autocast():
                ez2 = m.encoder_regularisation_losses(2, batch)
            self._check(ez2)
            self._optimise("e2", w.latent_e * ez2["s2_latent_e"])
            out.update({k: float(v.detach()) for k, v in {**rec2, **pd, **dz2, **ez2}.items()})
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
    def fit(self, resume: bool = False, stop_after: int | None = None) -> TrainResult:
        """Train to the end of the schedule (or ``stop_after`` steps in total, simulating a kill).

        Args:
            resume: continue from the run folder's checkpoint.
            stop_after: stop (without the final outputs) once this global step is reached.
        """
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume()
        elif self.checkpoint_path.exists():
            raise IvusSimError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        elif self.is_main and self.log_path.exists():
            self.log_path.unlink()
        if self.world > 1:
            import torch.distributed as dist

            for p in self.model.state_dict().values():
                dist.broadcast(p, src=0)
        t = self.config.train
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.progress and self.is_main),
                   desc=f"train stage {'+'.join(map(str, self.stages))}", unit="step", dynamic_ncols=True)
        t0 = time.time()
        try:
            while self.step < self.total_steps:
                if stop_after is not None and self.step >= stop_after:
                    return TrainResult(self.step, False)
                losses = self.train_step(self.batch(self.epoch, self.batch_in_epoch))
                self.step += 1
                self.batch_in_epoch += 1
                for k, v in losses.items():
                    self._recent.setdefault(k, []).append(v)
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items() if k in
                                 ("s1_rec", "s1_latent_d", "s2_rec", "s2_patch_d", "s2_latent_d")})
                if self.step % t.log_every == 0 or self.step == self.total_steps:
                    self._log({"step": self.step, "epoch": self.epoch, "time": round(time.time() - t0, 3),
                               **{k: float(np.mean(v)) for k, v in self._recent.items()}})
                    self._recent = {}
                epoch_done = self.batch_in_epoch >= self.steps_per_epoch
                if epoch_done:
                    if self.is_main:
                        self.sample_grid(self.out / "samples" / f"epoch_{self.epoch:04d}.png")
                    self.epoch += 1
                    self.batch_in_epoch = 0
                if epoch_done or self.step % t.checkpoint_every == 0 or self.step == self.total_steps:
                    self.save()
        finally:
            bar.close()
            if self._writer is not None:
                self._writer.flush()
        metrics = self.final_metrics()
        model_dir = None
        if self.is_main:
            if self.batch_in_epoch:  # partial last epoch (max_steps): still show it
                self.sample_grid(self.out / "samples" / f"epoch_{self.epoch:04d}.png")
            self.plot_latent_curve(self.out / "latent_discriminator.png")
            model_dir = self.out / "model"
            save_model(model_dir, self.model, self.model_card(metrics))
        return TrainResult(self.step, True, metrics, model_dir)

    # ------------------------------------------------------------------ outputs
    def history(self) -> list[dict[str, Any]]:
        """The JSONL log as a list of records."""
        if not self.log_path.exists():
            return []
        return [json.loads(ln) for ln in self.log_path.read_text().splitlines() if ln.strip()]

    def final_metrics(self) -> dict[str, float]:
        """Mean of each logged loss over the last 20 % of the log (at least one record)."""
        hist = self.history()
        if not hist:
            return {}
        tail = hist[-max(1, len(hist) // 5):]
        keys = sorted({k for r in tail for k in r if k not in ("step", "epoch", "time")})
        out = {k: float(np.mean([r[k] for r in tail if k in r])) for k in keys}
        out["latent_d_equilibrium"] = EQUILIBRIUM_LOSS
        return out

    def model_card(self, metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "stages_trained": list(self.stages),
            "training_data": {"description": self.data_description, "fingerprint": self.data_fingerprint,
                              "n_pairs": self.n_data},
            "train_config": self.config.to_dict(),
            "seed": self.seed,
            "steps": self.step,
            "epochs": self.epoch,
            "metrics": metrics,
            "command": self.command,
            "device": str(self.device),
            "world_size": self.world,
            "code_version": code_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    @torch.no_grad()
    def sample_grid(self, path: Path) -> Path:
        """Save rows of ``condition | stage 1 | stage 2 | target`` (Cartesian) for the first samples."""
        m = self.model
        k = min(self.config.train.grid_samples, self.n_data)
        samples = [self.dataset[i] for i in range(k)]
        batch = collate(samples, self.device)
        g = torch_generator(self.seed, "sample-grid")
        z1 = m.prior.sample(k, m.z_dims[0], generator=g).to(self.device)
        z2 = m.prior.sample(k, m.z_dims[1], generator=g).to(self.device)
        noise = torch.randn(k, m.config.n_noise, *m.polar_shape, generator=g).to(self.device)
        was = m.training
        m.eval()
        mean = m.decode1(batch["labels"], z1) if 1 in self.stages else batch["mean"]
        img = m.decode2(mean, batch["labels"], z2, noise) if 2 in self.stages else mean
        m.train(was)
        n = 2 * m.config.n_samples
        lab_c = polar_to_cart(batch["labels"].cpu(), n, Interp.NEAREST, 255)
        rows = []
        for i in range(k):
            cells = [colourise(np.asarray(lab_c[i]))]
            for t in (mean[i, 0], img[i, 0], batch["image"][i, 0]):
                c = np.asarray(polar_to_cart(t.float().cpu(), n, Interp.BILINEAR, 0.0))
                g8 = (np.clip(c, 0, 1) * 255).round().astype(np.uint8)
                cells.append(np.repeat(g8[..., None], 3, -1))
            rows.append(np.concatenate(cells, 1))
        return save_png(path, np.concatenate(rows, 0))

    def plot_latent_curve(self, path: Path) -> Path | None:
        """Plot the latent-discriminator losses against their equilibrium log 2 (the AAE health signal)."""
        from ivus_sim import plotting as plt

        hist = self.history()
        keys = [k for k in ("s1_latent_d", "s2_latent_d") if any(k in r for r in hist)]
        if not keys:
            return None
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for k in keys:
            steps = [r["step"] for r in hist if k in r]
            ax.plot(steps, [r[k] for r in hist if k in r], label=f"stage {k[1]} latent discriminator")
        ax.axhline(EQUILIBRIUM_LOSS, color="k", ls="--", lw=1, label="equilibrium log 2")
        ax.set_xlabel("step")
        ax.set_ylabel("BCE loss")
        ax.set_title("AAE health: latent discriminator loss")
        ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return path
