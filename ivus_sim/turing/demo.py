"""Toy IVUS-like frames for demos and tests of the reader-study harness.

:func:`make_demo_images` draws frames from one generator - a bright vessel-wall ring around a
dark lumen at a random position and radius, Rayleigh speckle, the field-of-view disc - so a
"real" and a "simulated" set made with different streams are statistically
indistinguishable (the leakage audit passes), and injected cues can be added on top.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ivus_sim.io import save_png
from ivus_sim.seeding import rng

__all__ = ["demo_frame", "make_demo_images"]


def demo_frame(size: int, g: np.random.Generator) -> np.ndarray:
    """One ``(size, size)`` uint8 toy frame (0 outside the FOV disc)."""
    from ivus_sim.geometry import fov_mask, radius_map

    r = radius_map(size)
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    cy, cx = c + g.normal(0, size * 0.04, 2)
    rl = g.uniform(0.25, 0.4)
    d = np.hypot(yy - cy, xx - cx) / (size / 2)
    wall = np.exp(-(((d - rl) / 0.08) ** 2))
    mean = 0.12 + 0.55 * wall + 0.18 * np.clip(d - rl, 0, None)
    speckle = g.rayleigh(1.0, (size, size)) / np.sqrt(np.pi / 2)
    img = np.clip(mean * speckle, 0, 1)
    img[r < 0.1] = 0.05
    img[~fov_mask(size)] = 0
    return np.round(img * 255).astype(np.uint8)


def make_demo_images(out_dir: str | Path, n: int, *, size: int = 64, seed: int = 0, stream: str = "real",
                     prefix: str = "frame") -> list[Path]:
    """Write ``n`` toy frames ``<prefix>_<i>.png`` into ``out_dir``.

    Args:
        out_dir: output folder (created).
        n: number of frames. size: side in pixels.
        seed, stream: the ``ivus_sim.seeding`` stream (use different streams for the two classes).
        prefix: file-name prefix.

    Returns:
        The written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = out / f"{prefix}_{i:03d}.png"
        save_png(p, demo_frame(size, rng(seed, "turing-demo", stream, i)))
        paths.append(p)
    return paths
