"""Learned transmission along each A-line: the physics of acoustic shadows as a stage-1 input.

The label condition's cumulative channels give, per tissue, the *fraction* of the A-line in front
of each sample. A guidewire or a stent strut is 1-3 of 128 depth samples, so behind it that
fraction is ~0.01, a signal a small network barely separates from zero; yet on a real scanner
such a reflector casts a full-depth shadow (measured on the hidden 40 MHz scanner of
``benchmarks/hidden_scanner.py``: 0.54 of the unshadowed brightness behind guidewires, where a
13-frame model drew 0.67). This layer computes the Beer-Lambert transmission

    T(a, s) = exp(- sum_{s' < s} alpha[class(a, s')]),    alpha = softplus(rho) >= 0 [1/sample],

with one learned attenuation per tissue class, and hands it to stage 1 as one more condition
channel. Initial values (per polar depth sample): strong reflectors (dense calcium, guidewire,
stent strut) 0.7, i.e. ~12 % left after 3 samples; soft tissue 0.02 (about the two-way
attenuation of tissue at 20-40 MHz on a 5 mm / 128-sample grid); blood 0.005; catheter and outside
~0 (1e-4: softplus keeps every value positive; the catheter is in front of every sample and only
shifts every A-line alike). Training moves
them with the scanner-scalar learning rate (``train.lr_scanner``).

Reference: the shadow model of the physics engine (:mod:`ivus_sim.physics.attenuation`), here with
learned coefficients instead of tabled ones.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ivus_sim.aae.condition import N_CLASSES
from ivus_sim.tissues import PALETTE_IDS, Tissue

__all__ = ["LearnedTransmission", "INITIAL_ATTENUATION"]

_STRONG = 0.7
_SOFT = 0.02

#: initial attenuation per tissue [1 / polar depth sample], by tissue id
INITIAL_ATTENUATION: dict[int, float] = {
    int(Tissue.PERIVASCULAR): _SOFT,
    int(Tissue.LUMEN): 0.005,
    int(Tissue.FIBROUS): _SOFT,
    int(Tissue.FIBRO_FATTY): _SOFT,
    int(Tissue.NECROTIC_CORE): _SOFT,
    int(Tissue.DENSE_CALCIUM): _STRONG,
    int(Tissue.MEDIA): _SOFT,
    int(Tissue.CATHETER): 0.0,
    int(Tissue.GUIDEWIRE): _STRONG,
    int(Tissue.STENT_STRUT): _STRONG,
    int(Tissue.OUTSIDE): 0.0,
}


def _inv_softplus(y: float) -> float:
    y = max(y, 1e-4)
    return y + math.log(-math.expm1(-y))


class LearnedTransmission(nn.Module):
    """One-hot tissue classes -> transmission along the A-line, with learned per-tissue attenuation.

    Shapes: ``one_hot (B, N_CLASSES, A, S)`` (class ``i`` is tissue ``PALETTE_IDS[i]``; depth along
    the last axis, catheter first) -> ``(B, 1, A, S)`` in (0, 1]: 1 where nothing attenuating lies
    in front of the sample.
    """

    def __init__(self) -> None:
        super().__init__()
        init = [_inv_softplus(INITIAL_ATTENUATION[t]) for t in PALETTE_IDS]
        self.rho = nn.Parameter(torch.tensor(init, dtype=torch.float32))

    def attenuation(self) -> torch.Tensor:
        """Per-class attenuation ``(N_CLASSES,)`` [1 / depth sample], >= 0."""
        return F.softplus(self.rho)

    def forward(self, one_hot: torch.Tensor) -> torch.Tensor:
        if one_hot.shape[1] != N_CLASSES:
            raise ValueError(f"expected {N_CLASSES} one-hot channels, got {one_hot.shape[1]}")
        per_sample = torch.einsum("bcas,c->bas", one_hot, self.attenuation().to(one_hot.dtype))
        in_front = torch.cumsum(per_sample, dim=-1) - per_sample  # strictly nearer the catheter
        return torch.exp(-in_front)[:, None]
