"""Toy paired data for tests and demos: random phantoms imaged by a tiny analytic model.

*Not* the physics engine (:mod:`ivus_sim.physics` is); a few lines that give paired data with the
features the networks must learn, so the training code can be tested without it:
tissue-specific echogenicity, fully developed speckle (Rayleigh amplitude, elongated along the
angle axis by a short lateral blur), exponential attenuation with depth, and an acoustic shadow
behind dense calcium, all in the polar domain, then log-compressed and scan-converted.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ivus_sim.geometry import Interp, cart_to_polar, polar_to_cart
from ivus_sim.phantom.random import random_phantom
from ivus_sim.seeding import rng
from ivus_sim.tissues import Tissue

__all__ = ["TOY_ECHOGENICITY", "toy_image", "toy_pairs"]

#: relative echogenicity per tissue of the toy model (0 = anechoic)
TOY_ECHOGENICITY: dict[int, float] = {
    Tissue.PERIVASCULAR: 0.55, Tissue.LUMEN: 0.08, Tissue.FIBROUS: 0.7, Tissue.FIBRO_FATTY: 0.5,
    Tissue.NECROTIC_CORE: 0.3, Tissue.DENSE_CALCIUM: 1.0, Tissue.MEDIA: 0.2, Tissue.CATHETER: 0.0,
    Tissue.GUIDEWIRE: 1.0, Tissue.STENT_STRUT: 1.0, Tissue.OUTSIDE: 0.0,
}


def toy_image(labels: np.ndarray, g: np.random.Generator, n_angles: int = 128) -> np.ndarray:
    """Image one Cartesian label map ``(N, N)`` with the toy model -> uint8 ``(N, N)``."""
    n = labels.shape[-1]
    s = n // 2
    lab_p = np.asarray(cart_to_polar(labels, n_angles, s, Interp.NEAREST))
    lut = np.zeros(256, np.float32)
    for t, v in TOY_ECHOGENICITY.items():
        lut[int(t)] = v
    echo = lut[lab_p]
    depth = (np.arange(s) + 0.5) / s
    calc = np.isin(lab_p, [Tissue.DENSE_CALCIUM, Tissue.GUIDEWIRE, Tissue.STENT_STRUT])
    shadow = np.exp(-3.0 * (np.cumsum(calc, -1) - calc) / max(1, s // 16))
    amp = np.sqrt(echo * shadow * np.exp(-1.2 * depth))[None]
    z = torch.as_tensor(g.normal(size=(1, 2, n_angles, s)).astype(np.float32))
    z = F.avg_pool2d(torch.cat([z[..., -1:, :], z, z[..., :1, :]], -2), (3, 1), stride=1)  # lateral correlation
    env = amp * np.sqrt((z.numpy()[0] ** 2).sum(0, keepdims=True) / 2)  # Rayleigh, mean-square = amp^2
    img = np.log1p(30 * env[0]) / np.log1p(30 * 1.5)
    cart = np.asarray(polar_to_cart(img.astype(np.float32), n, Interp.BILINEAR, 0.0))
    return (np.clip(cart, 0, 1) * 255).round().astype(np.uint8)


def toy_pairs(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` toy pairs: ``(labels (n, size, size) uint8, images (n, size, size) uint8)``, reproducible by seed."""
    labels = np.stack([random_phantom(seed, size=size, index=i).labels[0] for i in range(n)])
    images = np.stack([toy_image(labels[i], rng(seed, "toy-image", i), n_angles=max(32, 4 * size // 2))
                       for i in range(n)])
    return labels, images
