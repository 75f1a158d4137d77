"""Training configuration: one YAML file -> :class:`TrainConfig` (model, optimisation, data).

Configs ship in ``configs/train/`` (``smoke``, ``cpu_default``, ``gpu``); a name or a path works::

    model:   {n_angles: 128, n_samples: 64, ...}          # ModelConfig fields
    train:   {batch_size: 8, epochs: 10, lr: 2.0e-4, ...}  # OptimConfig fields
    loss:    {s1_rec: 1.0, s2_rec: 0.2, ...}               # LossWeights fields
    data:    {layout: auto, augment: {...}, target: {...}}

Unknown keys are errors naming the key (a typo must not silently train something else).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ivus_sim.errors import IvusSimError
from ivus_sim.training.data import Augmentation, Layout, TargetConfig
from ivus_sim.two_stage import ModelConfig

__all__ = ["OptimConfig", "LossWeights", "DataConfig", "TrainConfig", "load_train_config", "train_config_path"]


@dataclass(frozen=True)
class OptimConfig:
    """Optimisation schedule.

    Args:
        batch_size: pairs per step (per process under DDP).
        epochs: passes over the data.
        max_steps: stop after this many steps (overrides ``epochs`` when smaller; ``None`` = no cap).
        lr: Adam learning rate of the encoders/decoders.
        lr_d: Adam learning rate of the discriminators (latent and patch).
        beta1: Adam beta1 (0.5 as in DCGAN/pix2pix).
        beta2: Adam beta2.
        checkpoint_every: steps between checkpoints (also at every epoch end).
        log_every: steps between log lines (JSONL, TensorBoard).
        grid_samples: pairs shown in each epoch's sample grid.
        deterministic: ask torch for deterministic algorithms (exact resume tests on CPU).
        amp: bfloat16 autocast on CUDA (ignored on CPU).
        threads: CPU threads for torch (``None`` = torch's default).
    """

    batch_size: int = 8
    epochs: int = 10
    max_steps: int | None = None
    lr: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    checkpoint_every: int = 100
    log_every: int = 10
    grid_samples: int = 4
    deterministic: bool = False
    amp: bool = True
    threads: int | None = None


@dataclass(frozen=True)
class LossWeights:
    """Weights of the named losses of :class:`ivus_sim.two_stage.TwoStageAAE`.

    Args:
        s1_rec: stage-1 L1 reconstruction.
        s2_rec: stage-2 L1 reconstruction.
        s2_stats: stage-2 local mean/std (speckle statistics) loss.
        s2_adv_g: stage-2 patch-GAN generator loss.
        latent_e: encoder regularisation (AAE phase 2b) of both stages.
    """

    s1_rec: float = 1.0
    s2_rec: float = 0.2
    s2_stats: float = 2.0
    s2_adv_g: float = 0.1
    latent_e: float = 1.0


@dataclass(frozen=True)
class DataConfig:
    """Data settings.

    Args:
        layout: folder layout (:class:`ivus_sim.training.data.Layout`).
        limit: use only the first ``limit`` pairs (``None`` = all).
        augment: augmentation settings.
        target: stage-1 target settings.
    """

    layout: Layout = Layout.AUTO
    limit: int | None = None
    augment: Augmentation = field(default_factory=Augmentation)
    target: TargetConfig = field(default_factory=TargetConfig)


@dataclass(frozen=True)
class TrainConfig:
    """A whole training configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    data: DataConfig = field(default_factory=DataConfig)
    name: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["data"]["layout"] = self.data.layout.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> TrainConfig:
        if not isinstance(d, dict):
            raise IvusSimError(f"{source}: expected a mapping at the top level")
        _check_keys(d, {"model", "train", "loss", "data", "name"}, source)
        model = ModelConfig.from_dict(dict(d.get("model") or {}))
        train = _build(OptimConfig, d.get("train") or {}, f"{source}: train")
        loss = _build(LossWeights, d.get("loss") or {}, f"{source}: loss")
        dd = dict(d.get("data") or {})
        _check_keys(dd, {"layout", "limit", "augment", "target"}, f"{source}: data")
        try:
            layout = Layout(dd.get("layout", "auto"))
        except ValueError:
            raise IvusSimError(f"{source}: data.layout must be one of {[x.value for x in Layout]}") from None
        data = DataConfig(layout=layout, limit=dd.get("limit"),
                          augment=_build(Augmentation, dd.get("augment") or {}, f"{source}: data.augment"),
                          target=_build(TargetConfig, dd.get("target") or {}, f"{source}: data.target"))
        crop = data.augment.crop_angles
        if crop is not None:
            div = max(model.stage1_downsample * 2 ** (len(model.stage1_channels) - 1),
                      2 ** len(model.encoder_channels))
            if crop < div or crop % div or crop > model.n_angles:
                raise IvusSimError(f"{source}: data.augment.crop_angles={crop} must be a multiple of {div} "
                                   f"and <= model.n_angles={model.n_angles}")
        if train.batch_size < 1 or train.epochs < 1:
            raise IvusSimError(f"{source}: train.batch_size and train.epochs must be >= 1")
        return cls(model=model, train=train, loss=loss, data=data, name=str(d.get("name", "custom")))


def _check_keys(d: dict[str, Any], known: set[str], source: str) -> None:
    unknown = sorted(set(d) - known)
    if unknown:
        raise IvusSimError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def _build(cls: Any, d: dict[str, Any], source: str) -> Any:
    if not isinstance(d, dict):
        raise IvusSimError(f"{source}: expected a mapping")
    _check_keys(d, {f.name for f in fields(cls)}, source)
    kw = {}
    for f in fields(cls):
        if f.name in d:
            v = d[f.name]
            default = getattr(cls(), f.name)
            if isinstance(default, bool) and not isinstance(v, bool):
                raise IvusSimError(f"{source}.{f.name}: expected true/false, got {v!r}")
            if isinstance(default, float) and isinstance(v, (int, float)) and not isinstance(v, bool):
                v = float(v)
            kw[f.name] = v
    return cls(**kw)


def train_config_path(name_or_path: str | Path) -> Path:
    """Resolve a shipped config name (``smoke``) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise IvusSimError(f"training config {p} does not exist")
        return p
    shipped = resources.files("ivus_sim.configs").joinpath("train", f"{name_or_path}.yaml")
    if not shipped.is_file():
        raise IvusSimError(f"unknown training config {name_or_path!r}; give a .yaml path or one of smoke, "
                           "cpu_default, gpu")
    return Path(str(shipped))


def load_train_config(name_or_path: str | Path) -> TrainConfig:
    """Load and validate a training config (shipped name or YAML path)."""
    path = train_config_path(name_or_path)
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise IvusSimError(f"{path.name}: invalid YAML ({e.__class__.__name__})") from None
    cfg = TrainConfig.from_dict(d, path.name)
    if "name" not in d:
        cfg = TrainConfig(cfg.model, cfg.train, cfg.loss, cfg.data, name=path.stem)
    return cfg
