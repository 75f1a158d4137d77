"""Presets as data: transducer presets and the tissue acoustics table (YAML).

Two kinds of YAML files, shipped in the ``ivus_sim.configs`` package (``configs/`` in the
repository) and also loadable from any user path:

* a **transducer preset** (``20mhz.yaml``, ``40mhz.yaml``): the probe, the beam, the receive
  chain and the display processing, loaded by :func:`load_preset` into a :class:`Preset`;
* the **tissue acoustics table** (``tissue_acoustics.yaml``): per tissue *name* (from
  :mod:`ivus_sim.tissues`) the backscatter, scatterer density, texture, attenuation and
  specular/shadow behaviour, loaded by :func:`load_tissue_acoustics` into a
  :class:`TissueAcoustics`.

Every field carries its unit in its name. A bad file raises :class:`IvusSimError` naming the
file and the offending field, e.g. ``20mhz.yaml: transducer.centre_frequency_mhz: expected a
number > 0, got 'abc'``.

>>> p = load_preset("20mhz")
>>> p.transducer.centre_frequency_mhz
20.0
>>> load_tissue_acoustics().tissue("dense_calcium").shadow
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ivus_sim.errors import IvusSimError
from ivus_sim.schema import bounds, build, load_yaml
from ivus_sim.tissues import TISSUES, Tissue

__all__ = [
    "Transducer",
    "Beam",
    "Processing",
    "RingDown",
    "Nurd",
    "Preset",
    "TissueProperties",
    "TissueAcoustics",
    "list_presets",
    "load_preset",
    "load_tissue_acoustics",
    "load_yaml",
]


def _num(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> dict[str, Any]:
    return bounds(lo, hi, lo_open=lo_open)


@dataclass(frozen=True)
class Transducer:
    """The probe and its RF sampling.

    Args:
        centre_frequency_mhz: centre frequency ``f0`` of the two-way pulse [MHz].
        fractional_bandwidth: -6 dB two-way bandwidth as a fraction of ``f0``.
        sampling_frequency_mhz: RF sampling rate [MHz]; sets the depth sample spacing
            ``c / (2 fs)`` (at least ``2 * f0 * (1 + fractional_bandwidth)``).
        n_angles: A-lines per revolution.
        speed_of_sound_m_s: speed of sound [m/s].
    """

    centre_frequency_mhz: float = field(metadata=_num(0, None, True))
    fractional_bandwidth: float = field(metadata=_num(0.05, 2.0))
    sampling_frequency_mhz: float = field(metadata=_num(0, None, True))
    n_angles: int = field(metadata=_num(16, 8192))
    speed_of_sound_m_s: float = field(default=1540.0, metadata=_num(1000, 2500))


@dataclass(frozen=True)
class Beam:
    """Lateral beam (Gaussian-beam optics of a focused circular aperture).

    The one-way beam radius is ``w(z) = w0 sqrt(1 + ((z - focus) / z_R)^2)`` with waist
    ``w0 = lambda F / (pi a)`` (``a`` = aperture radius, ``F`` = focal depth) and Rayleigh range
    ``z_R = pi w0^2 / lambda``; the two-way (pulse-echo) lateral profile is
    ``exp(-2 x^2 / w^2)``, i.e. a Gaussian of standard deviation ``w / 2``.

    The beam also sets the echo *sensitivity* along depth (diffraction, focal gain): the pulse-echo
    power from diffuse scatterers scales as ``(w0 / w(z))^n``, ``n = 2`` for a circular aperture
    (beam narrowing in the image plane and in elevation), ``n = 1`` for a line (2-D) beam, 0 = off.

    Args:
        aperture_mm: active aperture diameter [mm].
        focus_mm: focal depth from the catheter axis [mm].
        diffraction_exponent: exponent ``n`` of the focal-gain law.
    """

    aperture_mm: float = field(metadata=_num(0, None, True))
    focus_mm: float = field(metadata=_num(0, None, True))
    diffraction_exponent: float = field(default=2.0, metadata=_num(0, 4))


@dataclass(frozen=True)
class Processing:
    """Receive chain and display processing.

    Args:
        noise_db: electronic noise power, dB relative to a 0 dB-backscatter tissue echo.
        tgc_db_per_cm: time-gain compensation slope (amplitude gain per cm of depth) [dB/cm].
        tgc_start_mm: depth where the TGC ramp starts [mm from the axis].
        gain_db: overall receive gain [dB]; 0 dB envelope + gain maps to display white.
        dynamic_range_db: log-compression dynamic range [dB] (display black at ``-dynamic_range_db``).
    """

    noise_db: float = field(metadata=_num(-200, 100))
    tgc_db_per_cm: float = field(metadata=_num(-100, 200))
    tgc_start_mm: float = field(metadata=_num(0, None))
    gain_db: float = field(metadata=_num(-200, 200))
    dynamic_range_db: float = field(metadata=_num(1, 200))


@dataclass(frozen=True)
class RingDown:
    """Catheter ring-down: transducer ringing and sheath reverberation near the catheter.

    Modelled as a comb of reflectors starting at the catheter surface, ``spacing_mm`` apart,
    the ``k``-th of amplitude ``10^(amplitude_db/20) * exp(-k spacing / decay_mm)``, with a small
    per-A-line amplitude jitter (rotation-dependent coupling); the PSF turns the comb into the
    bright concentric rings seen in real catheters.

    Args:
        amplitude_db: amplitude of the first ring, dB relative to a 0 dB-backscatter echo.
        decay_mm: 1/e decay length of the ring amplitudes [mm].
        spacing_mm: distance between rings [mm].
        extent_mm: rings beyond this distance from the catheter surface are dropped [mm].
        jitter: relative standard deviation of the per-A-line amplitude.
    """

    amplitude_db: float = field(metadata=_num(-200, 200))
    decay_mm: float = field(metadata=_num(0, None, True))
    spacing_mm: float = field(metadata=_num(0, None, True))
    extent_mm: float = field(metadata=_num(0, None))
    jitter: float = field(metadata=_num(0, 1))


@dataclass(frozen=True)
class Nurd:
    """Non-uniform rotational distortion: a smooth random warp of the A-line angles.

    Args:
        enabled: apply it by default (``simulate(..., nurd=...)`` overrides).
        max_shift_deg: standard deviation of the angular displacement [degrees].
        harmonics: number of Fourier harmonics of the (periodic) displacement.
    """

    enabled: bool = False
    max_shift_deg: float = field(default=6.0, metadata=_num(0, 90))
    harmonics: int = field(default=3, metadata=_num(1, 32))


@dataclass(frozen=True)
class Preset:
    """A complete transducer preset (one YAML file).

    Args:
        name: preset name (file stem for shipped presets).
        description: one line for docs and sidecars.
        transducer, beam, processing, ringdown, nurd: see the classes.
    """

    name: str
    transducer: Transducer
    beam: Beam
    processing: Processing
    ringdown: RingDown
    nurd: Nurd = field(default_factory=Nurd)
    description: str = ""

    @property
    def wavelength_mm(self) -> float:
        """Wavelength at the centre frequency [mm]."""
        return self.transducer.speed_of_sound_m_s / (self.transducer.centre_frequency_mhz * 1e3)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "preset") -> Preset:
        return build(cls, d, source)


@dataclass(frozen=True)
class TissueProperties:
    """Acoustic properties of one tissue.

    Args:
        backscatter_db: mean backscattered power of the tissue at the reference frequency, dB
            relative to a 0 dB reference scatterer field (the envelope power of fully developed
            speckle without attenuation).
        frequency_exponent: backscatter power scales as ``(f0 / reference_frequency_mhz)^n``
            (``n = 4`` for Rayleigh scatterers such as red cells, ~1-2 for soft tissue).
        scatterer_density_per_mm2: scatterers per mm^2 of cross-section; many per resolution cell
            gives fully developed (Rayleigh) speckle, few gives pre-Rayleigh texture.
        texture_db: standard deviation [dB] of a smooth log-normal modulation of backscatter
            (tissue heterogeneity: fat lobules, fibres); 0 = homogeneous.
        texture_scale_mm: correlation length of that modulation [mm].
        attenuation_db_per_mhz_cm: one-way attenuation slope [dB/(MHz cm)].
        surface_db: extra backscatter [dB] of a layer at the tissue's leading surface (e.g. the
            collagen-rich adventitia just outside the external elastic membrane), decaying as
            ``exp(-d / surface_depth_mm)`` with the depth ``d`` into the tissue along the A-line.
        surface_depth_mm: 1/e thickness of that layer [mm].
        specular: the tissue's leading surface gives a coherent specular echo.
        specular_db: amplitude of that echo, dB relative to a 0 dB-backscatter echo.
        shadow: the tissue's surface blocks transmission (acoustic shadow behind it).
        shadow_db: one-way transmission loss at the surface [dB] when ``shadow``.
        reverberation_decay: amplitude ratio between successive reverberation echoes at
            multiples of the layer thickness behind a specular surface (0 = none).
    """

    backscatter_db: float = field(metadata=_num(-200, 100))
    frequency_exponent: float = field(metadata=_num(0, 6))
    scatterer_density_per_mm2: float = field(metadata=_num(0, None, True))
    attenuation_db_per_mhz_cm: float = field(metadata=_num(0, 1000))
    texture_db: float = field(default=0.0, metadata=_num(0, 40))
    texture_scale_mm: float = field(default=0.3, metadata=_num(0, None, True))
    surface_db: float = field(default=0.0, metadata=_num(-60, 60))
    surface_depth_mm: float = field(default=0.3, metadata=_num(0, None, True))
    specular: bool = False
    specular_db: float = field(default=0.0, metadata=_num(-200, 100))
    shadow: bool = False
    shadow_db: float = field(default=0.0, metadata=_num(0, 300))
    reverberation_decay: float = field(default=0.0, metadata=_num(0, 0.999))


@dataclass(frozen=True)
class TissueAcoustics:
    """The per-tissue acoustics table, keyed by tissue name.

    Args:
        reference_frequency_mhz: frequency at which ``backscatter_db`` is given [MHz].
        tissues: tissue name -> :class:`TissueProperties` (every tissue of
            :data:`ivus_sim.tissues.TISSUES` except ``outside``).
    """

    reference_frequency_mhz: float = field(metadata=_num(0, None, True))
    tissues: dict[str, TissueProperties] = field(default_factory=dict)

    def tissue(self, name_or_id: str | int) -> TissueProperties:
        """Properties of a tissue given by name or id."""
        name = TISSUES[Tissue(name_or_id)].name if isinstance(name_or_id, int) else name_or_id
        return self.tissues[name]

    def to_dict(self) -> dict[str, Any]:
        return {"reference_frequency_mhz": self.reference_frequency_mhz,
                "tissues": {k: dataclasses.asdict(v) for k, v in self.tissues.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "tissue acoustics") -> TissueAcoustics:
        tab = d.get("tissues") if isinstance(d, dict) else None
        if isinstance(tab, dict):
            needed = [i.name for t, i in TISSUES.items() if t != Tissue.OUTSIDE]
            for name in tab:
                if name not in needed:
                    raise IvusSimError(f"{source}: tissues.{name}: unknown tissue name; known: {', '.join(needed)}")
            missing = [n for n in needed if n not in tab]
            if missing:
                raise IvusSimError(f"{source}: tissues.{missing[0]}: missing (every tissue needs an entry)")
        elif isinstance(d, dict) and not (set(d) - {"reference_frequency_mhz", "tissues"}):
            raise IvusSimError(f"{source}: tissues: expected a mapping of tissue name -> properties")
        return build(cls, d, source)


# --------------------------------------------------------------------------- loading


def _shipped(name: str) -> Path | None:
    res = resources.files("ivus_sim.configs").joinpath(f"{name}.yaml")
    return Path(str(res)) if res.is_file() else None


def list_presets() -> list[str]:
    """Names of the shipped transducer presets."""
    root = resources.files("ivus_sim.configs")
    return sorted(p.name[:-5] for p in root.iterdir()
                  if p.name.endswith(".yaml") and p.name[0].isdigit())


def load_preset(name_or_path: str | Path = "20mhz") -> Preset:
    """Load a transducer preset by shipped name (``"20mhz"``, ``"40mhz"``) or from a YAML path."""
    s = str(name_or_path)
    path = _shipped(s) if not s.endswith((".yaml", ".yml")) else None
    if path is None:
        path = Path(s)
        if not path.is_file():
            raise IvusSimError(f"unknown preset {s!r}: not a shipped preset ({', '.join(list_presets())}) "
                               "and not a YAML file")
    data = load_yaml(path)
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": path.stem}
    return build(Preset, data, path.name)


def load_tissue_acoustics(path: str | Path | None = None) -> TissueAcoustics:
    """Load the tissue acoustics table (the shipped one when ``path`` is None)."""
    p = _shipped("tissue_acoustics") if path is None else Path(path)
    if p is None:
        raise IvusSimError("shipped tissue_acoustics.yaml is missing from ivus_sim.configs")
    return TissueAcoustics.from_dict(load_yaml(p), p.name)
