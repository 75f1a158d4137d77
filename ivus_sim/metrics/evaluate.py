"""Realism evaluation: every metric of :mod:`ivus_sim.metrics` on one pair of image sets.

:func:`evaluate` compares simulated ("fake") images with real ones and/or with published
reference figures (:mod:`ivus_sim.metrics.calibration`), in the polar measurement frame
(:mod:`ivus_sim.metrics.imageset`):

==================  ==========================================================  ===========
family              what                                                        needs
==================  ==========================================================  ===========
intensity           per-tissue histogram JS, Wasserstein-1, mean/quantiles      real+labels
speckle             mean/std, Nakagami m/omega, autocorrelation FWHM per tissue  labels
radial_profile      mean intensity vs depth                                     real
shadow              intensity behind calcium vs same tissue & depth elsewhere   labels
c2st                CNN real-vs-fake accuracy / AUC with intervals              real
features            Fréchet + KID in a self-supervised patch embedding          real
diversity           pairwise L1 / 1-SSIM of samples of one phantom              groups
calibration         reference-figure comparison (``measure.py`` definitions)    labels+ref
==================  ==========================================================  ===========

Simulated frames without label maps of their own use the real frame of the same name's
labels (simulated frames made from real label maps). Everything is driven by one seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim import __version__
from ivus_sim.errors import IvusSimError
from ivus_sim.metrics import calibration
from ivus_sim.metrics.c2st import C2STConfig, classifier_two_sample_test
from ivus_sim.metrics.diversity import group_by_labels, pairwise_diversity
from ivus_sim.metrics.features import FeatureConfig, feature_distances
from ivus_sim.metrics.imageset import (
    N_ANGLES,
    N_SAMPLES,
    ImageSet,
    base_name,
    load_image_set,
    tissue_masks,
    tissue_values,
    to_polar,
)
from ivus_sim.metrics.intensity import compare_intensities
from ivus_sim.metrics.patches import PatchConfig, extract_patches
from ivus_sim.metrics.profile import compare_profiles, compare_shadows, radial_profile, shadow_profile
from ivus_sim.metrics.speckle import SpeckleConfig, compare_speckle, speckle_stats

__all__ = ["GEOMETRY_NOTE", "EvaluateConfig", "Evaluation", "evaluate", "evaluate_folders"]

GEOMETRY_NOTE = (f"polar frame {N_ANGLES} angles x {N_SAMPLES} depth samples over the field-of-view disc "
                 "(ivus_sim.geometry.cart_to_polar: disc inscribed in the square image, radius N/2, depth "
                 "sample j at (j+0.5)/160 of the radius); tissue masks eroded by 1 polar pixel; display values "
                 "0-255. Calibration figures use the reference's own 360x160 grid (radius 0.99 N/2).")


@dataclass(frozen=True)
class EvaluateConfig:
    """What to measure and how.

    Args:
        seed: drives patch positions, folds, network initialisation, subsampling and bootstraps.
        patches: patch sampling for the classifier test and the feature distances.
        c2st: classifier settings.
        features: feature-extractor settings.
        speckle: speckle patch geometry.
        run_c2st: run the classifier two-sample test (needs real images).
        run_features: compute feature distances (needs real images).
        shadow_window: depth samples followed behind calcium.
    """

    seed: int = 0
    patches: PatchConfig = field(default_factory=PatchConfig)
    c2st: C2STConfig = field(default_factory=C2STConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    speckle: SpeckleConfig = field(default_factory=SpeckleConfig)
    run_c2st: bool = True
    run_features: bool = True
    shadow_window: int = 32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evaluation:
    """Result of :func:`evaluate`.

    Args:
        results: every number (JSON-serialisable), see :func:`evaluate`.
        most_fake: ``(k, p, p)`` simulated patches the classifier found most "fake" (or ``None``).
        reference: the reference figures used (or ``None``).
    """

    results: dict[str, Any]
    most_fake: np.ndarray | None = None
    reference: dict[str, Any] | None = None


class _Steps:
    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="evaluate", unit="step", disable=not enabled, leave=False)

    def __call__(self, what: str) -> None:
        self.bar.set_postfix_str(what)
        self.bar.update(1)

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    def get(*keys: str) -> Any:
        cur: Any = r
        for k in keys:
            if not isinstance(cur, dict) or cur.get(k) is None:
                return None
            cur = cur[k]
        return cur

    return {
        "tissue_js_weighted": get("intensity", "js_weighted"),
        "tissue_w1_weighted": get("intensity", "w1_weighted"),
        "radial_profile_l1": get("radial_profile", "l1_10"),
        "speckle_mean_abs_log_ratio": get("speckle", "comparison", "mean_abs_log_ratio"),
        "shadow_ratio_diff": get("shadow", "shadow_ratio_diff"),
        "c2st_accuracy": get("c2st", "accuracy"),
        "c2st_accuracy_ci": get("c2st", "accuracy_ci_wilson"),
        "c2st_auc": get("c2st", "auc"),
        "frechet_fake_vs_real": get("features", "fake_vs_real", "frechet"),
        "frechet_real_vs_real": get("features", "real_vs_real", "frechet"),
        "kid_fake_vs_real": get("features", "fake_vs_real", "kid"),
        "kid_real_vs_real": get("features", "real_vs_real", "kid"),
        "diversity_l1": get("diversity", "mean_l1"),
        "diversity_1_minus_ssim": get("diversity", "mean_1_minus_ssim"),
        "reference_js_weighted": get("calibration", "fake_vs_reference", "tissue_js_weighted"),
        "reference_radial_l1": get("calibration", "fake_vs_reference", "radial_profile_l1"),
    }


def evaluate(fake: ImageSet, real: ImageSet | None = None, reference: dict[str, Any] | None = None,
             config: EvaluateConfig | None = None, progress: bool = True) -> Evaluation:
    """Measure how realistic ``fake`` is against ``real`` images and/or ``reference`` figures.

    Args:
        fake: simulated images (labels needed for per-tissue figures and the reference comparison).
        real: real images (labels needed for per-tissue figures), or ``None``.
        reference: reference figures in the calibration format (:func:`calibration.load_reference_stats`).
        config: settings.
        progress: show a tqdm progress bar.

    Returns:
        :class:`Evaluation`; ``results`` has ``inputs``, ``config``, ``geometry``, ``summary``,
        ``notes`` and one entry per metric family (``None`` where it could not be measured, with
        the reason in ``notes``).
    """
    cfg = config or EvaluateConfig()
    if real is None and reference is None:
        raise IvusSimError("nothing to compare with: give real images (--real) or reference figures "
                           "(--reference-stats)")
    if len(fake) == 0:
        raise IvusSimError("no simulated images")
    notes: list[str] = []
    learned = real is not None and (cfg.run_c2st or cfg.run_features)
    n_steps = 8 + (cfg.c2st.folds if real is not None and cfg.run_c2st else 0)
    steps = _Steps(n_steps, progress)
    try:
        res: dict[str, Any] = {
            "ivus_sim_version": __version__,
            "inputs": {
                "fake": fake.source, "fake_frames": len(fake), "fake_labelled": fake.has_labels,
                "real": real.source if real else None, "real_frames": len(real) if real else 0,
                "real_labelled": real.has_labels if real else False,
                "fake_images": fake.fingerprint(), "real_images": real.fingerprint() if real else None,
            },
            "config": cfg.to_dict(),
            "geometry": GEOMETRY_NOTE,
        }
        pf = to_polar(fake)
        pr = to_polar(real) if real is not None else None
        steps("polar frame")

        labelled = pr is not None and pr.labels is not None and pf.labels is not None
        if pr is not None and not labelled:
            notes.append("per-tissue intensity/speckle comparison skipped: both sets need label maps "
                         "(frame_XX_label.png beside the images, or --labels DIR)")
        res["intensity"] = compare_intensities(tissue_values(pr), tissue_values(pf)) if labelled and pr else None
        steps("intensity")

        sp: dict[str, Any] = {}
        if pf.labels is not None:
            sp["fake"] = speckle_stats(pf.images, tissue_masks(pf.labels), cfg.speckle)
        if pr is not None and pr.labels is not None:
            sp["real"] = speckle_stats(pr.images, tissue_masks(pr.labels), cfg.speckle)
        if "fake" in sp and "real" in sp:
            sp["comparison"] = compare_speckle(sp["real"], sp["fake"])
        res["speckle"] = sp or None
        steps("speckle")

        res["radial_profile"] = compare_profiles(pr.images, pf.images) if pr is not None else {
            "fake_10": radial_profile(pf.images, 10).tolist(), "fake_full": radial_profile(pf.images).tolist()}
        sh_f = shadow_profile(pf.images, pf.labels, cfg.shadow_window) if pf.labels is not None else None
        sh_r = (shadow_profile(pr.images, pr.labels, cfg.shadow_window)
                if pr is not None and pr.labels is not None else None)
        res["shadow"] = compare_shadows(sh_r, sh_f)
        if sh_f is None and sh_r is None:
            notes.append("shadow: no dense calcium (tissue 5) in the label maps")
        steps("profiles")

        most_fake = None
        res["c2st"] = None
        res["features"] = None
        if learned and pr is not None:
            pcfg = cfg.patches
            real_p = extract_patches(pr.images, pr.names, pcfg, cfg.seed, "learned")
            # simulated samples of a real frame (name_seed0_001) pair with it: same fold, same positions
            fake_p = extract_patches(pf.images, [base_name(n) for n in pf.names], pcfg, cfg.seed, "learned")
            if cfg.run_c2st:
                c = classifier_two_sample_test(real_p, fake_p, cfg.c2st, cfg.seed, progress=steps)
                res["c2st"] = c.to_dict()
                most_fake = c.most_fake
            steps("classifier test")
            if cfg.run_features:
                res["features"] = feature_distances(real_p, fake_p, cfg.features, cfg.seed)
            steps("features")
        else:
            steps("classifier test")
            steps("features")
            if real is None:
                notes.append("classifier test and feature distances need real images (--real)")

        groups = [pf.images[idx] for idx in group_by_labels(fake.labels) if len(idx) >= 2]
        res["diversity"] = pairwise_diversity(groups) if groups else None
        if not groups:
            notes.append("diversity: needs several simulated samples of one label map "
                         "(e.g. name_s0.png, name_s1.png sharing name_label.png)")
        steps("diversity")

        cal: dict[str, Any] | None = None
        if reference is not None:
            cal = {}
            if fake.has_labels:
                fs = calibration.polar_stats(fake.images, [lab for lab in fake.labels if lab is not None])
                cal["fake_stats"] = fs
                cal["fake_vs_reference"] = calibration.compare_stats(fs, reference)
            else:
                notes.append("reference comparison needs label maps for the simulated images (--labels DIR)")
            if real is not None and real.has_labels:
                rs = calibration.polar_stats(real.images, [lab for lab in real.labels if lab is not None])
                cal["real_stats"] = rs
                cal["real_vs_reference"] = calibration.compare_stats(rs, reference)
        res["calibration"] = cal
        steps("calibration figures")
        res["notes"] = notes
        res["summary"] = _summary(res)
        steps("done")
    finally:
        steps.close()
    return Evaluation(results=res, most_fake=most_fake, reference=reference)


def evaluate_folders(fake_dir: str | Path, real_dir: str | Path | None = None, labels_dir: str | Path | None = None,
                     reference_stats: str | Path | None = None, config: EvaluateConfig | None = None,
                     progress: bool = True) -> Evaluation:
    """:func:`evaluate` on folders (see :mod:`ivus_sim.metrics.imageset` for the conventions).

    Args:
        fake_dir: simulated images.
        real_dir: real images (with ``frame_XX_label.png`` or labels in ``labels_dir``), optional.
        labels_dir: label maps matched by name, for either set.
        reference_stats: reference-figure JSON, or ``"builtin"`` for the shipped real 20 MHz figures.
        config: settings.
        progress: show a progress bar.
    """
    real = load_image_set(real_dir, labels_dir, role="real") if real_dir is not None else None
    fake = load_image_set(fake_dir, labels_dir, fallback_labels=real, role="fake")
    reference = None
    if reference_stats is not None:
        path = None if str(reference_stats) == "builtin" else Path(reference_stats)
        if path is not None and not path.is_file():
            raise IvusSimError(f"reference statistics file not found: {path}")
        try:
            reference = calibration.load_reference_stats(path)
        except (ValueError, KeyError) as e:
            raise IvusSimError(str(e)) from None
    ev = evaluate(fake, real, reference, config, progress)
    ev.results["inputs"].update(labels=str(labels_dir) if labels_dir else None,
                                reference_stats=str(reference_stats) if reference_stats else None)
    return ev
