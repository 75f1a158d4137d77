"""Step: catheter ring-down.

Right after transmit the transducer keeps ringing and the sheath/catheter interfaces reverberate,
which shows as bright concentric rings just outside the catheter in every real IVUS image (the
calibration frames' radial profile peaks at 10-20 % of the disc radius). Modelled as a comb of
reflectors starting at the catheter surface of each A-line (the first non-catheter sample),
``spacing_mm`` apart, the ``k``-th of amplitude ``A exp(-k spacing / decay_mm)``, times a per-A-line
jitter ``1 + jitter * n`` (rotation-dependent coupling). The PSF turns the comb into rings; the
ring-down is not attenuated by tissue (it is generated in the catheter).
"""

from __future__ import annotations

import torch

from ivus_sim.config import RingDown
from ivus_sim.physics.grid import PolarGrid
from ivus_sim.physics.tissue_table import TissueTable, lookup

__all__ = ["catheter_surface", "ringdown_reflectors", "ringdown_power_scale"]


def catheter_surface(labels: torch.Tensor, table: TissueTable) -> torch.Tensor:
    """Index ``(B, A)`` of the first imaged sample of each A-line (after the blanked catheter core)."""
    imaged = ~lookup(table.blank, labels)
    first = torch.argmax(imaged.to(torch.uint8), dim=-1)  # first imaged sample from the axis
    return torch.where(imaged.any(-1), first, torch.full_like(first, labels.shape[-1]))


def ringdown_reflectors(labels: torch.Tensor, table: TissueTable, grid: PolarGrid, ringdown: RingDown,
                        generators: list[torch.Generator] | None) -> torch.Tensor:
    """Ring-down reflector amplitudes ``(B, A, S)`` float32 (jitter-free when ``generators`` is None)."""
    b, a, s = labels.shape
    dev = labels.device
    start = catheter_surface(labels, table)  # (B, A)
    n_rings = max(1, int(ringdown.extent_mm / ringdown.spacing_mm) + 1)
    k = torch.arange(n_rings, device=dev)
    pos = start[..., None] + torch.round(k * ringdown.spacing_mm / grid.dz_mm).long()  # (B, A, K)
    amp = 10 ** (ringdown.amplitude_db / 20) * torch.exp(-k * ringdown.spacing_mm / ringdown.decay_mm)
    amp = amp.float().expand(b, a, -1)
    if generators is not None and ringdown.jitter > 0:
        jit = torch.stack([torch.randn((a, 1), generator=g, device=dev) for g in generators])
        amp = amp * (1 + ringdown.jitter * jit).clamp_min(0.0)
    ok = pos < s
    out = torch.zeros((b, a, s), dtype=torch.float32, device=dev)
    amp = torch.where(ok, amp, torch.zeros((), device=dev))
    return out.scatter_add(-1, pos.clamp_max(s - 1), amp.contiguous())


def ringdown_power_scale(ringdown: RingDown) -> float:
    """Mean of ``(1 + jitter n)^2``, ``n ~ N(0, 1)``: ``1 + jitter^2`` (ignoring the clip at 0), for the mean map."""
    return 1 + ringdown.jitter**2
