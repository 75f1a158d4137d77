"""Step: tissue surfaces - bright surface layers, specular echoes and reverberation.

A tissue with ``surface_db`` has a layer of enhanced backscatter at its leading surface along each
A-line (power factor ``1 + (10^(surface_db/10) - 1) exp(-d / surface_depth_mm)``, ``d`` the depth
into the tissue): the collagen-rich adventitia that makes the media-adventitia border the
brightest ring of a normal IVUS image, or the bright leading edge of a plaque.

A tissue flagged ``specular`` returns a coherent echo of amplitude ``10^(specular_db/20)`` from
its leading surface (with a small per-A-line roughness jitter). Behind the *first* specular layer
of each A-line, the sound trapped between its front and back faces returns repeated echoes at
multiples of the layer thickness ``d`` (reverberation; Mintz et al., ACC IVUS consensus 2001):
echo ``k`` at ``front + k d`` with amplitude ``specular x decay^k``. They are placed as point
reflectors in the scatterer field, so the PSF turns them into bright arcs.
"""

from __future__ import annotations

import torch

from ivus_sim.physics.attenuation import leading_edges
from ivus_sim.physics.tissue_table import TissueTable, lookup

__all__ = ["MAX_REVERBERATIONS", "ROUGHNESS", "specular_echoes", "surface_layer"]

MAX_REVERBERATIONS = 8
#: relative std of the per-A-line specular amplitude (surface roughness)
ROUGHNESS = 0.2


def surface_layer(labels: torch.Tensor, table: TissueTable, dz_mm: float,
                  edges: torch.Tensor | None = None) -> torch.Tensor | None:
    """Backscatter *power* factor ``(B, A, S)`` of the surface layers (None when no tissue present has one).

    Args:
        labels: polar tissue ids ``(B, A, S)`` (long).
        table: tissue lookup tables.
        dz_mm: depth sample spacing [mm].
        edges: :func:`~ivus_sim.physics.attenuation.leading_edges` of ``labels`` if already computed.
    """
    gain = lookup(table.surface_gain, labels)
    if not bool((gain != 0).any()):
        return None
    s = labels.shape[-1]
    edges = leading_edges(labels) if edges is None else edges
    idx = torch.arange(s, device=labels.device, dtype=torch.float32).expand(labels.shape)
    last_edge = torch.cummax(idx * edges, dim=-1).values  # index of the last leading edge at or before j
    depth = (idx - last_edge) * dz_mm
    return 1 + gain * torch.exp(-depth / lookup(table.surface_depth_mm, labels))


def specular_echoes(labels: torch.Tensor, table: TissueTable, at_front: torch.Tensor,
                    generators: list[torch.Generator] | None, edges: torch.Tensor | None = None) -> torch.Tensor:
    """Specular + reverberation reflector amplitudes ``(B, A, S)`` float32.

    Args:
        labels: polar tissue ids ``(B, A, S)`` (long).
        table: tissue lookup tables.
        at_front: two-way attenuation at each sample's front face ``(B, A, S)``.
        generators: one per image (roughness draws: ``(A,)`` per image); None: no roughness (mean map).
        edges: :func:`~ivus_sim.physics.attenuation.leading_edges` of ``labels`` if already computed.
    """
    b, a, s = labels.shape
    dev = labels.device
    spec = lookup(table.specular_amp, labels)
    edges = (leading_edges(labels) if edges is None else edges) & (spec > 0)
    if generators is None:
        rough = torch.ones((b, a, 1), device=dev)
    else:
        rough = torch.stack([1 + ROUGHNESS * torch.randn((a, 1), generator=g, device=dev) for g in generators])
        rough = rough.clamp_min(0.1)
    out = torch.where(edges, spec * at_front * rough, torch.zeros((), device=dev))
    # reverberation behind the first specular layer of each A-line
    is_spec = spec > 0
    has = is_spec.any(-1)  # (B, A)
    if not bool(has.any()):
        return out
    idx = torch.arange(s, device=dev)
    front = torch.argmax(is_spec.int(), dim=-1)  # first specular sample
    front_lab = torch.gather(labels, -1, front[..., None])
    inside = (labels == front_lab) & (idx >= front[..., None])
    # the layer ends at the first sample after the front that is another tissue
    after = (~inside) & (idx > front[..., None])
    end = torch.where(after.any(-1), torch.argmax(after.int(), dim=-1), torch.full_like(front, s))
    thick = (end - front).clamp_min(1)
    decay = lookup(table.reverb_decay, front_lab[..., 0])  # (B, A)
    amp0 = torch.gather(out, -1, front[..., None])[..., 0]  # attenuated, roughened surface echo
    k = torch.arange(1, MAX_REVERBERATIONS + 1, device=dev)
    pos = front[..., None] + k * thick[..., None]  # (B, A, K)
    amp = amp0[..., None] * decay[..., None] ** k
    ok = (pos < s) & has[..., None] & (decay[..., None] > 0)
    amp = torch.where(ok, amp, torch.zeros((), device=dev))
    return out.scatter_add(-1, pos.clamp_max(s - 1), amp)
