"""The mode-seeking loss ``s2_diversity``: texture correlation of two draws, against numpy, and its use."""

from __future__ import annotations

import torch

from ivus_sim.metrics.diversity import shared_texture
from ivus_sim.metrics.diversity import tissue_interior as np_interior
from ivus_sim.stage2.diversity_loss import diversity_loss, fine_texture, texture_correlation, tissue_interior

A, S = 64, 96


def _labels() -> torch.Tensor:
    lab = torch.zeros(2, A, S, dtype=torch.long)  # perivascular
    lab[:, :, :8] = 1  # lumen (excluded)
    lab[:, :, 40:60] = 2  # a fibrous band
    return lab


def _field(seed: int, shape: tuple[int, ...] = (2, 1, A, S)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_correlation_matches_numpy_on_the_tissue_interior() -> None:
    lab = _labels()
    shared, n1, n2 = _field(1), _field(2), _field(3)
    a, b = 0.4 + 0.05 * (shared + n1), 0.4 + 0.05 * (shared + n2)
    got = texture_correlation(a, b, lab)
    # reference: the metric of ivus_sim.metrics.diversity (numpy / scipy)
    for i in range(2):
        ref = shared_texture([torch.cat([a[i], b[i]]).numpy()], [lab[i].numpy()])["mean_correlation"]
        assert abs(float(got[i]) - ref) < 1e-4
        # shared and own noise of equal variance: the fine textures correlate ~ 1/2
        assert 0.4 < ref < 0.6
    assert torch.equal(tissue_interior(lab)[:, :, :12], torch.zeros(2, A, 12, dtype=torch.bool))
    assert (tissue_interior(lab)[0].numpy() == np_interior(lab[0].numpy())).all()


def test_independent_draws_do_not_correlate_identical_ones_do() -> None:
    lab = _labels()
    a, b = 0.4 + 0.05 * _field(4), 0.4 + 0.05 * _field(5)
    assert float(texture_correlation(a, b, lab).abs().max()) < 0.06
    assert torch.allclose(texture_correlation(a, a, lab), torch.ones(2), atol=1e-5)
    assert float(diversity_loss(a, a, lab)["s2_diversity"]) > 0.99


def test_edges_that_every_draw_shares_do_not_count() -> None:
    """A bright tissue boundary is the same in every draw; only texture inside tissue is compared."""
    lab = _labels()
    edge = torch.zeros(2, 1, A, S)
    edge[..., 39:41] = 0.5  # a bright line at the perivascular / fibrous boundary
    a, b = 0.3 + edge + 0.05 * _field(6), 0.3 + edge + 0.05 * _field(7)
    assert float(texture_correlation(a, b, lab).max()) < 0.06


def test_fine_texture_is_periodic_in_angle() -> None:
    """The box mean wraps around the frame: rolling the image by any number of A-lines rolls its texture."""
    x = _field(8)
    assert torch.allclose(fine_texture(x.roll(7, dims=-2)), fine_texture(x).roll(7, dims=-2), atol=1e-6)


def test_gradient_moves_a_generator_off_its_fixed_pattern() -> None:
    """out = mean + w_fixed * pattern + w_noise * noise: the loss's gradient shrinks the fixed part."""
    lab = _labels()
    pattern = _field(9)
    w = torch.tensor([1.0, 1.0], requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    start = None
    for step in range(30):
        n1, n2 = _field(100 + 2 * step), _field(101 + 2 * step)
        a = 0.4 + 0.05 * (w[0] * pattern + w[1] * n1)
        b = 0.4 + 0.05 * (w[0] * pattern + w[1] * n2)
        loss = diversity_loss(a, b, lab)["s2_diversity"]
        start = float(loss) if start is None else start
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert start > 0.4 and float(loss) < 0.15
    assert float(w[0].abs()) < 0.5 * float(w[1].abs())


def test_embedded_default_draws_do_not_share_texture() -> None:
    """Two draws of the shipped model on one phantom carry independent fine texture, as two speckle
    seeds of the physics engine do (the previous default shared 0.28 of it; physics ~0.03)."""
    import numpy as np

    from ivus_sim import Simulator
    from ivus_sim.metrics.imageset import ImageSet, to_polar
    from ivus_sim.phantom.random import random_phantom

    sim = Simulator.default(device="cpu", precision="fp32")
    shared = []
    for i in range(2):
        lab = random_phantom(3, size=256, fov_mm=10.0, index=i).labels[0]
        imgs = sim.generate(lab, n=2, seed=i).images
        ps = to_polar(ImageSet(["a", "b"], list(np.asarray(imgs, dtype=np.float64)), [lab, lab]))
        assert ps.labels is not None
        shared.append(shared_texture([ps.images], [ps.labels[0]])["mean_correlation"])
    assert max(shared) < 0.12, shared
