"""Calibration report of the physics engine against the real 20 MHz figures (and the fit used to set them).

    python benchmarks/calibrate_physics.py [--n 13] [--seeds 0 1 2] [--preset 20mhz] [--tissues T.yaml]
    python benchmarks/calibrate_physics.py --fit 5      # fixed-point fit of backscatter, ring-down, texture

Simulates random phantoms with the calibration frames' layout (400 x 400 px, 10 mm FOV), measures
them with the reference definitions and prints the comparison as Markdown (``--json`` for the raw
dict). The phantoms of all ``--seeds`` are pooled (13 per seed, like the 13 real frames; the patch
mean/std of one draw varies by about +-0.1). ``--fit`` prints the fitted ``backscatter_db`` values,
the perivascular ``texture_db`` and the ring-down amplitude to copy into
``configs/tissue_acoustics.yaml`` / ``configs/20mhz.yaml`` (nothing is written).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ivus_sim.calibrate import (
    calibration_phantoms,
    calibration_report,
    fit_calibration,
    layout_fractions,
)
from ivus_sim.config import load_preset, load_tissue_acoustics
from ivus_sim.physics import PhysicsSimulator


def markdown(comp: dict, layout: dict[str, float], ref_layout: dict[str, float]) -> str:
    lines = [
        f"pixel-weighted JS {comp['tissue_js_weighted']:.3f} bits, max JS (tissues >= 2000 px) "
        f"{comp['tissue_js_max']:.3f}, radial-profile L1 {comp['radial_profile_l1']:.1f} grey levels",
        "",
        "| tissue | mean real | mean sim | std real | std sim | JS (bits) | layout real | layout sim |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, t in comp["tissues"].items():
        lines.append(f"| {name} | {t['mean_ref']:.1f} | {t['mean_sim']:.1f} | {t['std_ref']:.1f} | {t['std_sim']:.1f} "
                     f"| {t['js']:.3f} | {ref_layout.get(name, 0):.3f} | {layout.get(name, 0):.3f} |")
    lines += ["", "| radial bin | " + " | ".join(str(i) for i in range(10)) + " |",
              "|---|" + "---|" * 10,
              "| real | " + " | ".join(f"{v:.0f}" for v in comp["radial_profile_ref"]) + " |",
              "| sim | " + " | ".join(f"{v:.0f}" for v in comp["radial_profile_sim"]) + " |", ""]
    s, r = comp["speckle_sim"], comp["speckle_ref"]
    lines += ["| speckle (perivascular) | real | sim |", "|---|---|---|"]
    for k in ("fwhm_theta_px_of_360", "fwhm_r_px_of_160", "snr_mean_over_std", "patches"):
        lines.append(f"| {k} | {r[k]} | {s[k]} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=13, help="calibration phantoms per seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="phantom seeds, pooled (the speckle seed is the first)")
    ap.add_argument("--preset", default="20mhz")
    ap.add_argument("--tissues", default=None, help="tissue acoustics YAML (default: shipped)")
    ap.add_argument("--fit", type=int, default=0, help="run N fixed-point iterations and print the fitted values")
    ap.add_argument("--json", action="store_true", help="print the raw comparison as JSON")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded machine)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sim = PhysicsSimulator(load_preset(a.preset), load_tissue_acoustics(a.tissues))
    labels = np.concatenate([calibration_phantoms(a.n, s) for s in a.seeds])
    seed = a.seeds[0]
    if a.fit:
        preset, acoustics, history = fit_calibration(sim, iterations=a.fit, labels=labels, seed=seed)
        for i, c in enumerate(history):
            print(f"iteration {i}: JS {c['tissue_js_weighted']:.3f}, radial L1 {c['radial_profile_l1']:.1f}, "
                  f"patch mean/std {c['speckle_sim']['snr_mean_over_std']:.3f}")
        print("fitted backscatter_db:", {k: v.backscatter_db for k, v in acoustics.tissues.items()})
        print("fitted perivascular texture_db:", acoustics.tissues["perivascular"].texture_db)
        print("fitted ringdown.amplitude_db:", preset.ringdown.amplitude_db)
        sim = PhysicsSimulator(preset, acoustics)
    comp = calibration_report(sim, labels=labels, seed=seed)["comparison"]
    if a.json:
        print(json.dumps(comp, indent=1))
        return
    from ivus_sim.metrics.calibration import load_reference_stats

    ref = load_reference_stats()
    total = ref["frames"] * 360 * 160
    ref_layout = {k: v["pixels"] / total for k, v in ref["tissues"].items()}
    print(f"{len(labels)} calibration phantoms ({a.n} of each seed {a.seeds}), preset {sim.preset.name}\n")
    print(markdown(comp, layout_fractions(labels), ref_layout))


if __name__ == "__main__":
    main()
