"""Speckle that changes with the seed: a mode-seeking loss against fixed-pattern texture.

Two images of one phantom drawn with different stage-2 noise must carry *independent* speckle:
in the physics teacher, the fine texture (the image minus its local mean) of two speckle seeds
correlates at about 0.05 inside tissue (label interiors; 6 phantoms, measured on the polar model
grid). A generator trained with pixel and adversarial losses can instead learn a texture that is
a function of the label map alone (the refinement network draws it from the condition, whatever
the noise): the embedded default of 2026-12-02 (``ivus-sim-default-094302fd0e79``) shares
0.24 of it between draws. Each image looks right; a set of draws is less diverse than speckle
(pairwise L1 0.073 against the physics engine's 0.078, ``benchmarks/diversity.py``).

``s2_diversity`` decodes the batch twice with the same codes and independent noise and penalises
the positive correlation of the two fine textures in tissue interiors, per image: a
mode-seeking regulariser in the spirit of Mao et al., "Mode seeking generative adversarial
networks for diverse image synthesis", CVPR 2019, written for speckle (the target, independence,
is what the teacher shows) rather than as a distance ratio.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ivus_sim.aae.condition import N_CLASSES, class_index
from ivus_sim.stage2.decoder import local_box_mean
from ivus_sim.tissues import PALETTE_IDS, SPECKLE_TISSUES

__all__ = ["DIVERSITY_LOSS_NAMES", "fine_texture", "texture_correlation", "tissue_interior"]

#: named losses of this module
DIVERSITY_LOSS_NAMES = ("s2_diversity",)
_KEEP = [PALETTE_IDS.index(int(t)) for t in SPECKLE_TISSUES]  # class indices of the compared tissues


def fine_texture(image: torch.Tensor, window: int = 9) -> torch.Tensor:
    """``image (B, 1, A, S)`` minus its ``window x window`` polar box mean
    (:func:`~ivus_sim.stage2.decoder.local_box_mean`: periodic in angle, edge-replicated in depth)."""
    return image - local_box_mean(image, window)


def tissue_interior(labels: torch.Tensor, erode: int = 5) -> torch.Tensor:
    """Bool ``(B, A, S)``: pixels more than ``erode`` samples inside one tissue of
    :data:`~ivus_sim.tissues.SPECKLE_TISSUES`, so that edges, which are the same in every draw, do not
    count. The default is one more than half the :func:`fine_texture` window: no box mean reaches a
    boundary."""
    oh = F.one_hot(class_index(labels), N_CLASSES).permute(0, 3, 1, 2).float()
    k = 2 * erode + 1
    x = F.pad(oh, (erode, erode, 0, 0), value=0.0)
    x = F.pad(x, (0, 0, erode, erode), mode="circular")
    inner = -F.max_pool2d(-x, k, stride=1) > 0.5  # (B, K, A, S)
    return inner[:, _KEEP].any(1)


def texture_correlation(a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor, min_pixels: int = 64
                        ) -> torch.Tensor:
    """Per-image Pearson correlation ``(B,)`` of the fine textures of two draws ``(B, 1, A, S)``
    over :func:`tissue_interior` (0 for an image with fewer than ``min_pixels`` interior pixels)."""
    m = tissue_interior(labels)[:, None].float()
    n = m.sum(dim=(1, 2, 3))
    ta, tb = fine_texture(a.float()), fine_texture(b.float())
    ma = (ta * m).sum(dim=(1, 2, 3)) / n.clamp_min(1)
    mb = (tb * m).sum(dim=(1, 2, 3)) / n.clamp_min(1)
    da = (ta - ma.view(-1, 1, 1, 1)) * m
    db = (tb - mb.view(-1, 1, 1, 1)) * m
    cov = (da * db).sum(dim=(1, 2, 3))
    den = (da.pow(2).sum(dim=(1, 2, 3)) * db.pow(2).sum(dim=(1, 2, 3))).clamp_min(1e-12).sqrt()
    return torch.where(n >= min_pixels, cov / den, torch.zeros_like(cov))


def diversity_loss(a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"s2_diversity": mean over images of max(0, texture correlation)}`` of two draws ``(B, 1, A, S)``."""
    return {"s2_diversity": texture_correlation(a, b, labels).clamp_min(0).mean()}
