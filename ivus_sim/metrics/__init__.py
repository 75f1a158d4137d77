"""Realism measurements: calibration figures and ``ivus-sim evaluate``.

One module per metric family, all in the polar measurement frame of
:mod:`ivus_sim.metrics.imageset`: :mod:`~ivus_sim.metrics.calibration` (reference figures),
:mod:`~ivus_sim.metrics.intensity`, :mod:`~ivus_sim.metrics.speckle`,
:mod:`~ivus_sim.metrics.profile`, :mod:`~ivus_sim.metrics.c2st`,
:mod:`~ivus_sim.metrics.features`, :mod:`~ivus_sim.metrics.diversity`; orchestrated by
:mod:`~ivus_sim.metrics.evaluate` and written by :mod:`~ivus_sim.metrics.report`.
Names are imported lazily so ``import ivus_sim.metrics.calibration`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    # calibration (reference figures, measure.py definitions)
    "polar_stats": "calibration",
    "compare_stats": "calibration",
    "js_divergence": "calibration",
    "load_reference_stats": "calibration",
    # evaluate
    "ImageSet": "imageset",
    "load_image_set": "imageset",
    "compare_intensities": "intensity",
    "nakagami_moments": "speckle",
    "speckle_stats": "speckle",
    "radial_profile": "profile",
    "shadow_profile": "profile",
    "classifier_two_sample_test": "c2st",
    "C2STConfig": "c2st",
    "frechet_distance": "features",
    "kernel_inception_distance": "features",
    "feature_distances": "features",
    "pairwise_diversity": "diversity",
    "EvaluateConfig": "evaluate",
    "Evaluation": "evaluate",
    "evaluate_folders": "evaluate",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ivus_sim.metrics' has no attribute {name!r}")
    return getattr(import_module(f"ivus_sim.metrics.{module}"), name)
