"""The model card a training run writes into ``<run>/model/model.json`` (via :mod:`ivus_sim.modelio`).

It records what the model was trained on (data description, content fingerprint, pairs used,
held out and skipped), the full training config, the seed, the steps run, the final losses, the
held-out realism, and ``commands``: the commands that reproduce the weights (``git checkout`` of
the code when it runs from a clean checkout, the synthetic corpus recipe when the data is a corpus
made by ``ivus-sim corpus``, then the training command with every option that changes the result
spelled out; the config's full content is in ``train_config``).
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.aae.latent_discriminator import EQUILIBRIUM_LOSS
from ivus_sim.modelio import code_version

__all__ = ["train_command", "corpus_command", "checkout_command", "final_metrics", "model_card"]


def train_command(config: str | Path, data: str | Path, out: str | Path, *, seed: int, stage: str, device: str,
                  skip_bad: bool = False) -> str:
    """The ``ivus-sim train`` command line for these arguments (every result-changing option explicit)."""
    args = ["ivus-sim", "train", "--config", str(config), "--data", str(data), "--out", str(out),
            "--seed", str(seed), "--stage", stage, "--device", device]
    if skip_bad:
        args.append("--skip-bad")
    return " ".join(shlex.quote(a) for a in args)


def corpus_command(data: str | Path) -> str | None:
    """The ``ivus-sim corpus`` command that made ``data`` (from its ``corpus.json``), or ``None``."""
    path = Path(data) / "corpus.json"
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("kind") != "ivus-sim-corpus":
        return None
    args = ["ivus-sim", "corpus", "--n", str(m.get("n")), "--size", str(m.get("size")), "--seed", str(m.get("seed")),
            "--preset", str(m.get("preset")), "--fov-mm", str(m.get("fov_mm")), "--out", str(data)]
    return " ".join(shlex.quote(a) for a in args)


def checkout_command() -> str | None:
    """``git checkout <commit>`` of the code that trains (``None`` outside a clean git checkout)."""
    v = code_version()
    if "+g" not in v or v.endswith("-dirty"):
        return None
    return f"git checkout {v.split('+g', 1)[1]}"


def final_metrics(history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each logged loss over the last 20 % of the log (at least one record)."""
    if not history:
        return {}
    tail = history[-max(1, len(history) // 5):]
    keys = sorted({k for r in tail for k in r if k not in ("step", "epoch", "time")})
    out = {k: float(np.mean([r[k] for r in tail if k in r])) for k in keys}
    out["latent_d_equilibrium"] = EQUILIBRIUM_LOSS
    return out


def model_card(*, name: str, stages: tuple[int, ...], data: dict[str, Any], train_config: dict[str, Any], seed: int,
               steps: int, epochs: int, metrics: dict[str, float], commands: list[str], device: str,
               world_size: int, holdout: dict[str, Any] | None, loss_weights: dict[str, float],
               code: str | None = None) -> dict[str, Any]:
    """The card's training fields (``modelio.save_model`` adds format, architecture and parameters)."""
    return {
        "name": name,
        "stages_trained": list(stages),
        "training_data": data,
        "train_config": train_config,
        "loss_weights_used": loss_weights,
        "seed": seed,
        "steps": steps,
        "epochs": epochs,
        "metrics": metrics,
        "holdout": holdout,
        "command": commands[-1] if commands else "",
        "commands": commands,
        "device": device,
        "world_size": world_size,
        "code_version": code or code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
