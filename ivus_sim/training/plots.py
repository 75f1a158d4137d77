"""Pictures of a run: the sample grid and the AAE health signal (rank 0 only, written atomically).

The grid runs :meth:`ivus_sim.two_stage.TwoStageAAE.render_polar`, the one learned forward pass
that generation uses, with prior codes and noise from a fixed seed, so grids of one run are
comparable step to step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ivus_sim.aae.latent_discriminator import EQUILIBRIUM_LOSS
from ivus_sim.geometry import Interp, polar_to_cart
from ivus_sim.image import to_uint8
from ivus_sim.io import atomic_path, save_png
from ivus_sim.seeding import torch_generator
from ivus_sim.tissues import colourise

__all__ = ["sample_grid", "plot_latent_curve"]


@torch.no_grad()
def sample_grid(model: Any, samples: Sequence[dict[str, torch.Tensor]], path: Path, seed: int) -> Path:
    """Save rows of ``condition | stage 1 mean | stage 2 image | target`` (Cartesian) for ``samples``."""
    k = len(samples)
    dev = model.device
    lab = torch.stack([torch.as_tensor(s["labels"]) for s in samples]).to(dev)
    g = torch_generator(seed, "sample-grid")
    z1 = model.prior.sample(k, model.z_dims[0], generator=g).to(dev)
    z2 = model.prior.sample(k, model.z_dims[1], generator=g).to(dev)
    noise = model.noise(k, g)
    was = model.training
    model.eval()
    try:
        out = model.render_polar(lab.long(), z1, z2, noise)
    finally:
        model.train(was)
    n = 2 * model.polar_shape[1]
    lab_c = polar_to_cart(lab.cpu().to(torch.uint8), n, Interp.NEAREST, 255)
    rows = []
    for i in range(k):
        cells = [colourise(np.asarray(lab_c[i]))]
        for t in (out["mean"][i, 0], out["image"][i, 0], torch.as_tensor(samples[i]["image"])[0]):
            c = polar_to_cart(t.float().cpu(), n, Interp.BILINEAR, 0.0)
            cells.append(np.repeat(to_uint8(c)[..., None], 3, -1))
        rows.append(np.concatenate(cells, 1))
    return save_png(path, np.concatenate(rows, 0))


def plot_latent_curve(history: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Plot the latent-discriminator losses against their equilibrium log 2 (the AAE health signal)."""
    from ivus_sim import plotting as plt

    keys = [k for k in ("s1_latent_d", "s2_latent_d") if any(k in r for r in history)]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for k in keys:
        steps = [r["step"] for r in history if k in r]
        ax.plot(steps, [r[k] for r in history if k in r], label=f"stage {k[1]} latent discriminator")
    ax.axhline(EQUILIBRIUM_LOSS, color="k", ls="--", lw=1, label="equilibrium log 2")
    ax.set_xlabel("step")
    ax.set_ylabel("BCE loss")
    ax.set_title("AAE health: latent discriminator loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
