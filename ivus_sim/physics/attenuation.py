"""Step: attenuation and acoustic shadowing along each A-line.

The two-way amplitude of an echo from depth sample ``j`` is

    a_j = exp(-2 * sum_{i<j} alpha_i dz - alpha_j dz - 2 * sum_{exits e <= j} L_e)

with ``alpha`` the tissue's one-way attenuation at the centre frequency
(``alpha [Np/mm] = att [dB/(MHz cm)] * f0 [MHz] / 10 * ln(10) / 20``, the linear-in-frequency
law of soft tissue, ~0.8 dB/(MHz cm) in Rosales & Radeva 2005) and ``L_e`` the one-way
transmission loss of a shadowing layer (dense calcium, guidewire, stent strut), charged where the
beam leaves the layer: the layer itself is bright (strong backscatter from its grains and
surfaces, its own attenuation applies inside it) and everything behind it lies in the acoustic
shadow. The frequency downshift of the pulse with depth is neglected (attenuation at ``f0``).
"""

from __future__ import annotations

import torch

from ivus_sim.physics.grid import PolarGrid
from ivus_sim.physics.tissue_table import TissueTable, lookup

__all__ = ["leading_edges", "two_way_attenuation"]


def leading_edges(labels: torch.Tensor) -> torch.Tensor:
    """Bool ``(B, A, S)``: the first sample of each run of one tissue along depth (sample 0 included)."""
    edge = torch.ones_like(labels, dtype=torch.bool)
    edge[..., 1:] = labels[..., 1:] != labels[..., :-1]
    return edge


def two_way_attenuation(labels: torch.Tensor, table: TissueTable, grid: PolarGrid,
                        edges: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-way amplitude attenuation for polar tissue ids ``labels`` ``(B, A, S)``.

    ``edges`` (optional) are the :func:`leading_edges` of ``labels`` if already computed.

    Returns:
        ``(at_sample, at_front)``: float32 ``(B, A, S)`` factors in ``(0, 1]``; ``at_sample`` for
        scatterers at each sample, ``at_front`` for a specular echo from the front face of the
        sample (before the sample's own attenuation).
    """
    alpha = lookup(table.alpha_np_per_mm, labels) * grid.dz_mm  # one-way loss per sample [Np]
    per = 2 * alpha
    if bool((table.shadow_np > 0).any()):
        # a shadowing layer that ends at sample j (j-1 inside it, j another tissue) charges its loss at j
        edges = leading_edges(labels) if edges is None else edges
        shadow = lookup(table.shadow_np, labels)
        exit_loss = torch.where(edges[..., 1:], shadow[..., :-1], torch.zeros((), device=labels.device))
        per[..., 1:] += 2 * exit_loss
    front = torch.cumsum(per, dim=-1) - 2 * alpha  # losses in front of sample j, incl. an exit at j
    return torch.exp(-(front + alpha)), torch.exp(-front)
