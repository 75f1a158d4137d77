"""Polar patches of stage-0 physics images of random phantoms (data for the toy AAE, :mod:`ivus_sim.aae.toy`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ivus_sim.config import load_preset
from ivus_sim.errors import IvusSimError
from ivus_sim.phantom.random import random_phantom
from ivus_sim.physics.simulator import PhysicsSimulator

__all__ = ["physics_patches"]


def physics_patches(n_images: int, *, size: int = 64, n_angles: int = 128, patch_angles: int = 16,
                    depth_samples: int = 16, seed: int = 0, preset: str = "20mhz",
                    batch_size: int = 32) -> torch.Tensor:
    """Polar patches of stage-0 physics images of random phantoms.

    Each of ``n_images`` random phantoms (:func:`ivus_sim.phantom.random_phantom`, seed ``seed``,
    index ``i``) is simulated by :class:`ivus_sim.physics.PhysicsSimulator` (stream index ``i``).
    The polar display image ``(n_angles, S)`` is resampled along depth to ``depth_samples`` (area
    averaging) and cut into ``n_angles // patch_angles`` sectors of ``patch_angles`` A-lines.

    Args:
        n_images: phantoms to simulate. size: label-map side [px].
        n_angles: A-lines per frame. patch_angles: A-lines per patch (divides ``n_angles``).
        depth_samples: depth samples per patch (catheter axis to the FOV edge).
        seed: phantom and speckle seed. preset: transducer preset name.
        batch_size: images simulated per call.

    Returns:
        ``(n_images * n_angles // patch_angles, 1, patch_angles, depth_samples)`` float32 in ``[0, 1]``,
        the patches of image ``i`` consecutive.
    """
    if n_images < 1 or patch_angles < 1 or n_angles % patch_angles:
        raise IvusSimError(f"need n_images >= 1 and patch_angles dividing n_angles ({n_angles}), "
                           f"got {n_images}, {patch_angles}")
    sim = PhysicsSimulator(load_preset(preset), n_angles=n_angles)
    out = []
    for start in range(0, n_images, batch_size):
        idx = range(start, min(n_images, start + batch_size))
        labels = np.concatenate([random_phantom(seed, size=size, index=i).labels for i in idx])
        polar = torch.as_tensor(sim.simulate(labels, seed=seed, first_index=start).polar)  # (B, A, S)
        polar = F.interpolate(polar[:, None], size=(n_angles, depth_samples), mode="area")
        b = polar.shape[0]
        out.append(polar.view(b, 1, n_angles // patch_angles, patch_angles, depth_samples)
                   .permute(0, 2, 1, 3, 4).reshape(-1, 1, patch_angles, depth_samples))
    return torch.cat(out).clamp(0, 1).contiguous()
