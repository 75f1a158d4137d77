"""Calibration of the physics engine against real 20 MHz IVUS figures (above both physics and metrics).

:func:`calibration_report` simulates random phantoms with the layout of the calibration frames
(:func:`calibration_layout`) at their geometry (400 x 400 px, catheter radius 0.115 x the disc
radius, 10 mm field of view), measures them with
:func:`ivus_sim.metrics.calibration.polar_stats` (the reference definitions) and compares the
figures with the shipped real-data figures (:func:`~ivus_sim.metrics.calibration.compare_stats`).

:func:`fit_calibration` is the procedure used for the shipped 20 MHz preset and tissue table: a
fixed-point iteration on a few *physical* parameters (per-tissue backscatter levels, ring-down
amplitude, the strength of the perivascular tissue's heterogeneity); the rest is set by hand. The
figures are targets, never outputs: the simulator has no knowledge of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ivus_sim.config import Preset, TissueAcoustics
from ivus_sim.metrics.calibration import N_R, N_THETA, compare_stats, load_reference_stats, polar_stats
from ivus_sim.phantom.random import RandomPhantomConfig
from ivus_sim.physics.simulator import PhysicsSimulator

__all__ = ["CALIBRATION_FOV_MM", "CALIBRATION_SIZE", "FIT_TARGETS", "calibration_layout", "calibration_phantoms",
           "calibration_report", "fit_calibration", "layout_fractions", "TEXTURE_SLOPE_PER_DB"]

#: side of the calibration frames [px]
CALIBRATION_SIZE = 400
#: field of view assumed for the calibration frames [mm] (catheter radius 0.575 mm = 0.115 x disc radius)
CALIBRATION_FOV_MM = 10.0


def calibration_layout() -> RandomPhantomConfig:
    """Random-phantom ranges matching the layout of the calibration frames.

    The reference pixel counts (eroded masks on the 360 x 160 polar grid, 13 frames) put the
    lumen at ~15 % of the radial samples, plaque + media at ~7 % and perivascular tissue at
    ~55 %: a small vessel (external elastic membrane ~2 mm from the catheter axis at 10 mm FOV)
    with a light plaque burden, media ~0.25 mm, some calcium, no stent. These ranges reproduce
    those fractions within ~1 percentage point (see :func:`layout_fractions`); the default random
    phantoms describe larger, more diseased vessels.
    """
    return RandomPhantomConfig(eem_radius_mm=(1.85, 2.35), plaque_burden=(0.25, 0.45),
                               media_thickness_mm=(0.18, 0.32), p_stent=0.0, p_calcium=0.7, p_necrotic_core=0.7)


def calibration_phantoms(n: int, seed: int = 0, size: int = CALIBRATION_SIZE,
                         fov_mm: float = CALIBRATION_FOV_MM,
                         config: RandomPhantomConfig | None = None) -> np.ndarray:
    """``(n, size, size)`` random phantom label maps (``random_phantom(seed, index=i)``).

    Args:
        config: phantom ranges (default :func:`calibration_layout`).
    """
    from ivus_sim.phantom.random import random_phantom

    cfg = calibration_layout() if config is None else config
    return np.concatenate([random_phantom(seed, size=size, fov_mm=fov_mm, index=i, config=cfg).labels
                           for i in range(n)])


def layout_fractions(labels: np.ndarray) -> dict[str, float]:
    """Fraction of the reference polar grid in each eroded tissue mask (the layout behind the pixel counts)."""
    stats = polar_stats([np.zeros(lab.shape, np.uint8) for lab in labels], list(labels))
    total = len(labels) * N_THETA * N_R
    return {k: round(v["pixels"] / total, 4) for k, v in stats["tissues"].items()}


def calibration_report(sim: PhysicsSimulator, n_phantoms: int = 16, seed: int = 0, size: int = CALIBRATION_SIZE,
                       labels: np.ndarray | None = None, batch: int = 8) -> dict[str, Any]:
    """Simulate ``n_phantoms`` random phantoms, measure them like the real frames and compare.

    Returns:
        ``{"stats": polar_stats(...), "comparison": compare_stats(stats, reference)}``.
    """
    labs = calibration_phantoms(n_phantoms, seed, size) if labels is None else labels
    images = []
    for i in range(0, len(labs), batch):
        images.append(sim.simulate(labs[i:i + batch], seed=seed, first_index=i).image)
    imgs = np.concatenate(images)
    stats = polar_stats(list(imgs), list(labs))
    return {"stats": stats, "comparison": compare_stats(stats, load_reference_stats())}


#: tissue table entry -> reference figure whose mean it is fitted to
FIT_TARGETS: dict[str, str] = {
    "perivascular": "perivascular", "lumen": "lumen_beyond_ringdown", "fibrous": "fibrous",
    "fibro_fatty": "fibro_fatty", "necrotic_core": "necrotic_core", "dense_calcium": "dense_calcium",
    "media": "media",
}
_MAX_STEP_DB = 6.0
#: fitted perivascular ``texture_db`` moves by (patch mean/std difference) / this slope [1/dB]. Measured on
#: 3 x 13 calibration phantoms, 6 -> 9 dB lowers the patch mean/std by 0.14 per dB with the levels held
#: and by 0.07 per dB with them refitted; 0.1 lies between (the fit converged in 4 iterations)
TEXTURE_SLOPE_PER_DB = 0.1
_MAX_TEXTURE_STEP_DB = 2.0


def fit_calibration(sim: PhysicsSimulator, iterations: int = 4, n_phantoms: int = 16, seed: int = 0,
                    step: float = 0.8, labels: np.ndarray | None = None, fit_texture: bool = True,
                    ) -> tuple[Preset, TissueAcoustics, list[dict[str, Any]]]:
    """Fixed-point fit of a few physical parameters to the reference figures.

    Each iteration simulates the calibration phantoms, compares, and moves (relaxation ``step``,
    at most 6 dB per iteration):

    * each tissue's ``backscatter_db`` by its mean display difference (lumen: the lumen beyond
      the ring-down), converted to dB by the log-compression slope ``dynamic_range_db / 255``;
    * the ring-down ``amplitude_db`` by the difference in the 2nd radial bin (10-20 % of the
      radius, where the ring-down lies);
    * with ``fit_texture``, the perivascular ``texture_db`` (std of its log-normal backscatter
      heterogeneity) by the difference in the perivascular patch mean/std, divided by
      :data:`TEXTURE_SLOPE_PER_DB` (at most 2 dB per iteration). A stronger heterogeneity lowers
      the patch mean/std; its mean power is 1, but the display mean drops (log of a log-normal),
      which the backscatter level of the next iteration restores.

    Everything else (bandwidth, beam, attenuation, dynamic range, gain, TGC, surface layers,
    specular levels, texture scales, other tissues' textures) is set by hand in the YAML files
    (chosen by comparing a few settings with :func:`calibration_report`) and held fixed.

    Pass ``labels`` from several phantom seeds (e.g. 3 x 13 phantoms): the patch mean/std of one
    16-phantom draw varies by about +-0.1.

    Returns:
        The fitted preset and table, and the comparison of every iteration (the last one is the
        comparison *before* the last update).
    """
    labs = calibration_phantoms(n_phantoms, seed) if labels is None else labels
    preset, acoustics = sim.preset, sim.acoustics
    history = []
    for _ in range(iterations):
        cur = PhysicsSimulator(preset, acoustics, device=sim.device)
        comp = calibration_report(cur, labels=labs, seed=seed)["comparison"]
        history.append(comp)
        db_per_grey = preset.processing.dynamic_range_db / 255

        def move(diff_grey: float, db_per_grey: float = db_per_grey) -> float:
            return float(np.clip(-step * diff_grey * db_per_grey, -_MAX_STEP_DB, _MAX_STEP_DB))

        new = dict(acoustics.tissues)
        for name, target in FIT_TARGETS.items():
            if target in comp["tissues"]:
                p = new[name]
                new[name] = dataclasses.replace(
                    p, backscatter_db=round(p.backscatter_db + move(comp["tissues"][target]["mean_diff"]), 2))
        sp_sim, sp_ref = comp.get("speckle_sim") or {}, comp.get("speckle_ref") or {}
        if fit_texture and sp_sim.get("snr_mean_over_std") is not None and sp_ref.get("snr_mean_over_std"):
            d = float(sp_sim["snr_mean_over_std"]) - float(sp_ref["snr_mean_over_std"])
            p = new["perivascular"]
            dt = float(np.clip(step * d / TEXTURE_SLOPE_PER_DB, -_MAX_TEXTURE_STEP_DB, _MAX_TEXTURE_STEP_DB))
            new["perivascular"] = dataclasses.replace(p, texture_db=round(max(p.texture_db + dt, 0.0), 2))
        rs, rr = comp["radial_profile_sim"], comp["radial_profile_ref"]
        acoustics = TissueAcoustics(acoustics.reference_frequency_mhz, new)
        rd = preset.ringdown
        preset = dataclasses.replace(preset, ringdown=dataclasses.replace(
            rd, amplitude_db=round(rd.amplitude_db + move(rs[1] - rr[1]), 2)))
    return preset, acoustics, history
