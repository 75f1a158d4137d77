"""One training run from a config and a data folder (what ``ivus-sim train`` calls).

Under ``torchrun`` (``WORLD_SIZE > 1``) this initialises the process group (NCCL on CUDA,
Gloo on CPU), pins each rank to its local GPU, and tears the group down at the end.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import torch

from ivus_sim.errors import IvusSimError
from ivus_sim.training.config import load_train_config
from ivus_sim.training.data import data_fingerprint, discover, make_dataset
from ivus_sim.training.trainer import Trainer, TrainResult, dist_info, resolve_device

__all__ = ["train", "STAGE_CHOICES"]

STAGE_CHOICES = {"1": (1,), "2": (2,), "both": (1, 2)}


def train(config: str | Path, data: str | Path, out: str | Path, *, resume: bool = False, stage: str = "both",
          device: str = "auto", seed: int = 0, progress: bool = True, command: str | None = None,
          stop_after: int | None = None) -> TrainResult:
    """Train a TwoStageAAE.

    Args:
        config: shipped config name (``smoke``, ``cpu_default``, ``gpu``) or YAML path.
        data: the data folder (any layout of :mod:`ivus_sim.training.data`).
        out: the run folder.
        resume: continue the run in ``out`` exactly where its checkpoint left it.
        stage: ``"1"``, ``"2"`` or ``"both"``.
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: the run seed.
        progress: progress bars.
        command: the reproducing command for the model card (default: this process's argv).
        stop_after: stop at this global step without final outputs (tests / time-boxed runs).
    """
    if stage not in STAGE_CHOICES:
        raise IvusSimError(f"--stage must be 1, 2 or both, got {stage!r}")
    cfg = load_train_config(config)
    rank, world = dist_info()
    dev = resolve_device(device)
    if world > 1:
        import torch.distributed as dist

        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    try:
        refs = discover(data, cfg.data.layout)
        if cfg.data.limit is not None:
            refs = refs[: cfg.data.limit]
        fingerprint = data_fingerprint(refs)
        dataset = make_dataset(refs, (cfg.model.n_angles, cfg.model.n_samples), cfg.data.target,
                               progress=progress and rank == 0)
        layouts = sorted({r.layout.value for r in refs})
        description = f"{len(refs)} pairs from {Path(data).resolve()} (layout {', '.join(layouts)})"
        corpus = Path(data) / "corpus.json"
        if corpus.exists():
            description += f"; synthetic corpus: {corpus.read_text().strip()}"
        cmd = command if command is not None else " ".join(shlex.quote(a) for a in ["ivus-sim", *sys.argv[1:]])
        trainer = Trainer(cfg, dataset, out, stages=STAGE_CHOICES[stage], device=dev, seed=seed,
                          data_description=description, data_fingerprint=fingerprint, command=cmd,
                          progress=progress)
        result = trainer.fit(resume=resume, stop_after=stop_after)
        if world > 1:
            import torch.distributed as dist

            # rank 0 hosts the rendezvous store and writes the final outputs: no rank may tear
            # down the group while another still uses it (seen as SIGABRT of rank 1 under load)
            dist.barrier()
        return result
    finally:
        if world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
