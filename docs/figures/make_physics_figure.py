"""Make ``docs/figures/physics_stages.png``: a phantom, each stage of the physics engine, the image.

    python docs/figures/make_physics_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from ivus_sim.calibrate import calibration_layout
from ivus_sim.geometry import fov_mask
from ivus_sim.phantom.random import random_phantom
from ivus_sim.physics import PhysicsSimulator
from ivus_sim.tissues import colourise

OUT = Path(__file__).with_name("physics_stages.png")


def main() -> None:
    torch.set_num_threads(1)
    ph = random_phantom(4, size=400, config=calibration_layout())
    res = PhysicsSimulator().simulate(ph.labels, seed=0, return_stages=True)
    inside = fov_mask(400)
    panels = [("phantom (tissue ids)", colourise(ph.labels[0]), None)]
    for name, title in (("echogenicity", "echogenicity (mean display)"), ("scatterers", "scatterers x attenuation"),
                        ("rf", "RF (PSF convolution)"), ("envelope", "envelope (Hilbert)"),
                        ("tgc", "after TGC (0 dB/cm at 20 MHz)"), ("log", "log compression")):
        a = res.stages[name][0].astype(float)
        if name in ("scatterers", "rf"):
            s = np.percentile(np.abs(a[inside]), 99.5)
            panels.append((title, np.where(inside, a, 0), ("RdBu_r", -s, s)))
        elif name in ("envelope", "tgc"):
            panels.append((title, np.where(inside, a, 0), ("gray", 0, np.percentile(a[inside], 99.5))))
        else:
            panels.append((title, a, ("gray", 0, 1)))
    panels.append(("display image (uint8)", res.image[0], ("gray", 0, 255)))
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.4))
    for ax, (title, img, cm) in zip(axes.ravel(), panels, strict=True):
        if cm is None:
            ax.imshow(img)
        else:
            ax.imshow(img, cmap=cm[0], vmin=cm[1], vmax=cm[2])
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle("ivus-sim stage 0: pseudo B-mode physics engine, 20 MHz preset (seed 0)")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(OUT, dpi=72)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
