"""THE save/load of model files: ``model.safetensors`` (weights) + ``model.json`` (the model card).

One module, one set of file names, used by training runs (``<run>/model/``), by the released
generator of the embedded default (``ivus_sim/weights/``, data only) and by generation
(``--model``). A model folder holds::

    model.safetensors   tensors of TwoStageAAE.state_dict() (all parts, or only the generator)
    model.json          the card: format, model_config, code version, parameters, and what the
                        trainer adds (training data, config, metrics, the reproducing commands)

A *generator-only* file (card ``"generator_only": true``) holds just the stage-1 and stage-2
decoders (what generation needs); it keeps loading when training-time parts change.

Every failure a user can cause (missing, truncated, corrupt or foreign file, a card that does not
fit the weights) raises :class:`~ivus_sim.errors.IvusSimError` with one line naming the file.

>>> from ivus_sim.modelio import WEIGHTS_NAME, CARD_NAME
>>> WEIGHTS_NAME, CARD_NAME
('model.safetensors', 'model.json')
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivus_sim import __version__
from ivus_sim.errors import IvusSimError

if TYPE_CHECKING:
    import torch

    from ivus_sim.two_stage import TwoStageAAE

__all__ = [
    "WEIGHTS_NAME",
    "CARD_NAME",
    "MODEL_DIR_NAME",
    "MODEL_FORMAT",
    "DEFAULT_PACKAGE",
    "code_version",
    "model_id_for",
    "find_model_files",
    "read_card",
    "save_model",
    "load_model",
    "load_model_from_path",
    "has_default_model",
    "default_model_card",
    "load_default_model",
    "generator_keys",
]

#: weights file of a model folder
WEIGHTS_NAME = "model.safetensors"
#: model card beside the weights
CARD_NAME = "model.json"
#: sub-folder of a training run that holds the released model
MODEL_DIR_NAME = "model"
#: ``format`` field of every model card
MODEL_FORMAT = "ivus-sim-two-stage-aae"
#: the package that ships the embedded default (data only)
DEFAULT_PACKAGE = "ivus_sim.weights"


def code_version() -> str:
    """Package version, plus the git commit (``+g<sha>``, ``-dirty``) when run from a checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return __version__
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ivus_sim"], cwd=root, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return f"{__version__}+g{sha}" + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return __version__


def model_id_for(weights: bytes, prefix: str) -> str:
    """Stable model id: ``<prefix>-<first 12 hex digits of the weights' sha256>``."""
    return f"{prefix}-{hashlib.sha256(weights).hexdigest()[:12]}"


def find_model_files(path: str | Path) -> tuple[Path, Path]:
    """``(weights, card)`` of a run folder, a model folder, a ``.safetensors`` or a ``.json`` file.

    Raises:
        IvusSimError: nothing of the kind at ``path``.
    """
    p = Path(path)
    if not p.exists():
        raise IvusSimError(f"model not found: {p}")
    if p.is_dir():
        for d in (p / MODEL_DIR_NAME, p):
            if (d / WEIGHTS_NAME).is_file():
                return d / WEIGHTS_NAME, d / CARD_NAME
        raise IvusSimError(f"no {WEIGHTS_NAME} in {p} or {p / MODEL_DIR_NAME}; give a training run folder, "
                           "a model folder or a .safetensors file")
    if p.suffix == ".safetensors":
        return p, p.with_suffix(".json")
    if p.suffix == ".json":
        return p.with_suffix(".safetensors"), p
    raise IvusSimError(f"{p} is not a model; give a training run folder, a model folder or a .safetensors file")


def read_card(path: Any) -> dict[str, Any]:
    """Read and check a model card (a path or an importlib resource)."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IvusSimError(f"model card {path} is missing beside the weights") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise IvusSimError(f"cannot read model card {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                           ) from None
    if not isinstance(card, dict):
        raise IvusSimError(f"model card {path} is not a JSON object")
    if card.get("format") != MODEL_FORMAT:
        raise IvusSimError(f"{path} is not an ivus-sim model card (format {card.get('format')!r})")
    if not isinstance(card.get("model_config"), dict):
        raise IvusSimError(f"model card {path} has no model_config")
    return card


def generator_keys(model: TwoStageAAE) -> list[str]:
    """State-dict keys of the generator parts (what a generator-only file holds)."""
    return [f"{name}.{k}" for name, mod in model.generator_modules().items() for k in mod.state_dict()]


def save_model(model: TwoStageAAE, path_dir: str | Path, card: dict[str, Any] | None = None, *,
               generator_only: bool = False) -> Path:
    """Save ``model`` as ``<dir>/model.safetensors`` + ``<dir>/model.json`` (both written atomically).

    Args:
        model: the model.
        path_dir: the model folder (created).
        card: what to record (training data, config, metrics, commands...). ``format``,
            ``format_version``, ``model_config``, ``parameters`` and ``code_version`` are added
            unless ``card`` sets them.
        generator_only: keep only the stage-1 / stage-2 decoders (the released default).

    Returns:
        The weights path.
    """
    from safetensors.torch import save_file

    from ivus_sim.io import atomic_path, write_json

    directory = Path(path_dir)
    if directory.exists() and not directory.is_dir():
        raise IvusSimError(f"{directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if generator_only:
        sd = {k: sd[k] for k in generator_keys(model)}
    full: dict[str, Any] = {"format": MODEL_FORMAT, "format_version": 1, "model_config": model.config.to_dict(),
                            "code_version": code_version(), "parameters": sum(int(v.numel()) for v in sd.values())}
    if generator_only:
        full["generator_only"] = True
    full.update(card or {})
    weights = directory / WEIGHTS_NAME
    meta = {"format": MODEL_FORMAT}
    if generator_only:
        meta["generator_only"] = "true"
    with atomic_path(weights) as tmp:
        save_file(sd, str(tmp), metadata=meta)
    write_json(directory / CARD_NAME, full)
    return weights


def _read_weights(weights: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not weights.is_file():
        raise IvusSimError(f"model weights {weights} are missing")
    try:
        return load_file(str(weights), device="cpu")
    except Exception as e:  # SafetensorError (truncated / corrupt header), OSError, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise IvusSimError(f"cannot read model weights {weights} (truncated or not a safetensors file: {msg})"
                           ) from None


def _build(weights: Path, card: dict[str, Any], sd: dict[str, torch.Tensor], device: str | torch.device
           ) -> TwoStageAAE:
    from ivus_sim.two_stage import ModelConfig, TwoStageAAE

    try:
        cfg = ModelConfig.from_dict(card["model_config"])
        if card.get("generator_only"):  # no training-time parts (discriminators) where the model allows it
            try:
                model = TwoStageAAE(cfg, training_parts=False)  # type: ignore[call-arg]
            except TypeError:
                model = TwoStageAAE(cfg)
        else:
            model = TwoStageAAE(cfg)
    except (TypeError, ValueError) as e:
        raise IvusSimError(f"model card beside {weights.name} has an invalid model_config: {e}") from None
    if card.get("generator_only"):
        keys = generator_keys(model)
        missing = [k for k in keys if k not in sd]
        if missing:
            raise IvusSimError(f"{weights} does not fit this version's generator ({len(missing)} tensors missing, "
                               f"e.g. {missing[0]}); reinstall or retrain the model")
        sd, strict = {k: sd[k] for k in keys}, False
    else:
        strict = True
    try:
        model.load_state_dict(sd, strict=strict)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise IvusSimError(f"{weights} does not fit its model card: {lines[-1] if lines else e}") from None
    model.card = card
    return model.to(device).eval()


def load_model(path_or_dir: str | Path, device: str | torch.device = "cpu") -> TwoStageAAE:
    """Load a :class:`~ivus_sim.two_stage.TwoStageAAE` in eval mode on ``device``.

    Args:
        path_or_dir: a training run folder, a model folder, or a ``.safetensors`` file (card beside).
        device: torch device.

    The card is in ``model.card``.
    """
    weights, card_path = find_model_files(path_or_dir)
    card = read_card(card_path)
    return _build(weights, card, _read_weights(weights), device)


def load_model_from_path(path: str | Path, device: str | torch.device = "cpu"
                         ) -> tuple[TwoStageAAE, dict[str, Any], str]:
    """:func:`load_model` plus ``(card, model_id)``; ``model_id`` is ``<folder or file name>-<weights hash>``."""
    p = Path(path)
    weights, _ = find_model_files(p)
    model = load_model(p, device)
    prefix = (p.stem if p.is_file() else p.name) or "model"
    return model, dict(model.card), model_id_for(weights.read_bytes(), prefix)


# ------------------------------------------------------------------------------ the embedded default
def _resource(name: str) -> Any:
    return resources.files(DEFAULT_PACKAGE) / name


def has_default_model() -> bool:
    """Whether the installation ships the default model's weights and card (``ivus_sim/weights/``)."""
    return bool(_resource(WEIGHTS_NAME).is_file() and _resource(CARD_NAME).is_file())


def _require() -> None:
    if not has_default_model():
        raise IvusSimError("no embedded default model in this installation (ivus_sim/weights/model.safetensors "
                           "is missing); use --engine physics, or --model RUN_DIR with a trained run")


def default_model_card() -> dict[str, Any]:
    """The embedded default's card (training data, config, metrics, reproducing commands)."""
    _require()
    return read_card(_resource(CARD_NAME))


def load_default_model(device: str | torch.device = "cpu") -> tuple[TwoStageAAE, dict[str, Any], str]:
    """Load the embedded default (generator parts) in eval mode.

    Returns:
        ``(model, card, model_id)``; ``model_id`` is ``ivus-sim-default-<weights hash>``.
    """
    _require()
    card = default_model_card()
    with resources.as_file(_resource(WEIGHTS_NAME)) as wpath:
        weights = Path(wpath)
        model = _build(weights, card, _read_weights(weights), device)
        mid = model_id_for(weights.read_bytes(), "ivus-sim-default")
    return model, card, mid


# ------------------------------------------------------------------------------ transfer (train.init)
#: model-config fields that do not change the weights' shapes or meaning (a run may change them on ``init``)
_NOT_ARCHITECTURE = frozenset({"scan_conversion"})


def initial_generator(spec: str, model_config: Any) -> tuple[dict[str, torch.Tensor], str]:
    """Generator weights to start a training run from (``train.init``).

    Args:
        spec: ``"default"`` (the embedded model) or a model / run folder / ``.safetensors`` file.
        model_config: the run's :class:`~ivus_sim.two_stage.ModelConfig`; the source's must equal it.

    Returns:
        ``(state dict of the generator tensors, model_id of the source)``.

    Raises:
        IvusSimError: one line when the source is missing, unreadable or of another architecture.
    """
    model, _, mid = load_default_model() if spec == "default" else load_model_from_path(spec)
    theirs, ours = model.config.to_dict(), model_config.to_dict()
    # how display images meet the polar grid is not architecture: the weights carry over
    diff = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k) and k not in _NOT_ARCHITECTURE]
    if diff:
        k = diff[0]
        raise IvusSimError(f"train.init: {spec} has another architecture (model.{k}: {theirs.get(k)!r}, this config: "
                           f"{ours.get(k)!r}); use its config's model section or train from scratch (init: null)")
    sd = model.state_dict()
    return {k: sd[k] for k in generator_keys(model)}, mid
