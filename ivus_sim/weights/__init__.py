"""The embedded default model: ``model.safetensors`` + model card ``model.json`` shipped in this package.

Loaded with :mod:`importlib.resources`, so it works from a wheel or a zip as well as from a
checkout, with no download and no training. The model card records how the weights were made
(the exact corpus and training commands, the seed, the corpus size, the config and metrics).

:func:`load_default_model` raises :class:`~ivus_sim.errors.IvusSimError` with a clear message when
the package holds no weights (e.g. a source tree before the default model was trained).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivus_sim.errors import IvusSimError

if TYPE_CHECKING:
    import torch

    from ivus_sim.two_stage import TwoStageAAE

__all__ = ["WEIGHTS_FILE", "CARD_FILE", "has_default_model", "default_model_card", "load_default_model",
           "load_model_from_path", "model_id_for"]

#: file names inside this package (same names as a training run's ``model/`` folder)
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model.json"


def _resource(name: str) -> Any:
    return resources.files(__name__) / name


def has_default_model() -> bool:
    """Whether the package ships the default model's weights and card."""
    return bool(_resource(WEIGHTS_FILE).is_file() and _resource(CARD_FILE).is_file())


def _require() -> None:
    if not has_default_model():
        raise IvusSimError("no embedded default model in this installation (ivus_sim/weights/model.safetensors "
                           "is missing); use --engine physics, or --model RUN_DIR with a trained run")


def default_model_card() -> dict[str, Any]:
    """The default model's card (training data, config, metrics, reproducing commands)."""
    _require()
    card: dict[str, Any] = json.loads(_resource(CARD_FILE).read_text(encoding="utf-8"))
    return card


def model_id_for(weights: bytes, prefix: str) -> str:
    """Stable model id: ``<prefix>-<first 12 hex digits of the weights' sha256>``."""
    return f"{prefix}-{hashlib.sha256(weights).hexdigest()[:12]}"


def load_default_model(device: str | torch.device = "cpu") -> tuple[TwoStageAAE, dict[str, Any], str]:
    """Load the embedded default model in eval mode on ``device``.

    Returns:
        ``(model, card, model_id)``; ``model_id`` is ``ivus-sim-default-<weights hash>``.
    """
    from ivus_sim.training.checkpoint import load_model

    _require()
    weights = _resource(WEIGHTS_FILE)
    with resources.as_file(weights) as wpath, resources.as_file(_resource(CARD_FILE)):
        # as_file of a real package directory returns the files themselves, so the card sits beside
        model = load_model(Path(wpath), device)
        mid = model_id_for(Path(wpath).read_bytes(), "ivus-sim-default")
    return model, dict(getattr(model, "card", {}) or default_model_card()), mid


def load_model_from_path(path: Path, device: str | torch.device = "cpu") -> tuple[TwoStageAAE, dict[str, Any], str]:
    """Load a user's trained model: a run folder, a weights folder, or a ``.safetensors`` file (card beside).

    Returns:
        ``(model, card, model_id)``; ``model_id`` is ``<folder or file name>-<weights hash>``.
    """
    from ivus_sim.training.checkpoint import WEIGHTS_NAME, load_model

    if not path.exists():
        raise IvusSimError(f"model not found: {path}")
    model = load_model(path, device)
    if path.is_file():
        candidates = [path.with_suffix(".safetensors")]
    else:
        candidates = [path / "model" / WEIGHTS_NAME, path / WEIGHTS_NAME]
    wfile = next((p for p in candidates if p.is_file() and p.suffix == ".safetensors"), None)
    prefix = (path.stem if path.is_file() else path.name) or "model"
    mid = model_id_for(wfile.read_bytes(), prefix) if wfile is not None else prefix
    return model, dict(getattr(model, "card", {}) or {}), mid
