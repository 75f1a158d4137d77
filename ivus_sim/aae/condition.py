"""Conditioning channels built from a polar label map (shared by both stages).

* one-hot tissue channels, one per id of :data:`ivus_sim.tissues.PALETTE_IDS` (class ``i`` is
  tissue ``PALETTE_IDS[i]``);
* a normalised depth channel (0 at the catheter axis, 1 at the FOV edge);
* cumulative tissue channels: for each class, the fraction of the A-line *in front of* each
  sample (nearer the catheter) that is that tissue. They tell a small network how much calcium,
  guidewire or stent lies between the transducer and a sample, i.e. where to draw acoustic
  shadows and how much attenuation accumulated, without a receptive field spanning the depth.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ivus_sim.tissues import PALETTE_IDS

__all__ = ["N_CLASSES", "CONDITION_CHANNELS", "class_index", "one_hot", "depth_channel", "label_condition"]

#: number of one-hot tissue classes
N_CLASSES = len(PALETTE_IDS)
#: channels of :func:`label_condition`: one-hot + depth + cumulative
CONDITION_CHANNELS = 2 * N_CLASSES + 1

_LUT = np.zeros(256, dtype=np.int64)
_LUT[:] = PALETTE_IDS.index(255)  # unknown ids count as outside
for _i, _t in enumerate(PALETTE_IDS):
    _LUT[_t] = _i
_LUT_T = torch.as_tensor(_LUT)


def class_index(labels: torch.Tensor) -> torch.Tensor:
    """Tissue ids (any integer dtype, ``(...)``) -> class indices int64 ``(...)``."""
    return _LUT_T.to(labels.device)[labels.long()]


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    """Polar label maps ``(B, A, S)`` of tissue ids -> float one-hot ``(B, N_CLASSES, A, S)``."""
    return F.one_hot(class_index(labels), N_CLASSES).permute(0, 3, 1, 2).float()


def depth_channel(batch: int, n_angles: int, n_samples: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised depth ``(B, 1, A, S)``: sample centre radius / FOV radius, in (0, 1)."""
    d = (torch.arange(n_samples, device=device, dtype=torch.float32) + 0.5) / n_samples
    return d.view(1, 1, 1, n_samples).expand(batch, 1, n_angles, n_samples)


def label_condition(labels: torch.Tensor) -> torch.Tensor:
    """Polar label maps ``(B, A, S)`` -> stage condition ``(B, CONDITION_CHANNELS, A, S)``.

    Channels: one-hot classes, normalised depth, cumulative tissue fractions in front of each sample.
    """
    idx = class_index(labels)
    b, a, s = idx.shape
    out = torch.empty(b, CONDITION_CHANNELS, a, s, device=idx.device)
    oh = out[:, :N_CLASSES]
    oh.copy_(idx[:, None] == torch.arange(N_CLASSES, device=idx.device)[None, :, None, None])
    out[:, N_CLASSES] = (torch.arange(s, device=idx.device, dtype=torch.float32) + 0.5) / s  # = depth_channel
    frac = out[:, N_CLASSES + 1:]
    torch.cumsum(oh, dim=-1, out=frac)
    frac.sub_(oh).div_(s)  # fraction of the A-line strictly nearer the catheter
    return out
