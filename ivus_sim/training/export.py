"""Release a training run's generator as model files (how the embedded default is made).

``python -m ivus_sim.training.export RUN DEST`` (or :func:`export_checkpoint`) writes
``DEST/model.safetensors`` + ``DEST/model.json`` through :func:`ivus_sim.modelio.save_model` with
``generator_only=True``: only the stage-1 and stage-2 decoders are kept (what generation needs);
a run with ``train.ema_decay`` > 0 releases the averaged weights, as the run's own model folder does.
The card gets the checkpoint's step/epoch, training config, data fingerprint and code versions,
plus what the caller adds (corpus recipe, the reproducing commands).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ivus_sim.errors import IvusSimError
from ivus_sim.modelio import code_version, generator_keys, save_model
from ivus_sim.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from ivus_sim.training.config import TrainConfig

__all__ = ["export_checkpoint"]


def export_checkpoint(run_dir: str | Path, dest: str | Path, card: dict[str, Any] | None = None) -> Path:
    """Release the generator of ``<run_dir>/checkpoint.pt`` into ``dest`` (returns the weights path)."""
    from ivus_sim.two_stage import TwoStageAAE

    ck = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME)
    cfg = TrainConfig.from_dict(ck["config"], "checkpoint config")
    model = TwoStageAAE(cfg.model)
    keys = generator_keys(model)
    missing = [k for k in keys if k not in ck["model"]]
    if missing:
        raise IvusSimError(f"{run_dir}: checkpoint lacks generator tensors (e.g. {missing[0]})")
    weights = {**ck["model"], **ck.get("extra", {}).get("ema", {}).get("shadow", {})}  # the average when kept
    model.load_state_dict({k: weights[k] for k in keys}, strict=False)  # checks shapes
    full = {"name": cfg.name, "train_config": ck["config"], "steps": int(ck["progress"].get("step", 0)),
            "epochs": int(ck["progress"].get("epoch", 0)), "data_fingerprint": ck["data_fingerprint"],
            "seed": ck.get("extra", {}).get("seed"), "stages_trained": ck.get("extra", {}).get("stages"),
            "checkpoint_code_version": ck["code_version"], "export_code_version": code_version(), **(card or {})}
    return save_model(model, dest, full, generator_only=True)


if __name__ == "__main__":  # pragma: no cover - thin shell
    if len(sys.argv) != 3:
        sys.exit("usage: python -m ivus_sim.training.export RUN_DIR DEST_DIR")
    print(export_checkpoint(sys.argv[1], sys.argv[2]))
