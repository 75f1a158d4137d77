"""Latent priors p(z) of the adversarial autoencoders.

The AAE's latent discriminator learns to tell encoder codes from samples of the prior, and
the encoder learns to fool it, so the aggregated posterior q(z) matches p(z) (Makhzani et
al., "Adversarial Autoencoders", ICLR 2016 workshop, arXiv 1511.05644). At generation time
z is drawn from the prior.

Every prior here has zero mean; Gaussian and uniform have identity covariance, so codes
are comparable across priors. The mixture places its components on the +/- coordinate axes.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> Prior.GAUSSIAN.sample(4, 8, generator=g).shape
torch.Size([4, 8])
"""

from __future__ import annotations

import math
from enum import Enum

import torch

__all__ = ["Prior", "MIXTURE_COMPONENTS", "MIXTURE_RADIUS", "MIXTURE_STD"]

#: number of components of :attr:`Prior.MIXTURE_OF_GAUSSIANS` (placed at +/- r e_i)
MIXTURE_COMPONENTS = 4
#: distance of each mixture component from the origin
MIXTURE_RADIUS = 2.0
#: standard deviation of each mixture component (isotropic)
MIXTURE_STD = 0.5

_UNIFORM_HALF_WIDTH = math.sqrt(3.0)  # U(-a, a) has variance a^2/3 = 1


class Prior(str, Enum):
    """The prior p(z) of an AAE latent code (all zero-mean)."""

    GAUSSIAN = "gaussian"  # N(0, I)
    UNIFORM = "uniform"  # U(-sqrt 3, sqrt 3)^d: unit variance per dimension
    MIXTURE_OF_GAUSSIANS = "mixture_of_gaussians"  # equal-weight N(+/- r e_i, s^2 I), i < K/2

    def _mixture_means(self, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
        k = MIXTURE_COMPONENTS
        means = torch.zeros(k, dim, device=device)
        for c in range(k):
            axis = (c // 2) % dim
            means[c, axis] = MIXTURE_RADIUS * (1.0 if c % 2 == 0 else -1.0)
        return means

    def sample(self, n: int, dim: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """Draw ``n`` codes ``(n, dim)`` float32 from the prior (with ``generator`` when given).

        The draw happens on the generator's device and is then moved to ``device``.
        """
        gdev = generator.device if generator is not None else (device or "cpu")
        if self is Prior.GAUSSIAN:
            z = torch.randn(n, dim, generator=generator, device=gdev)
        elif self is Prior.UNIFORM:
            z = (torch.rand(n, dim, generator=generator, device=gdev) * 2 - 1) * _UNIFORM_HALF_WIDTH
        else:
            comp = torch.randint(0, MIXTURE_COMPONENTS, (n,), generator=generator, device=gdev)
            means = self._mixture_means(dim, gdev)
            z = means[comp] + MIXTURE_STD * torch.randn(n, dim, generator=generator, device=gdev)
        return z.to(device) if device is not None else z

    def mean(self, dim: int) -> torch.Tensor:
        """Mean of the prior ``(dim,)`` (zero for every prior here)."""
        return torch.zeros(dim)

    def covariance(self, dim: int) -> torch.Tensor:
        """Covariance matrix of the prior ``(dim, dim)``."""
        if self in (Prior.GAUSSIAN, Prior.UNIFORM):
            return torch.eye(dim)
        means = self._mixture_means(dim)
        return MIXTURE_STD**2 * torch.eye(dim) + means.T @ means / MIXTURE_COMPONENTS

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Log density of codes ``z`` ``(n, dim)`` -> ``(n,)`` (``-inf`` outside a uniform's support)."""
        dim = z.shape[-1]
        if self is Prior.GAUSSIAN:
            return -0.5 * (z**2).sum(-1) - 0.5 * dim * math.log(2 * math.pi)
        if self is Prior.UNIFORM:
            inside = (z.abs() <= _UNIFORM_HALF_WIDTH).all(-1)
            lp = torch.full(z.shape[:-1], -dim * math.log(2 * _UNIFORM_HALF_WIDTH), dtype=z.dtype, device=z.device)
            return torch.where(inside, lp, torch.full_like(lp, -math.inf))
        means = self._mixture_means(dim, z.device).to(z.dtype)
        d2 = ((z[..., None, :] - means) ** 2).sum(-1)  # (n, K)
        comp = -0.5 * d2 / MIXTURE_STD**2 - dim * math.log(MIXTURE_STD) - 0.5 * dim * math.log(2 * math.pi)
        return torch.logsumexp(comp, -1) - math.log(MIXTURE_COMPONENTS)
