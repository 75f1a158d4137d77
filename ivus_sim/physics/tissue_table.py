"""Per-tissue acoustic properties as lookup tables indexed by tissue id (step: parameters).

The editable :class:`~ivus_sim.config.TissueAcoustics` (keyed by tissue name) is turned into
256-entry tensors evaluated at the preset's centre frequency, so every per-sample property is one
gather ``table[labels]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ivus_sim.config import Preset, TissueAcoustics
from ivus_sim.tissues import TISSUES, Tissue

__all__ = ["TissueTable", "SPARSE_LIMIT", "lookup", "resolution_cell_mm2"]

_DB_TO_NP = math.log(10) / 20  # amplitude dB -> neper
#: scatterers per resolution cell below which a tissue's counting statistics are simulated exactly
SPARSE_LIMIT = 20.0


def lookup(column: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``column[labels]`` for a ``(256,)`` table column and long tissue ids of any shape.

    ``index_select`` on the flattened ids: the same values as advanced indexing, ~6x faster on CPU.
    """
    return column.index_select(0, labels.reshape(-1)).view(labels.shape)


def resolution_cell_mm2(preset: Preset) -> float:
    """Resolution cell area [mm^2]: axial x lateral FWHM of the PSF at the focus."""
    from ivus_sim.physics.psf import axial_sigma_mm, beam_sigma_mm

    fwhm = 2 * math.sqrt(2 * math.log(2))
    lat = float(beam_sigma_mm(preset, torch.tensor([preset.beam.focus_mm], dtype=torch.float64))[0])
    return fwhm * axial_sigma_mm(preset) * fwhm * lat


@dataclass(frozen=True)
class TissueTable:
    """Lookup tables ``(256,)`` (float32 unless noted), indexed by tissue id.

    Attributes:
        backscatter: mean backscattered power at ``f0`` (linear).
        amplitude: its square root (scatterer amplitude scale).
        density_per_mm2: scatterer density.
        texture_db: std of the log-normal backscatter modulation [dB].
        texture_scale_mm: correlation length of that modulation [mm].
        alpha_np_per_mm: one-way amplitude attenuation at ``f0`` [Np/mm].
        surface_gain: extra backscatter power factor minus 1 at the leading surface (0 = none).
        surface_depth_mm: 1/e thickness of that surface layer [mm].
        specular_amp: amplitude of the leading-surface echo (0 = none).
        shadow_np: one-way transmission loss at the leading surface [Np] (0 = none).
        reverb_decay: amplitude ratio of successive reverberation echoes (0 = none).
        sparse: bool, fewer than :data:`SPARSE_LIMIT` scatterers per resolution cell
            (pre-Rayleigh statistics: exact Poisson counts are drawn).
        blank: bool, samples not imaged (catheter, outside).
    """

    backscatter: torch.Tensor
    amplitude: torch.Tensor
    density_per_mm2: torch.Tensor
    texture_db: torch.Tensor
    texture_scale_mm: torch.Tensor
    alpha_np_per_mm: torch.Tensor
    surface_gain: torch.Tensor
    surface_depth_mm: torch.Tensor
    specular_amp: torch.Tensor
    shadow_np: torch.Tensor
    reverb_decay: torch.Tensor
    sparse: torch.Tensor
    blank: torch.Tensor

    @classmethod
    def build(cls, acoustics: TissueAcoustics, preset: Preset, device: str | torch.device = "cpu") -> TissueTable:
        f0 = preset.transducer.centre_frequency_mhz
        cols: dict[str, list[float]] = {k: [0.0] * 256 for k in (
            "backscatter", "density_per_mm2", "texture_db", "texture_scale_mm", "alpha_np_per_mm",
            "surface_gain", "surface_depth_mm", "specular_amp", "shadow_np", "reverb_decay")}
        cols["density_per_mm2"] = [1.0] * 256
        cols["texture_scale_mm"] = [1.0] * 256
        cols["surface_depth_mm"] = [1.0] * 256
        for t, info in TISSUES.items():
            if t == Tissue.OUTSIDE:
                continue
            p = acoustics.tissues[info.name]
            i = int(t)
            bsc_db = p.backscatter_db + 10 * p.frequency_exponent * math.log10(f0 / acoustics.reference_frequency_mhz)
            cols["backscatter"][i] = 10 ** (bsc_db / 10)
            cols["density_per_mm2"][i] = p.scatterer_density_per_mm2
            cols["texture_db"][i] = p.texture_db
            cols["texture_scale_mm"][i] = p.texture_scale_mm
            cols["alpha_np_per_mm"][i] = p.attenuation_db_per_mhz_cm * f0 / 10 * _DB_TO_NP
            cols["surface_gain"][i] = 10 ** (p.surface_db / 10) - 1
            cols["surface_depth_mm"][i] = p.surface_depth_mm
            cols["specular_amp"][i] = 10 ** (p.specular_db / 20) if p.specular else 0.0
            cols["shadow_np"][i] = p.shadow_db * _DB_TO_NP if p.shadow else 0.0
            cols["reverb_decay"][i] = p.reverberation_decay if p.specular else 0.0
        blank = torch.zeros(256, dtype=torch.bool)
        blank[int(Tissue.CATHETER)] = True
        blank[int(Tissue.OUTSIDE)] = True
        kw = {k: torch.tensor(v, dtype=torch.float32, device=device) for k, v in cols.items()}
        cell = resolution_cell_mm2(preset)
        sparse = kw["density_per_mm2"] * cell < SPARSE_LIMIT
        return cls(**kw, amplitude=kw["backscatter"].sqrt(), sparse=sparse, blank=blank.to(device))

    def texture_scales(self, present: torch.Tensor) -> list[float]:
        """Distinct texture scales [mm] of the tissues in ``present`` (ids) that have texture."""
        ids = present[self.texture_db[present.long()] > 0].long()
        return sorted({round(float(s), 6) for s in self.texture_scale_mm[ids].tolist()})
