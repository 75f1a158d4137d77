"""The embedded default model, as data only: ``model.safetensors`` + model card ``model.json``.

No code lives here: loading and saving are :mod:`ivus_sim.modelio` (``load_default_model``,
``default_model_card``, ``has_default_model``), releasing a training checkpoint is
:func:`ivus_sim.training.export.export_checkpoint`. The files are read with
:mod:`importlib.resources`, so they work from a wheel or a zip as well as from a checkout.

The names below are forwarded to :mod:`ivus_sim.modelio` for code written against the old API.
"""

from __future__ import annotations

from typing import Any

_FORWARDED = {
    "WEIGHTS_FILE": "WEIGHTS_NAME",
    "CARD_FILE": "CARD_NAME",
    "has_default_model": "has_default_model",
    "default_model_card": "default_model_card",
    "load_default_model": "load_default_model",
    "load_model_from_path": "load_model_from_path",
    "model_id_for": "model_id_for",
}


def __getattr__(name: str) -> Any:
    target = _FORWARDED.get(name)
    if target is None:
        raise AttributeError(f"module 'ivus_sim.weights' has no attribute {name!r} (model files: ivus_sim.modelio)")
    import ivus_sim.modelio as modelio

    return getattr(modelio, target)
