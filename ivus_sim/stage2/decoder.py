"""Physics-informed stage-2 decoder: mean intensity + labels + z2 + seeded noise -> IVUS image.

Three parts, each plain torch (no MONAI on the generation path):

1. :class:`~ivus_sim.stage2.formation.ScannerParams` decodes z2's style dimensions to scanner
   settings (gain, dynamic range, aperture, centre frequency, bandwidth; learned TGC and noise);
2. :class:`~ivus_sim.stage2.formation.ScatterParamNet` predicts per-pixel scattering parameters
   and :func:`~ivus_sim.stage2.formation.form_image` forms speckle through the learned PSF,
   envelope and log compression (the physics engine's functions);
3. :class:`~ivus_sim.stage2.refine.RefineNet` adds a residual for what the formation misses
   (zero at initialisation).

See :mod:`ivus_sim.stage2.formation` for the model and its references.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ivus_sim.aae.condition import CONDITION_CHANNELS, label_condition
from ivus_sim.stage2.formation import (
    ScannerDefaults,
    ScannerParams,
    ScatterParamNet,
    form_image,
    formation_noise_channels,
)
from ivus_sim.stage2.refine import RefineNet
from ivus_sim.tissues import Tissue

__all__ = ["PhysicsStage2Decoder"]

_BLANK_IDS = (int(Tissue.CATHETER), int(Tissue.OUTSIDE))  # black, as in the engine
#: fixed-point steps of the mean lock (display clamping at 0 and 1 moves the local mean; 3 steps
#: bring it within ~1 grey level of the target in the darkest shadows, measured)
_LOCK_ITERATIONS = 3


class PhysicsStage2Decoder(nn.Module):
    """Stage 2 = learned speckle formation + multi-scale residual refinement.

    Args:
        z_dim: size of z2 (the first ``min(5, z_dim)`` dims are scanner style, the rest texture).
        n_angles: A-lines of the model's full frame (angular spacing of the PSF).
        radius_mm: radius of the polar grid [mm] (half the training FOV).
        n_noise: extra standard-normal channels fed to the refinement (0 allowed).
        refine_channels: refinement widths per scale from 1/2 resolution down.
        param_hidden: width of the scattering-parameter network.
        defaults: initial scanner settings.
        mean_lock: side ``k`` [polar pixels] of the window over which the output keeps the input
            mean (0 = off): formed image + refinement residual are shifted, in a few fixed-point
            steps, until the ``k x k`` local mean of the *displayed* (clamped) image equals the input
            mean's (texture, not brightness: shadows stay as dark as stage 1 draws them).
        oversample: the formation's depth oversampling (:func:`~ivus_sim.stage2.formation.form_image`;
            1 = the model grid).

    ``forward(mean (B,1,A,S), labels (B,A,S), z (B,z_dim), noise (B, noise_channels, A, S))`` -> dict
    ``image (B,1,A,S)`` in [0, 1], ``formed (B,1,A,S)`` (before the residual, unclipped) and ``style``.
    """

    def __init__(self, z_dim: int, n_angles: int, radius_mm: float, n_noise: int = 1,
                 refine_channels: Sequence[int] = (12, 24, 32, 48), param_hidden: int = 12,
                 defaults: ScannerDefaults | None = None, mean_lock: int = 0, oversample: int = 1) -> None:
        super().__init__()
        if mean_lock < 0:
            raise ValueError(f"mean_lock must be >= 0, got {mean_lock}")
        self.mean_lock = int(mean_lock)
        self.oversample = int(oversample)
        self.formation_channels = formation_noise_channels(self.oversample)
        self.n_angles = n_angles
        self.radius_mm = radius_mm
        self.n_noise = n_noise
        self.scanner = ScannerParams(z_dim, defaults)
        self.n_style = self.scanner.n_style
        self.params = ScatterParamNet(1 + CONDITION_CHANNELS, z_dim, param_hidden)
        self.refine = RefineNet(2 + n_noise, 1 + CONDITION_CHANNELS, z_dim - self.n_style, refine_channels)
        blank = torch.zeros(256, dtype=torch.bool)
        for t in _BLANK_IDS:
            blank[t] = True
        self.register_buffer("blank_lut", blank, persistent=False)

    @property
    def noise_channels(self) -> int:
        """The formation's channels (:func:`~ivus_sim.stage2.formation.formation_noise_channels`) + ``n_noise``."""
        return self.formation_channels + self.n_noise

    def forward(self, mean: torch.Tensor, labels: torch.Tensor, z: torch.Tensor, noise: torch.Tensor,
                cond: torch.Tensor | None = None) -> dict[str, object]:
        """``cond``: :func:`~ivus_sim.aae.condition.label_condition` of ``labels`` if already computed."""
        if cond is None:
            cond = label_condition(labels)
        a, s = mean.shape[-2:]
        cond_half = F.avg_pool2d(torch.cat([mean, cond.to(mean.dtype)], 1), 2)
        style = self.scanner(z)
        d_db, sigma_n, sigma_t = self.params(cond_half, z, size=(a, s))
        formed = form_image(mean[:, 0], noise, style, self.radius_mm, 2 * math.pi / self.n_angles,
                            d_db=d_db, sigma_n=sigma_n, sigma_t=sigma_t, oversample=self.oversample)
        assert isinstance(formed, torch.Tensor)
        formed = formed[:, None]
        x = [formed.clamp(-0.5, 1.5).to(mean.dtype), mean]
        if self.n_noise:
            x.append(noise[:, self.formation_channels:].to(mean.dtype))
        z_tex = z[:, self.n_style:] if z.shape[1] > self.n_style else None
        res = self.refine(torch.cat(x, 1), cond_half, z_tex).float()
        out = formed + res
        if self.mean_lock:  # the local brightness is stage 1's: formation and refinement add texture around it
            target = mean.float()
            for _ in range(_LOCK_ITERATIONS):  # match the *displayed* (clamped) local mean, as the teacher's is
                out = out + local_box_mean(target - out.clamp(0.0, 1.0), self.mean_lock)
        image = out.clamp(0.0, 1.0)
        lut: torch.Tensor = self.blank_lut  # type: ignore[assignment]
        blank = lut[labels.long()][:, None]
        image = torch.where(blank, torch.zeros((), device=image.device), image)
        return {"image": image, "formed": formed, "style": style}


def local_box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """Box mean of ``x (B, C, A, S)`` over ``k x k`` polar pixels: circular along the angles (a
    frame is periodic), edge-replicated along depth.

    Separable (a ``k x 1`` then a ``1 x k`` mean: 2k instead of k^2 additions per pixel; the mean
    lock's 16 x 16 box was half of the generation time) and accumulated in float32 whatever the
    input's precision, so a bf16 input rounds once, as a single ``k x k`` pool would."""
    p = k // 2
    q = k - 1 - p
    y = F.pad(x.float(), (p, q, 0, 0), mode="replicate")
    y = F.pad(y, (0, 0, p, q), mode="circular")
    return F.avg_pool2d(F.avg_pool2d(y, (k, 1), stride=1), (1, k), stride=1).to(x.dtype)
