"""Data-parallel training with PyTorch's ``DistributedDataParallel`` (DDP).

Under ``torchrun`` (``WORLD_SIZE > 1``) :func:`process_group` initialises the process group (NCCL
on CUDA, Gloo on CPU) and tears it down at the end (after a barrier: rank 0 hosts the rendezvous
store and writes the final outputs). :class:`PhaseModule` puts every training phase behind one
``forward(phase, batch, ctx)``, so one DDP wrapper serves all optimisers: DDP broadcasts rank 0's
parameters at construction and averages gradients across ranks in buckets during each backward
(``find_unused_parameters=True``: a phase touches only part of the model). Each rank reads its
shard of every epoch's permutation (``DistributedSampler``); rank 0 alone writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ivus_sim.training.phases import Phase

__all__ = ["dist_info", "process_group", "PhaseModule", "wrap", "barrier", "all_ranks_agree"]


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` from the torchrun environment (``(0, 1)`` without it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


@contextmanager
def process_group(device: torch.device) -> Iterator[tuple[int, int]]:
    """Initialise the process group for ``device`` under torchrun (no-op alone); yields ``(rank, world)``."""
    rank, world = dist_info()
    if world <= 1:
        yield rank, world
        return
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    ok = False
    try:
        yield rank, world
        ok = True
    finally:
        if owned and dist.is_initialized():
            if ok:
                dist.barrier()  # no rank tears the group down while another still uses it
            dist.destroy_process_group()


def barrier() -> None:
    """``dist.barrier()`` when a process group is up."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_ranks_agree(ok: bool) -> bool:
    """True only when every rank passes ``ok`` (a rank that failed a check stops them all)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return ok
    t = torch.tensor([0 if ok else 1], dtype=torch.int64)
    dist.all_reduce(t)
    return int(t.item()) == 0


class PhaseModule(nn.Module):
    """The model plus its phases behind one ``forward(phase_name, batch, ctx) -> named losses``."""

    def __init__(self, model: nn.Module, phases: Sequence[Phase]) -> None:
        super().__init__()
        self.model = model
        self._phases = {p.name: p for p in phases}

    def forward(self, phase: str, batch: dict[str, torch.Tensor], ctx: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self._phases[phase].losses(batch, ctx)


def wrap(module: PhaseModule, device: torch.device, world: int) -> nn.Module:
    """``module`` itself alone, a ``DistributedDataParallel`` of it under torchrun."""
    if world <= 1:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids, find_unused_parameters=True)
