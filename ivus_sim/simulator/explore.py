"""Latent exploration with a learned model: manifold sweeps and interpolations between codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ivus_sim import __version__
from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import torch_generator
from ivus_sim.simulator.latent import slerp
from ivus_sim.simulator.results import GridResult

if TYPE_CHECKING:
    from ivus_sim.phantom.phantom import Phantom
    from ivus_sim.simulator.api import Simulator
    from ivus_sim.simulator.learned import LearnedBackend

__all__ = ["explore", "interpolate"]


def _setup(sim: Simulator, phantom: Phantom | np.ndarray, fov_mm: float | None, frame: int, seed: int
           ) -> tuple[LearnedBackend, Phantom, np.ndarray, int]:
    from ivus_sim.seeding import check_seed
    from ivus_sim.simulator.api import as_phantom

    be = sim.learned_backend("latent exploration")
    ph = as_phantom(phantom, fov_mm)
    if not 0 <= frame < ph.n_frames:
        raise IvusSimError(f"frame {frame} out of range: the phantom has {ph.n_frames} frame(s)")
    return be, ph, ph.labels[frame], check_seed(seed, "seed")


def _tiles(be: LearnedBackend, labels: np.ndarray, codes: torch.Tensor, seed: int, batch_size: int) -> np.ndarray:
    """One image per code ``(T, d1 + d2)``, all with the noise of image 0, anchor 0 of ``seed``."""
    d1, _ = be.z_dims
    noise = be.draw_anchors(1, seed, 0)["noise"]
    out = []
    for lo in range(0, codes.shape[0], batch_size):
        c = codes[lo:lo + batch_size]
        r = be.render(labels[None], np.zeros(c.shape[0], np.int64), c[:, :d1], c[:, d1:],
                      noise.expand(c.shape[0], *noise.shape[1:]))
        out.append(r["image"])
    return np.concatenate(out)


def explore(sim: Simulator, phantom: Phantom | np.ndarray, grid: int = 8, dims: tuple[int, int] = (0, 1),
            seed: int = 0, *, base: Sequence[float] | None = None, fov_mm: float | None = None,
            frame: int = 0, quantile: float = 0.05, batch_size: int = 8) -> GridResult:
    """Latent manifold sweep: a ``grid x grid`` mosaic over two latent dimensions.

    Dimension indices refer to the concatenated code ``[z1, z2]`` (``0 .. d1-1`` stage 1,
    ``d1 .. d1+d2-1`` stage 2). The swept values run between the ``quantile`` and
    ``1 - quantile`` quantiles of the prior's marginal (measured on prior samples, so any
    prior works), as in the classic AAE manifold figures (Makhzani et al., arXiv 1511.05644).
    Every other dimension is held at ``base`` (default: the prior mean, 0), and the stage-2
    noise maps are fixed (drawn from ``seed``), so only the swept code changes across tiles.

    Returns:
        :class:`GridResult` with tiles ``(grid, grid, N, N)``: rows follow ``dims[0]``, columns ``dims[1]``.
    """
    from ivus_sim.simulator.api import floats, parse_codes

    be, ph, labels, seed = _setup(sim, phantom, fov_mm, frame, seed)
    d1, d2 = be.z_dims
    d = d1 + d2
    if not 2 <= grid <= 32:
        raise IvusSimError(f"grid must be between 2 and 32, got {grid}")
    if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= k < d for k in dims):
        raise IvusSimError(f"dims must be two different latent dimensions in 0..{d - 1} "
                           f"(z1: 0..{d1 - 1}, z2: {d1}..{d - 1}), got {list(dims)}")
    if not 0 < quantile < 0.5:
        raise IvusSimError(f"quantile must be in (0, 0.5), got {quantile}")
    b = torch.zeros(d) if base is None else parse_codes(base, (d1, d2), 1)
    assert b is not None
    b = b.reshape(-1)
    if b.numel() != d:
        raise IvusSimError(f"base must have {d} values (z1 then z2), got {b.numel()}")
    ref = be.prior.sample(20000, 1, generator=torch_generator(0, "explore", "prior-quantiles"))[:, 0]
    values = torch.quantile(ref, torch.linspace(quantile, 1 - quantile, grid))
    codes = b.repeat(grid, grid, 1)
    codes[:, :, dims[0]] = values[:, None]
    codes[:, :, dims[1]] = values[None, :]
    tiles = _tiles(be, labels, codes.reshape(-1, d), seed, batch_size)
    rec = {"generator": "ivus_sim.Simulator.explore", "ivus_sim_version": __version__, **sim.describe(),
           "phantom": ph.to_dict(), "frame": frame, "grid": grid, "dims": list(dims), "seed": seed,
           "quantile": quantile, "values": floats(values), "base": floats(b)}
    return GridResult(images=tiles.reshape(grid, grid, *labels.shape), codes=codes.numpy(), record=rec)


def interpolate(sim: Simulator, phantom: Phantom | np.ndarray, z_a: Sequence[float], z_b: Sequence[float],
                steps: int = 8, seed: int = 0, *, fov_mm: float | None = None, frame: int = 0,
                batch_size: int = 8) -> GridResult:
    """Images along the spherical interpolation from code ``z_a`` to ``z_b`` (each d1 + d2 values).

    The stage-2 noise maps are fixed (drawn from ``seed``). Returns tiles ``(1, steps, N, N)``.
    """
    from ivus_sim.simulator.api import floats, parse_codes

    be, ph, labels, seed = _setup(sim, phantom, fov_mm, frame, seed)
    d1, d2 = be.z_dims
    if not 2 <= steps <= 64:
        raise IvusSimError(f"steps must be between 2 and 64, got {steps}")
    za, zb = (parse_codes(v, (d1, d2), 1) for v in (z_a, z_b))
    assert za is not None and zb is not None
    if za.shape[1] != d1 + d2 or zb.shape[1] != d1 + d2:
        raise IvusSimError(f"interpolation codes need {d1 + d2} values each (z1 then z2)")
    codes = slerp(za[0], zb[0], torch.linspace(0, 1, steps)[:, None])
    tiles = _tiles(be, labels, codes, seed, batch_size)
    rec = {"generator": "ivus_sim.Simulator.interpolate", "ivus_sim_version": __version__, **sim.describe(),
           "phantom": ph.to_dict(), "frame": frame, "steps": steps, "seed": seed,
           "z_a": floats(za[0]), "z_b": floats(zb[0])}
    return GridResult(images=tiles.reshape(1, steps, *labels.shape), codes=codes.numpy()[None], record=rec)
