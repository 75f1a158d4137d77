"""The polar acquisition grid (A-lines x RF depth samples) for a preset and a field of view.

Depth samples are spaced ``dz = c / (2 fs)`` (the round-trip distance per RF sample), rounded
so that ``n_samples`` samples exactly cover the disc radius with sample centres at
``r_j = (j + 0.5) dz`` - the convention of :mod:`ivus_sim.geometry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ivus_sim.config import Preset

__all__ = ["PolarGrid"]


@dataclass(frozen=True)
class PolarGrid:
    """Polar RF grid.

    Args:
        n_angles: A-lines per revolution.
        n_samples: RF samples per A-line (axis to disc edge).
        radius_mm: disc radius [mm] (half the field of view).
    """

    n_angles: int
    n_samples: int
    radius_mm: float

    @classmethod
    def from_preset(cls, preset: Preset, fov_mm: float, n_angles: int | None = None) -> PolarGrid:
        """The grid the preset's RF sampling gives for a field of view ``fov_mm``."""
        t = preset.transducer
        dz = t.speed_of_sound_m_s / (2 * t.sampling_frequency_mhz * 1e3)  # mm per sample
        radius = fov_mm / 2
        return cls(n_angles=int(n_angles or t.n_angles), n_samples=max(8, math.ceil(radius / dz)),
                   radius_mm=radius)

    @property
    def dz_mm(self) -> float:
        """Depth sample spacing [mm]."""
        return self.radius_mm / self.n_samples

    @property
    def dtheta(self) -> float:
        """Angle between A-lines [rad]."""
        return 2 * math.pi / self.n_angles

    def depths_mm(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """Sample-centre depths ``(n_samples,)`` [mm], float64."""
        return (torch.arange(self.n_samples, dtype=torch.float64, device=device) + 0.5) * self.dz_mm

    def to_dict(self) -> dict[str, Any]:
        return {"n_angles": self.n_angles, "n_samples": self.n_samples, "radius_mm": self.radius_mm,
                "dz_mm": self.dz_mm}
