"""Synthetic segmentation datasets: ``ivus-sim augment`` (see ``docs/augment.md``).

Random (or given) phantoms -> images from a :class:`ivus_sim.Simulator` -> image/label pairs in
a MONAI (decathlon) or nnU-Net v2 folder layout, as PNG or NIfTI, with ``dataset.json``, a
manifest CSV of seeds and phantom parameters, optional merging of tissues into task labels;
resumable, parallel and shardable.

Example::

    from ivus_sim.augment import AugmentConfig, Engine, EngineSpec, run_augment
    cfg = AugmentConfig(n=100, out=Path("data/ivus_aug"), engine=EngineSpec(Engine.PHYSICS))
    report = run_augment(cfg)          # report.complete -> dataset.json + manifest.csv written

Submodules are imported lazily so that ``ivus-sim --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BUILTIN_MAPPINGS",
    "AugmentConfig",
    "AugmentReport",
    "DatasetLayout",
    "Engine",
    "EngineSpec",
    "ImageFormat",
    "LabelMapping",
    "Layout",
    "Shard",
    "ScannerRanges",
    "TaskLabel",
    "combine_nnunet",
    "image_seed",
    "load_ranges",
    "load_label_mapping",
    "regenerate_case",
    "run_augment",
]

_WHERE = {
    "Engine": "engine", "EngineSpec": "engine",
    "BUILTIN_MAPPINGS": "labels", "LabelMapping": "labels", "TaskLabel": "labels", "load_label_mapping": "labels",
    "DatasetLayout": "layout", "ImageFormat": "layout", "Layout": "layout",
    "AugmentConfig": "run", "AugmentReport": "run", "Shard": "run", "image_seed": "run",
    "regenerate_case": "run", "run_augment": "run",
    "ScannerRanges": "randomise", "load_ranges": "randomise", "combine_nnunet": "combine",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"ivus_sim.augment.{_WHERE[name]}"), name)
    raise AttributeError(name)
