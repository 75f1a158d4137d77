"""Priors of the AAE: samples match the documented moments; log densities match references."""

from __future__ import annotations

import math

import pytest
import torch

from ivus_sim.aae.priors import MIXTURE_COMPONENTS, MIXTURE_RADIUS, MIXTURE_STD, Prior


@pytest.mark.parametrize("prior", list(Prior))
def test_sample_moments_match_mean_and_covariance(prior: Prior) -> None:
    g = torch.Generator().manual_seed(0)
    z = prior.sample(40_000, 4, generator=g)
    assert z.shape == (40_000, 4) and z.dtype == torch.float32
    assert torch.allclose(z.mean(0), prior.mean(4), atol=0.05)
    cov = torch.cov(z.T)
    assert torch.allclose(cov, prior.covariance(4), atol=0.08)


@pytest.mark.parametrize("prior", list(Prior))
def test_sampling_is_reproducible_with_a_generator(prior: Prior) -> None:
    a = prior.sample(5, 3, generator=torch.Generator().manual_seed(7))
    b = prior.sample(5, 3, generator=torch.Generator().manual_seed(7))
    c = prior.sample(5, 3, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gaussian_log_prob_matches_torch_distribution() -> None:
    z = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
    ref = torch.distributions.MultivariateNormal(torch.zeros(3), torch.eye(3)).log_prob(z)
    assert torch.allclose(Prior.GAUSSIAN.log_prob(z), ref, atol=1e-5)


def test_uniform_log_prob_inside_and_outside_support() -> None:
    a = math.sqrt(3)
    z = torch.tensor([[0.0, 0.0], [a * 0.99, -a * 0.99], [a * 1.01, 0.0]])
    lp = Prior.UNIFORM.log_prob(z)
    assert torch.allclose(lp[:2], torch.full((2,), -2 * math.log(2 * a)))
    assert lp[2] == -math.inf


def test_mixture_log_prob_matches_explicit_mixture() -> None:
    d = 3
    z = torch.randn(20, d, generator=torch.Generator().manual_seed(2)) * 2
    comps = []
    for c in range(MIXTURE_COMPONENTS):
        mu = torch.zeros(d)
        mu[(c // 2) % d] = MIXTURE_RADIUS * (1 if c % 2 == 0 else -1)
        comps.append(torch.distributions.MultivariateNormal(mu, MIXTURE_STD**2 * torch.eye(d)).log_prob(z))
    ref = torch.logsumexp(torch.stack(comps, -1), -1) - math.log(MIXTURE_COMPONENTS)
    assert torch.allclose(Prior.MIXTURE_OF_GAUSSIANS.log_prob(z), ref, atol=1e-4)


def test_mixture_samples_are_multimodal() -> None:
    z = Prior.MIXTURE_OF_GAUSSIANS.sample(4000, 2, generator=torch.Generator().manual_seed(3))
    # almost no mass near the origin, unlike the Gaussian
    near = (z.norm(dim=1) < 0.5).float().mean()
    near_g = (Prior.GAUSSIAN.sample(4000, 2, generator=torch.Generator().manual_seed(3)).norm(dim=1) < 0.5)
    assert near < 0.02 < near_g.float().mean()
