"""Realism of a trained model on pairs held out from its training data.

:func:`split_holdout` sets aside whole files (all frames of a pullback go together, so no frame
of a held-out pullback trains the model) by a seeded draw; :func:`measure_holdout` then, at the
end of the run, generates images for the held-out label maps and compares them with the real
held-out images using the project's realism measures (:func:`ivus_sim.metrics.evaluate.evaluate`:
per-tissue intensity statistics, speckle statistics, radial profile and the classifier
two-sample test, C2ST, where 0.5 means indistinguishable). The numbers go to
``<run>/holdout_realism.json`` and into the model card (``holdout``), so users know what they got.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ivus_sim.seeding import rng, torch_generator
from ivus_sim.training.config import HoldoutConfig
from ivus_sim.training.data import PairRef, load_pair

__all__ = ["FEW_PAIRS", "HOLDOUT_NAME", "few_pairs_note", "split_holdout", "measure_holdout"]

HOLDOUT_NAME = "holdout_realism.json"


def split_holdout(refs: Sequence[PairRef], cfg: HoldoutConfig, seed: int) -> tuple[list[PairRef], list[PairRef]]:
    """``(train, held_out)``: a seeded choice of whole image files, in the input order.

    The held-out count is ``round(fraction x files)`` clipped to ``[min_holdout, max_holdout]``,
    reduced so that at least ``min_train`` pairs stay for training (possibly to none).
    """
    files = sorted({r.image for r in refs})
    if cfg.holdout_fraction <= 0 or len(files) < 2:
        return list(refs), []
    want = min(max(round(cfg.holdout_fraction * len(files)), cfg.min_holdout), cfg.max_holdout)
    order = rng(seed, "holdout").permutation(len(files))
    chosen: set[Any] = set()
    for i in order[:want]:
        chosen.add(files[int(i)])
        if sum(r.image not in chosen for r in refs) < cfg.min_train:
            chosen.discard(files[int(i)])
            break
    if len(chosen) < 1:
        return list(refs), []
    return [r for r in refs if r.image not in chosen], [r for r in refs if r.image in chosen]


def _display(x: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(x, np.float64), 0.0, 1.0) * 255.0


#: below this many held-out pairs the classifier test is flagged as optimistic (see :func:`few_pairs_note`)
FEW_PAIRS = 8


def few_pairs_note(n: int) -> str:
    """The caution recorded with a classifier test on ``n`` < :data:`FEW_PAIRS` held-out pairs."""
    return (f"only {n} held-out pairs: the classifier has little to learn from, so its accuracy reads low "
            "(optimistic; on the project's hidden test scanners 3 held-out pairs read well below a 12-frame "
            "test, benchmarks/RESULTS.md). Test on more frames (ivus-sim evaluate) before relying on it.")


def measure_holdout(model: Any, refs: Sequence[PairRef], cfg: HoldoutConfig, seed: int) -> dict[str, Any]:
    """Generate images for the held-out label maps and measure them against the real held-out images.

    Returns:
        ``{"n_pairs", "pairs", "samples_per_frame", "summary", "per_tissue", "c2st", "notes"}``
        (JSON-serialisable; ``c2st`` is ``None`` with the reason in ``notes`` when it cannot run).
    """
    from ivus_sim.metrics.c2st import C2STConfig
    from ivus_sim.metrics.evaluate import EvaluateConfig, evaluate
    from ivus_sim.metrics.imageset import ImageSet

    names, real_imgs, real_labs, fake_names, fake_imgs, fake_labs = [], [], [], [], [], []
    for i, ref in enumerate(refs):
        labels, image = load_pair(ref)
        name = f"holdout{i:03d}"
        names.append(name)
        real_imgs.append(_display(image))
        real_labs.append(labels)
        for j in range(cfg.samples_per_frame):
            out = model.generate(labels, generator=torch_generator(seed, "holdout", i, j),
                                 fov_mm=model.config.fov_mm)
            fake_names.append(f"{name}_s{j}")
            fake_imgs.append(_display(out["image"][0, 0].float().cpu().numpy()))
            fake_labs.append(labels)
    real = ImageSet(names, real_imgs, list(real_labs), source="held-out pairs")
    fake = ImageSet(fake_names, fake_imgs, list(fake_labs), source="generated for the held-out label maps")
    run_c2st = cfg.c2st and len(refs) >= 2
    ecfg = EvaluateConfig(seed=seed, c2st=C2STConfig(epochs=cfg.c2st_epochs, folds=min(4, len(refs)),
                                                     n_bootstrap=200),
                          run_c2st=run_c2st, run_features=False)
    res = evaluate(fake, real, None, ecfg, progress=False).results
    notes = list(res.get("notes", []))
    if cfg.c2st and not run_c2st:
        notes.append("classifier two-sample test needs at least 2 held-out pairs")
    elif run_c2st and len(refs) < FEW_PAIRS:
        notes.append(few_pairs_note(len(refs)))
    summary = {k: v for k, v in res["summary"].items() if v is not None and not (isinstance(v, float)
                                                                                    and math.isnan(v))}
    intensity = res.get("intensity") or {}
    per_tissue = {t: {k: v for k, v in d.items() if k in ("js", "w1", "mean_real", "mean_fake", "std_real",
                                                           "std_fake", "pixels_real", "pixels_fake")}
                  for t, d in (intensity.get("tissues") or {}).items()}
    c2st = res.get("c2st")
    return {
        "n_pairs": len(refs),
        "pairs": [r.name for r in refs],
        "samples_per_frame": cfg.samples_per_frame,
        "summary": summary,
        "per_tissue": per_tissue,
        "c2st": None if c2st is None else {k: c2st[k] for k in ("accuracy", "accuracy_ci_wilson", "auc", "folds",
                                                                "n_real", "n_fake") if k in c2st},
        "speckle": (res.get("speckle") or {}).get("comparison"),
        "notes": notes,
        "measured_with": "ivus_sim.metrics.evaluate (per-tissue intensity, speckle, radial profile, C2ST)",
    }
