"""Training checkpoints (exact resume). Model files (safetensors + card) are :mod:`ivus_sim.modelio`.

:func:`save_checkpoint` / :func:`load_checkpoint`: everything needed to continue a run *exactly*
after a kill: model and optimiser states, the RNG states of torch (CPU and CUDA), numpy and
Python, the step/epoch/data-order position, plus the config, code version and data fingerprint
(a resume against different data or config is refused). Written atomically (temp file + fsync +
rename via :mod:`ivus_sim.io`), so a kill mid-write keeps the previous one; the hidden temp files
a ``kill -9`` can leave are removed by :func:`ivus_sim.io.clean_stale_temps` when the run resumes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ivus_sim.errors import IvusSimError
from ivus_sim.io import atomic_path
from ivus_sim.modelio import CARD_NAME, MODEL_FORMAT, WEIGHTS_NAME, code_version
from ivus_sim.modelio import load_model as load_model
from ivus_sim.modelio import save_model as _save_model
from ivus_sim.two_stage import TwoStageAAE

__all__ = [
    "CHECKPOINT_NAME",
    "WEIGHTS_NAME",
    "CARD_NAME",
    "MODEL_FORMAT",
    "code_version",
    "rng_state",
    "set_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "save_model",
    "load_model",
]

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """The global RNG states of Python, numpy and torch (CPU and every CUDA device)."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, *, model: TwoStageAAE, optimisers: dict[str, torch.optim.Optimizer],
                    progress: dict[str, int], config: dict[str, Any], data_fingerprint: str,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a resumable checkpoint atomically.

    Args:
        path: the ``.pt`` file.
        model: the model (its ``state_dict``).
        optimisers: named optimisers.
        progress: counters, e.g. ``{"step": .., "epoch": .., "batch": ..}``.
        config: the training config (``TrainConfig.to_dict()``).
        data_fingerprint: :func:`ivus_sim.training.data.data_fingerprint` of the training data.
        extra: anything else to keep (e.g. best metrics).
    """
    obj = {
        "format": MODEL_FORMAT + "-checkpoint",
        "model": model.state_dict(),
        "optimisers": {k: o.state_dict() for k, o in optimisers.items()},
        "progress": dict(progress),
        "rng": rng_state(),
        "config": config,
        "code_version": code_version(),
        "data_fingerprint": data_fingerprint,
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (raises :class:`IvusSimError` when unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise IvusSimError(f"no checkpoint at {path}; nothing to resume (run without --resume)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # corrupt or foreign file
        raise IvusSimError(f"cannot read checkpoint {path}: {e.__class__.__name__}") from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT + "-checkpoint":
        raise IvusSimError(f"{path} is not an ivus-sim training checkpoint")
    return obj


def save_model(directory: str | Path, model: TwoStageAAE, card: dict[str, Any]) -> Path:
    """Old argument order of :func:`ivus_sim.modelio.save_model` (``model, directory, card``); kept for callers."""
    return _save_model(model, directory, card)
