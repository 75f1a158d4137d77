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
           "load_model_from_path", "model_id_for", "export_checkpoint"]

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


def _read_card(path: Any) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IvusSimError(f"cannot read model card {path}: {e}") from None
    if not isinstance(card, dict):
        raise IvusSimError(f"model card {path} is not a JSON object")
    return card


def default_model_card() -> dict[str, Any]:
    """The default model's card (training data, config, metrics, reproducing commands)."""
    _require()
    return _read_card(_resource(CARD_FILE))


def model_id_for(weights: bytes, prefix: str) -> str:
    """Stable model id: ``<prefix>-<first 12 hex digits of the weights' sha256>``."""
    return f"{prefix}-{hashlib.sha256(weights).hexdigest()[:12]}"


def _generator_keys(model: TwoStageAAE) -> list[str]:
    return [f"{name}.{k}" for name, mod in model.generator_modules().items() for k in mod.state_dict()]


def load_generator(weights: Path, card: dict[str, Any], device: str | torch.device = "cpu") -> TwoStageAAE:
    """A :class:`TwoStageAAE` whose generator parts (stage-1 and stage-2 decoders) come from ``weights``.

    The released default holds only the generator (what generation needs; the encoders and
    discriminators are training-time parts), so it keeps loading when those parts change.
    """
    from safetensors.torch import load_file

    from ivus_sim.two_stage import ModelConfig, TwoStageAAE

    model = TwoStageAAE(ModelConfig.from_dict(card["model_config"]))
    try:
        sd = load_file(str(weights), device="cpu")
    except (OSError, RuntimeError, ValueError) as e:
        raise IvusSimError(f"cannot read weights {weights}: {str(e).splitlines()[0]}") from None
    keys = _generator_keys(model)
    missing = [k for k in keys if k not in sd]
    if missing:
        raise IvusSimError(f"{weights.name} does not fit this version's generator ({len(missing)} tensors missing, "
                           f"e.g. {missing[0]}); reinstall or retrain the default model")
    try:
        model.load_state_dict({k: sd[k] for k in keys}, strict=False)
    except RuntimeError as e:
        raise IvusSimError(f"{weights.name} does not fit this version's generator: "
                           f"{str(e).splitlines()[-1].strip()}") from None
    model.card = card  # type: ignore[assignment]
    return model.to(device).eval()


def load_default_model(device: str | torch.device = "cpu") -> tuple[TwoStageAAE, dict[str, Any], str]:
    """Load the embedded default model (generator parts) in eval mode on ``device``.

    Returns:
        ``(model, card, model_id)``; ``model_id`` is ``ivus-sim-default-<weights hash>``.
    """
    _require()
    card = default_model_card()
    with resources.as_file(_resource(WEIGHTS_FILE)) as wpath:
        model = load_generator(Path(wpath), card, device)
        mid = model_id_for(Path(wpath).read_bytes(), "ivus-sim-default")
    return model, card, mid


def load_model_from_path(path: Path, device: str | torch.device = "cpu") -> tuple[TwoStageAAE, dict[str, Any], str]:
    """Load a user's trained model: a run folder, a weights folder, or a ``.safetensors`` file (card beside).

    Returns:
        ``(model, card, model_id)``; ``model_id`` is ``<folder or file name>-<weights hash>``.
    """
    from ivus_sim.training.checkpoint import WEIGHTS_NAME, load_model

    if not path.exists():
        raise IvusSimError(f"model not found: {path}")
    if path.is_file():
        candidates = [path.with_suffix(".safetensors")]
    else:
        candidates = [path / "model" / WEIGHTS_NAME, path / WEIGHTS_NAME]
    wfile = next((p for p in candidates if p.is_file() and p.suffix == ".safetensors"), None)
    card_file = wfile.with_suffix(".json") if wfile is not None else None
    card = _read_card(card_file) if card_file is not None and card_file.is_file() else {}
    if card.get("generator_only"):  # a released generator (e.g. a copy of the embedded default)
        assert wfile is not None
        model = load_generator(wfile, card, device)
    else:
        model = load_model(path, device)
    prefix = (path.stem if path.is_file() else path.name) or "model"
    mid = model_id_for(wfile.read_bytes(), prefix) if wfile is not None else prefix
    return model, dict(getattr(model, "card", {}) or {}), mid


def export_checkpoint(run_dir: str | Path, dest: str | Path, card: dict[str, Any]) -> Path:
    """Release the generator of a training run's last checkpoint (``<run>/checkpoint.pt``) as
    ``<dest>/model.safetensors`` + model card ``<dest>/model.json`` (both written atomically).

    Used for the embedded default: only the stage-1 and stage-2 decoders are kept (what generation
    needs, see :func:`load_generator`). The trainer has no learning-rate schedule, so the checkpoint
    at step ``k`` is what a run with ``max_steps = k`` ends with. The card gets the checkpoint's
    step/epoch, training config, data fingerprint and code version, plus ``card``.

    Returns:
        The weights path.
    """
    from safetensors.torch import save_file

    from ivus_sim.io import atomic_path, write_json
    from ivus_sim.training.checkpoint import CHECKPOINT_NAME, MODEL_FORMAT, code_version, load_checkpoint
    from ivus_sim.training.config import TrainConfig
    from ivus_sim.two_stage import TwoStageAAE

    ck = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME)
    cfg = TrainConfig.from_dict(ck["config"], "checkpoint config")
    model = TwoStageAAE(cfg.model)
    keys = _generator_keys(model)
    sd = {k: ck["model"][k].detach().cpu().contiguous() for k in keys}
    model.load_state_dict(sd, strict=False)  # checks shapes against this version's architecture
    dest = Path(dest)
    weights = dest / WEIGHTS_FILE
    full = {"format": MODEL_FORMAT, "format_version": 1, "generator_only": True,
            "model_config": cfg.model.to_dict(), "parameters": sum(int(v.numel()) for v in sd.values()),
            "name": cfg.name, "train_config": ck["config"], "steps": int(ck["progress"].get("step", 0)),
            "epochs": int(ck["progress"].get("epoch", 0)), "data_fingerprint": ck["data_fingerprint"],
            "checkpoint_code_version": ck["code_version"], "export_code_version": code_version(), **card}
    with atomic_path(weights) as tmp:
        save_file(sd, str(tmp), metadata={"format": MODEL_FORMAT, "generator_only": "true"})
    write_json(dest / CARD_FILE, full)
    return weights
