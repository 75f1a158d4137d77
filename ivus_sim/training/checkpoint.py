"""Checkpoints (exact resume) and released weights (safetensors + model card).

* :func:`save_checkpoint` / :func:`load_checkpoint`: everything needed to continue a run *exactly*
  after a kill: model and optimiser states, the RNG states of torch (CPU and CUDA), numpy and
  Python, the step/epoch/data-order position, plus the config, code version and data
  fingerprint (a resume against different data or config is refused). Written atomically
  (temp file + fsync + rename via :mod:`ivus_sim.io`), so a kill mid-write keeps the previous one.
* :func:`save_model` / :func:`load_model`: the weights as ``model.safetensors`` and the model card
  ``model.json`` (architecture, training data description, config, metrics, the exact command).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ivus_sim import __version__
from ivus_sim.errors import IvusSimError
from ivus_sim.io import atomic_path, write_json
from ivus_sim.two_stage import ModelConfig, TwoStageAAE

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
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "model.json"
MODEL_FORMAT = "ivus-sim-two-stage-aae"


def code_version() -> str:
    """Package version, plus the git commit (``+g<sha>``, ``-dirty``) when run from a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ivus_sim"], cwd=root, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return f"{__version__}+g{sha}" + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return __version__


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


def _weights_and_card(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.is_dir():
        for d in (p / "model", p):
            if (d / WEIGHTS_NAME).is_file():
                return d / WEIGHTS_NAME, d / CARD_NAME
        raise IvusSimError(f"no {WEIGHTS_NAME} in {p} or {p / 'model'}")
    if p.suffix == ".safetensors" and p.is_file():
        return p, p.with_suffix(".json")
    if p.suffix == ".json" and p.is_file():
        return p.with_suffix(".safetensors"), p
    raise IvusSimError(f"no model at {p}; give a run folder, a weights folder or a .safetensors file")


def save_model(directory: str | Path, model: TwoStageAAE, card: dict[str, Any]) -> Path:
    """Save ``model`` as ``<dir>/model.safetensors`` + model card ``<dir>/model.json`` (atomic).

    The card gets ``format``, ``model_config`` and ``code_version`` added; give it the training
    data description, config, metrics and command. Returns the weights path.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    n_params = sum(int(v.numel()) for v in sd.values())
    full = {"format": MODEL_FORMAT, "format_version": 1, "model_config": model.config.to_dict(),
            "code_version": code_version(), "parameters": n_params, **card}
    weights = directory / WEIGHTS_NAME
    with atomic_path(weights) as tmp:
        save_file(sd, str(tmp), metadata={"format": MODEL_FORMAT})
    write_json(directory / CARD_NAME, full)
    return weights


def load_model(path: str | Path, device: str | torch.device = "cpu") -> TwoStageAAE:
    """Load a :class:`TwoStageAAE` from a run folder, a weights folder or a ``.safetensors`` file.

    The model is returned in eval mode on ``device``; its card is in ``model.card``.
    """
    from safetensors.torch import load_file

    weights, card_path = _weights_and_card(path)
    if not card_path.is_file():
        raise IvusSimError(f"model card {card_path} is missing beside {weights.name}")
    card = json.loads(card_path.read_text())
    if card.get("format") != MODEL_FORMAT:
        raise IvusSimError(f"{card_path} is not an ivus-sim two-stage AAE model card")
    model = TwoStageAAE(ModelConfig.from_dict(card["model_config"]))
    try:
        sd = load_file(str(weights), device="cpu")
        model.load_state_dict(sd, strict=True)
    except (RuntimeError, OSError) as e:
        raise IvusSimError(f"cannot load weights {weights}: {str(e).splitlines()[0]}") from None
    model.card = card
    return model.to(device).eval()
