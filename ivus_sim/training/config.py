"""Training configuration: one YAML file -> :class:`TrainConfig`, validated before anything runs.

Configs ship in ``configs/train/`` (``smoke``, ``own_data``, ``cpu_default``, ``gpu``); a name or a path
works; ``extends: <config>`` at the top merges a config onto another::

    model:    {n_angles: 256, n_samples: 128, ...}           # ModelConfig fields (ivus_sim.two_stage)
    train:    {batch_size: 4, max_steps: 2000, lr: 2.0e-4,   # OptimConfig fields
               loss_weights: {s1_rec: 1.0, s2_rec: 0.2, ...}}
    data:     {layout: auto, augment: {...}, target: {...}}  # DataConfig fields
    evaluate: {holdout_fraction: 0.2, ...}                   # HoldoutConfig: realism on held-out pairs

Validation is :func:`ivus_sim.schema.build` (the toolkit's one YAML -> dataclass helper): types,
ranges (``lr > 0``, ``max_steps >= 1``, ``checkpoint_every >= 1``...) and unknown keys are
one-line errors naming the file and the field, raised before a run folder is made.

``max_steps`` alone decides how long a run is; the data is visited in seeded per-epoch
permutations as often as that needs. A top-level ``loss:`` mapping (the format of older
configs and checkpoints) is read as ``train.loss_weights``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ivus_sim.errors import IvusSimError
from ivus_sim.schema import bounds, build, load_yaml, ranged
from ivus_sim.training.data import Augmentation, Layout, TargetConfig
from ivus_sim.training.phases import Stage2Mean
from ivus_sim.two_stage import ModelConfig

__all__ = ["OptimConfig", "DataConfig", "HoldoutConfig", "TrainConfig", "load_train_config",
           "train_config_path", "SHIPPED_CONFIGS", "DEFAULT_LOSS_WEIGHT"]

#: configs in ``configs/train/``
SHIPPED_CONFIGS = ("smoke", "own_data", "cpu_default", "gpu")
#: weight of a named loss that neither ``train.loss_weights`` nor the model's defaults list
DEFAULT_LOSS_WEIGHT = 1.0


@dataclass(frozen=True)
class OptimConfig:
    """Optimisation schedule.

    Args:
        batch_size: pairs per step (per process under DDP).
        max_steps: optimisation steps of the run (decides its length).
        lr: Adam learning rate of the encoders/decoders.
        lr_d: Adam learning rate of the discriminators (latent and patch).
        beta1: Adam beta1 (0.5 as in DCGAN/pix2pix).
        beta2: Adam beta2.
        loss_weights: weight per named loss of the model (``{name: weight}``). A name the model
            returns but this mapping lacks gets the model's documented default
            (``TwoStageAAE.default_loss_weights()`` when it has one), else
            :data:`DEFAULT_LOSS_WEIGHT` = 1. Each optimiser steps on the weighted sum of the
            losses of its phase.
        checkpoint_every: steps between checkpoints (also at the end).
        log_every: steps between log lines (JSONL, TensorBoard).
        sample_every: steps between sample grids (also at the end).
        grid_samples: pairs shown in each sample grid.
        deterministic: torch deterministic algorithms during the run (exact resume tests on CPU).
        amp: bfloat16 autocast on CUDA (ignored on CPU).
        threads: CPU threads for torch during the run (``null`` = torch's default); restored after.
        lr_scanner: Adam learning rate of stage 2's scanner parameters (gain, dynamic range, PSF,
            TGC, noise floor: a handful of scalars in log or dB units) and, with
            ``model.transmission``, stage 1's per-tissue attenuation; ``null`` = ``lr``. Adam moves
            a parameter by at most about its learning rate per step, so adapting a scanner in a few
            hundred steps (fine-tuning on a new one) needs a larger rate than the networks'.
        lr_scanner_db_scale: multiplier of ``lr_scanner`` for the scanner scalars kept in decibels
            (gain, receiver noise floor, TGC slope; ``TwoStageAAE.decibel_parameters``). The other
            scalars are logarithms, where one unit is a factor e; a decibel is a far smaller step,
            so at ``lr_scanner: 2e-3`` these move at most ~1.6 dB in 800 steps and stay near their
            20 MHz start (a 40 MHz scanner's noise floor 30 dB lower is out of reach). ``1`` = the
            same rate as the others (what every model before this option was trained with).
        stage2_mean: what stage 2 is conditioned on in training (:class:`Stage2Mean`): ``target``
            (the stage-1 targets, teacher forcing; every model before this option) or
            ``generated`` (stage 1's own output, as at generation).
        init: start from a trained model's generator (encoders, decoders, formation parameters)
            instead of a random init: ``default`` (the embedded model) or a model / run folder.
            Its architecture must equal the ``model`` section; the discriminators start fresh.
            Transfer learning; on the hidden test scanners it was not better than a random init
            (docs/training.md), so ``own_data`` does not use it.
        ema_decay: keep an exponential moving average of the generator's weights with this decay
            per step (warmed up as ``min(ema_decay, (1 + n) / (10 + n))``); the run's sample
            grids, held-out measurement and exported model use the average
            (:mod:`ivus_sim.training.ema`). ``0`` = off: the last step's weights.
    """

    batch_size: int = ranged(8, lo=1)
    max_steps: int = ranged(1000, lo=1)
    lr: float = ranged(2e-4, lo=0, lo_open=True)
    lr_d: float = ranged(2e-4, lo=0, lo_open=True)
    beta1: float = ranged(0.5, lo=0, hi=1, hi_open=True)
    beta2: float = ranged(0.999, lo=0, hi=1, hi_open=True)
    loss_weights: dict[str, float] = field(default_factory=dict, metadata=bounds(lo=0))
    checkpoint_every: int = ranged(100, lo=1)
    log_every: int = ranged(10, lo=1)
    sample_every: int = ranged(500, lo=1)
    grid_samples: int = ranged(4, lo=1)
    deterministic: bool = False
    amp: bool = True
    threads: int | None = ranged(None, lo=1)
    lr_scanner: float | None = ranged(None, lo=0, lo_open=True)
    lr_scanner_db_scale: float = ranged(1.0, lo=0, lo_open=True)
    stage2_mean: Stage2Mean = Stage2Mean.TARGET
    init: str | None = None
    ema_decay: float = ranged(0.0, lo=0, hi=1, hi_open=True)


@dataclass(frozen=True)
class DataConfig:
    """Data settings.

    Args:
        layout: folder layout (:class:`ivus_sim.training.data.Layout`).
        limit: use only the first ``limit`` pairs (``null`` = all).
        augment: augmentation settings.
        target: stage-1 target settings.
    """

    layout: Layout = Layout.AUTO
    limit: int | None = ranged(None, lo=1)
    augment: Augmentation = field(default_factory=Augmentation)
    target: TargetConfig = field(default_factory=TargetConfig)


@dataclass(frozen=True)
class HoldoutConfig:
    """Realism measured at the end of a run on pairs held out from training.

    Args:
        holdout_fraction: share of the pairs (whole files: all frames of a pullback go together)
            kept out of training; ``0`` disables the measurement.
        min_holdout: hold out at least this many pairs (when the fraction gives fewer).
        max_holdout: hold out at most this many pairs.
        min_train: never leave fewer than this many pairs for training (the held-out set shrinks,
            down to nothing).
        c2st: run the classifier two-sample test (``ivus_sim.metrics``) on the held-out pairs.
        c2st_epochs: classifier epochs per fold (small: the test runs at the end of every run).
        samples_per_frame: generated images per held-out label map.
    """

    holdout_fraction: float = ranged(0.2, lo=0, hi=0.5)
    min_holdout: int = ranged(2, lo=1)
    max_holdout: int = ranged(16, lo=1)
    min_train: int = ranged(4, lo=1)
    c2st: bool = True
    c2st_epochs: int = ranged(8, lo=1)
    samples_per_frame: int = ranged(1, lo=1)


@dataclass(frozen=True)
class TrainConfig:
    """A whole training configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    evaluate: HoldoutConfig = field(default_factory=HoldoutConfig)
    name: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["data"]["layout"] = self.data.layout.value
        d["train"]["stage2_mean"] = self.train.stage2_mean.value
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "config") -> TrainConfig:
        """Build and validate (one-line :class:`IvusSimError` naming ``source`` and the field)."""
        if not isinstance(d, dict):
            raise IvusSimError(f"{source}: expected a mapping at the top level")
        d = dict(d)
        known = {"model", "train", "data", "evaluate", "name", "loss"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise IvusSimError(f"{source}: {unknown[0]}: unknown field; known: model, train, data, evaluate, name")
        train = dict(d.get("train") or {})
        if "epochs" in train:
            raise IvusSimError(f"{source}: train.epochs: no longer used; train.max_steps decides the run length")
        if "loss" in d:  # older format: top-level loss weights
            legacy = d.pop("loss") or {}
            if not isinstance(legacy, dict):
                raise IvusSimError(f"{source}: loss: expected a mapping of loss names to weights")
            train["loss_weights"] = {**legacy, **dict(train.get("loss_weights") or {})}
        try:
            model = ModelConfig.from_dict(dict(d.get("model") or {}), source)
        except (TypeError, ValueError) as e:
            raise IvusSimError(f"{source}: model: {str(e).splitlines()[0]}") from None
        optim = build(OptimConfig, train, source, "train")
        data = build(DataConfig, dict(d.get("data") or {}), source, "data")
        holdout = build(HoldoutConfig, dict(d.get("evaluate") or {}), source, "evaluate")
        crop = data.augment.crop_angles
        if crop is not None:
            div = max(model.stage1_downsample * 2 ** (len(model.stage1_channels) - 1),
                      2 ** len(model.encoder_channels))
            if (2 * crop) % div or crop > model.n_angles:
                raise IvusSimError(f"{source}: data.augment.crop_angles: {crop} must be <= model.n_angles="
                                   f"{model.n_angles} and twice it a multiple of {div} (windows are mirrored "
                                   "into a periodic strip of 2 x crop_angles A-lines)")
        name = d.get("name", "custom")
        if not isinstance(name, str):
            raise IvusSimError(f"{source}: name: expected a string, got {name!r}")
        return cls(model=model, train=optim, data=data, evaluate=holdout, name=name)


def train_config_path(name_or_path: str | Path) -> Path:
    """Resolve a shipped config name (``smoke``) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise IvusSimError(f"training config {p} does not exist")
        return p
    shipped = resources.files("ivus_sim.configs").joinpath("train", f"{name_or_path}.yaml")
    if not shipped.is_file():
        raise IvusSimError(f"unknown training config {name_or_path!r}; give a .yaml path or one of "
                           f"{', '.join(SHIPPED_CONFIGS)}")
    return Path(str(shipped))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_with_base(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    """The YAML mapping of ``path``, merged onto the config its ``extends:`` names (a shipped name or a path)."""
    d = load_yaml(path)
    if not isinstance(d, dict) or "extends" not in d:
        return d
    base_name = d.pop("extends")
    if not isinstance(base_name, str):
        raise IvusSimError(f"{path.name}: extends: expected a config name or path, got {base_name!r}")
    rel = path.parent / base_name
    base_path = train_config_path(rel if rel.suffix in (".yaml", ".yml") and rel.is_file() else base_name)
    if base_path.resolve() in seen or base_path.resolve() == path.resolve():
        raise IvusSimError(f"{path.name}: extends: {base_name} extends itself")
    base = _read_with_base(base_path, (*seen, path.resolve()))
    if not isinstance(base, dict):
        raise IvusSimError(f"{base_path.name}: expected a mapping at the top level")
    base.pop("name", None)
    return _merge(base, d)


def load_train_config(name_or_path: str | Path) -> TrainConfig:
    """Load and validate a training config (shipped name or YAML path).

    A config may start with ``extends: <name or path>``: its sections are merged, key by key, onto
    that config's (so ``own_data`` shares ``cpu_default``'s architecture and only changes the rest).
    """
    path = train_config_path(name_or_path)
    d = _read_with_base(path)
    cfg = TrainConfig.from_dict({} if d is None else d, path.name)
    if not (isinstance(d, dict) and "name" in d):
        cfg = TrainConfig(cfg.model, cfg.train, cfg.data, cfg.evaluate, name=path.stem)
    return cfg
