"""Figures of ``docs/augment.md``: scanner randomisation and random-phantom statistics.

    python benchmarks/augment_figures.py            # deterministic (seed 0), ~1 CPU-minute

* ``docs/figures/augment_randomise.png``: one random phantom (its tissue map first) through 11
  scanners drawn from ``--randomise scanner`` (physics engine, top rows) and through the learned
  default model with the same draws (middle row), each titled with its centre frequency and field
  of view; then the benchmark's test scanners (bottom row: shipped presets, the development
  scanners hidden_a/b and the hidden scanners hidden_c/d, never used to choose the ranges).
* ``docs/figures/augment_phantom_stats.png``: lumen area, EEM area, plaque burden and
  eccentricity of 1,000 random phantoms (:func:`ivus_sim.phantom.random.phantom_statistics`),
  with published reference figures marked (see ``REFERENCES``) and the share of phantoms with
  calcium, side branch, stent, guidewire, interrupted media and a vessel cut by the field of view.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.augment.engine import render_scanner
from ivus_sim.augment.randomise import BUILTIN_RANGES, sample_scanner
from ivus_sim.phantom.random import phantom_statistics, random_phantom
from ivus_sim.physics import PhysicsSimulator
from ivus_sim.plotting import subplots
from ivus_sim.tissues import Tissue

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT / "docs" / "figures"
HIDDEN = Path(__file__).resolve().parent / "hidden_scanners"

#: published figures the phantom statistics are compared with (what they are and where from)
REFERENCES: dict[str, list[tuple[float, str | None]]] = {
    "plaque_burden": [
        (0.504, "IVUS mean plaque burden, 0.504 (Leber et al., JACC 2005;46:147, Fig. 4)"),
        (0.732, "significant lesions, 0.732 / 0.783 (Rodriguez-Granillo et al., Heart 2007)"),
        (0.783, None),
    ],
    "lumen_area_mm2": [(4.0, "MLA cut-off of a significant non-left-main lesion, 4 mm2 (Thieme 2012)")],
    "eccentricity": [(0.5, "eccentric if >= 0.5; 49.9 % of 1,441 IVUS sections eccentric (Cardiovasc. "
                           "Ultrasound 2016)")],
}


def randomise_figure(size: int = 160) -> Path:
    from ivus_sim import Simulator
    from ivus_sim.augment.engine import Engine, EngineSpec
    from ivus_sim.config import load_preset

    ranges = BUILTIN_RANGES["scanner"]
    learned = Simulator.default(device="cpu", precision="fp32")
    idx = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]
    fig, axes = subplots(3, 12, figsize=(24, 6.6))
    ph = random_phantom(0, size=size, index=7)
    for row in range(3):
        axes[row, 0].axis("off")
    axes[0, 0].imshow(ph.labels[0], cmap="tab20", vmin=0, vmax=20, interpolation="nearest")
    axes[0, 0].set_title("tissue map (10 mm)", fontsize=9)
    for j, i in enumerate(idx, start=1):
        sc = sample_scanner(0, i, ranges)
        ph_i = random_phantom(0, size=size, index=7, fov_mm=sc["fov_mm"], catheter_radius_mm=sc["catheter_radius_mm"])
        img, _ = render_scanner(EngineSpec(Engine.PHYSICS), None, sc, ph_i.labels[0], 100 + i, sc["fov_mm"], 0, i)
        axes[0, j].imshow(img, cmap="gray", vmin=0, vmax=255)
        nurd = " NURD" if sc["nurd_max_shift_deg"] > 0 else ""
        axes[0, j].set_title(f"{sc['centre_frequency_mhz']:.0f} MHz, FOV {sc['fov_mm']:.1f}{nurd}", fontsize=9)
        img, _ = render_scanner(EngineSpec(Engine.LEARNED), learned, sc, ph_i.labels[0], 100 + i, sc["fov_mm"], 0, i)
        axes[1, j].imshow(img, cmap="gray", vmin=0, vmax=255)
        axes[1, j].set_title(f"learned, z x{sc['z_scale']:.2f}, DR {sc['dynamic_range_db']:.0f}", fontsize=9)
    axes[1, 0].text(0.5, 0.5, "learned default\n(same draws)", ha="center", va="center", fontsize=10)
    axes[2, 0].text(0.5, 0.5, "test scanners\n(benchmark)", ha="center", va="center", fontsize=10)
    tests = [("40mhz", "40mhz (shipped)"), ("20mhz", "20mhz (shipped)"),
             (str(HIDDEN / "hidden_a.yaml"), "hidden_a (development)"),
             (str(HIDDEN / "hidden_b.yaml"), "hidden_b (development)"),
             (str(HIDDEN / "hidden_c.yaml"), "hidden_c (hidden)"), (str(HIDDEN / "hidden_d.yaml"), "hidden_d (hidden)")]
    for j, (preset, title) in enumerate(tests, start=1):
        img = PhysicsSimulator(load_preset(preset)).simulate(ph.labels[0], seed=5).image[0]
        axes[2, j].imshow(img, cmap="gray", vmin=0, vmax=255)
        axes[2, j].set_title(title, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images and not ax.texts:
            ax.axis("off")
    fig.suptitle("ivus-sim augment --randomise scanner: one phantom, scanners drawn per image "
                 "(seed 0; physics engine top, learned default middle)", fontsize=12)
    fig.tight_layout()
    out = FIG / "augment_randomise.png"
    fig.savefig(out, dpi=70)
    return out


def phantom_stats_figure(n: int = 1000) -> Path:
    stats, flags = [], {"calcium": 0, "side branch": 0, "stent": 0, "guidewire": 0, "interrupted media": 0,
                        "cut by the 10 mm FOV": 0}
    for i in range(n):
        p = random_phantom(0, size=64, index=i)
        prm = p.meta["params"]
        stats.append(phantom_statistics(prm))
        flags["calcium"] += bool(prm["calcium"])
        flags["side branch"] += bool(prm["side_branch"])
        flags["stent"] += bool(prm["stent"])
        flags["guidewire"] += bool(prm["guidewire"])
        flags["interrupted media"] += bool(prm["media_gaps"])
        edge = np.zeros((64, 64), bool)
        lab = p.labels[0]
        inside = lab != Tissue.OUTSIDE
        ring = inside & ~np.pad(inside[1:-1, 1:-1] & inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2]
                                & inside[1:-1, 2:], 1)
        edge |= ring
        flags["cut by the 10 mm FOV"] += bool(np.isin(lab[edge], [Tissue.MEDIA, Tissue.FIBROUS, Tissue.LUMEN]).any())
    keys = [("lumen_area_mm2", "lumen area [mm²]"), ("eem_area_mm2", "EEM area [mm²]"),
            ("plaque_burden", "plaque burden (1 - lumen/EEM)"), ("eccentricity", "eccentricity (max-min)/max")]
    fig, axes = subplots(1, 5, figsize=(22, 4.2))
    summary: dict[str, Any] = {}
    for ax, (k, title) in zip(axes[:4], keys, strict=True):
        v = np.array([s[k] for s in stats])
        summary[k] = {"p5": float(np.percentile(v, 5)), "median": float(np.median(v)),
                      "p95": float(np.percentile(v, 95)), "mean": float(v.mean())}
        ax.hist(v, bins=40, color="#4477aa")
        ax.set_title(f"{title}\nmedian {np.median(v):.2f}, 5-95 % {np.percentile(v, 5):.2f}-"
                     f"{np.percentile(v, 95):.2f}", fontsize=10)
        for x, lab in REFERENCES.get(k, []):
            ax.axvline(x, color="#cc3311", ls="--")
            if lab:
                ax.text(x, ax.get_ylim()[1] * 0.97, " " + lab.split(",")[0], color="#cc3311", fontsize=7,
                        rotation=90, va="top")
    ecc = float(np.mean([s["eccentricity"] >= 0.5 for s in stats]))
    summary["eccentric_fraction"] = ecc
    ax = axes[4]
    names = [*flags, "eccentric (>= 0.5)"]
    vals = [flags[k] / n for k in flags] + [ecc]
    ax.barh(names, vals, color="#228833")
    ax.set_xlim(0, 1)
    ax.set_title("share of phantoms with ...", fontsize=10)
    for y, share in enumerate(vals):
        ax.text(share + 0.01, y, f"{share:.0%}", va="center", fontsize=8)
    summary["flags"] = {k: c / n for k, c in flags.items()}
    fig.suptitle(f"{n} random phantoms (ivus_sim.phantom.random, seed 0) with published reference figures (red)",
                 fontsize=12)
    fig.tight_layout()
    out = FIG / "augment_phantom_stats.png"
    fig.savefig(out, dpi=70)
    (FIG / "augment_phantom_stats.json").write_text(json.dumps(summary, indent=1) + "\n")
    return out


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    print(phantom_stats_figure())
    print(randomise_figure())
