"""Scanner randomisation for ``ivus-sim augment --randomise`` (domain randomisation).

Every output ``i`` of a run draws its own *scanner* from ``rng(seed, "augment-scanner", i)``
within a set of :class:`ScannerRanges`: the draw is a plain JSON dict (:func:`sample_scanner`,
recorded in the case's sidecar under ``"scanner"``) and is then applied deterministically:

* **physics engine** (:func:`physics_setup`): the dict becomes a transducer
  :class:`~ivus_sim.config.Preset` and a tissue-acoustics table for that one image: centre
  frequency (the tissue table then sets its attenuation and backscatter, so blood, a Rayleigh
  scatterer, is dark at 20 MHz and speckled from ~40 MHz), bandwidth, aperture and focus (the
  PSF), A-lines, gain, dynamic range, TGC, noise floor, ring-down, NURD, plus a blood
  echogenicity offset and small per-tissue backscatter offsets;
* **learned engine** (:func:`learned_display`): the model's own latent code, drawn from its
  prior and scaled by ``z_scale`` (z1 anatomy-independent appearance, z2 speckle/scanner
  style), then the same display chain applied to its output: gain, dynamic range, TGC, noise
  floor and NURD. The learned model has no centre frequency to change (it renders the scanner it
  was trained on; its z2 style is the nearest knob);
* **both**: the field of view and the catheter radius of the random phantom (user phantoms keep
  their own geometry).

The named default range is ``scanner``, a wider one ``wide`` (:data:`BUILTIN_RANGES`); a YAML file sets your own
(:func:`load_ranges`; unknown or bad fields are one-line errors)::

    name: my-scanners          # recorded in sidecars
    base: scanner              # start from a named range (optional, default: scanner)
    centre_frequency_mhz: [30, 45]
    p_nurd: 0.0

>>> r = BUILTIN_RANGES["scanner"]
>>> s = sample_scanner(0, 7, r)
>>> s == sample_scanner(0, 7, r), 20.0 <= s["centre_frequency_mhz"] <= 60.0
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import rng

__all__ = ["ScannerRanges", "BUILTIN_RANGES", "load_ranges", "sample_scanner", "physics_setup", "settings_outside",
           "frequency_matched_base",
           "learned_display", "SCANNER_VERSION", "JITTER_TISSUES"]

#: bump when the meaning of a sampled value or the way it is applied changes
SCANNER_VERSION = 1

Range = tuple[float, float]

#: tissues whose backscatter gets a random offset (blood has its own, ``blood_offset_db``)
JITTER_TISSUES = ("perivascular", "fibrous", "fibro_fatty", "necrotic_core", "dense_calcium", "media")

# hard limits of each range field (what the engine can render sensibly)
_LIMITS: dict[str, tuple[float, float]] = {
    "centre_frequency_mhz": (5.0, 80.0),
    "fractional_bandwidth": (0.1, 1.5),
    "aperture_mm": (0.1, 1.5),
    "focus_mm": (0.3, 6.0),
    "n_angles": (64, 2048),
    "gain_offset_db": (-40.0, 40.0),
    "dynamic_range_db": (10.0, 120.0),
    "tgc_db_per_cm": (-20.0, 60.0),
    "noise_offset_db": (-40.0, 40.0),
    "blood_offset_db": (-30.0, 30.0),
    "tissue_jitter_db": (0.0, 10.0),
    "catheter_radius_mm": (0.2, 1.2),
    "ringdown_amplitude_db": (-20.0, 40.0),
    "ringdown_extent_mm": (0.0, 1.5),
    "nurd_max_shift_deg": (0.0, 30.0),
    "fov_mm": (4.0, 20.0),
    "z_scale": (0.0, 3.0),
}


@dataclass(frozen=True)
class ScannerRanges:
    """Ranges the per-image scanner is drawn from (uniform in ``[low, high]``).

    The defaults (the named range ``scanner``) span rotational coronary IVUS catheters from 20
    to 60 MHz. Processing settings follow the centre frequency: the base gain, noise floor and
    ring-down are interpolated between the shipped ``20mhz`` and ``40mhz`` presets (held at the
    40 MHz values above 40 MHz) and the ``*_offset_db`` fields are added on top; the TGC slope
    adds ``0.75 dB/cm`` per MHz above 20 MHz (higher frequencies attenuate more).

    Args:
        name: recorded in every sidecar.
        centre_frequency_mhz: transducer centre frequency; sampling at 4x.
        fractional_bandwidth: -6 dB two-way bandwidth (axial PSF).
        aperture_mm, focus_mm: aperture and focal depth (lateral PSF).
        n_angles: A-lines per revolution (rounded to a multiple of 32).
        gain_offset_db: receive gain added to the frequency-matched base gain.
        dynamic_range_db: log-compression dynamic range.
        tgc_db_per_cm: time-gain compensation slope (plus the frequency term above).
        noise_offset_db: receiver noise floor added to the frequency-matched base floor.
        blood_offset_db: blood backscatter offset on top of its f^4 law (echogenic blood,
            e.g. slow flow / rouleaux).
        tissue_jitter_db: standard deviation of per-tissue backscatter offsets (plaque and wall
            tissues; one sd drawn per image, then one offset per tissue).
        catheter_radius_mm: catheter radius (random phantoms only).
        ringdown_amplitude_db, ringdown_extent_mm: catheter ring-down strength and reach.
        p_nurd: probability of non-uniform rotational distortion; ``nurd_max_shift_deg`` its size.
        fov_mm: field-of-view diameter (random phantoms only): small ones cut large vessels.
        z_scale: learned engine: scale of the latent draws (1 = the prior).
    """

    name: str = "scanner"
    centre_frequency_mhz: Range = (20.0, 60.0)
    fractional_bandwidth: Range = (0.25, 0.8)
    aperture_mm: Range = (0.3, 0.6)
    focus_mm: Range = (1.0, 4.0)
    n_angles: Range = (256.0, 512.0)
    gain_offset_db: Range = (-8.0, 8.0)
    dynamic_range_db: Range = (35.0, 75.0)
    tgc_db_per_cm: Range = (0.0, 10.0)
    noise_offset_db: Range = (-10.0, 10.0)
    blood_offset_db: Range = (-6.0, 6.0)
    tissue_jitter_db: Range = (0.0, 3.0)
    catheter_radius_mm: Range = (0.45, 0.7)
    ringdown_amplitude_db: Range = (0.0, 28.0)
    ringdown_extent_mm: Range = (0.15, 0.7)
    p_nurd: float = 0.5
    nurd_max_shift_deg: Range = (1.0, 12.0)
    fov_mm: Range = (8.0, 12.0)
    z_scale: Range = (0.5, 1.5)

    def __post_init__(self) -> None:
        _validate(self, "ScannerRanges")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()} | {"version": SCANNER_VERSION}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "scanner ranges") -> ScannerRanges:
        """Build from a mapping (a YAML file or a sidecar record); one-line errors name the field."""
        if not isinstance(d, dict):
            raise IvusSimError(f"{source}: expected a mapping of field: [low, high]")
        d = dict(d)
        d.pop("version", None)
        base_name = d.pop("base", "scanner")
        if base_name not in BUILTIN_RANGES:
            raise IvusSimError(f"{source}: base: unknown named range {base_name!r}; known: {', '.join(BUILTIN_RANGES)}")
        if "name" in d and (not isinstance(d["name"], str) or not d["name"]):
            raise IvusSimError(f"{source}: name: expected a non-empty string, got {d['name']!r}")
        if "p_nurd" in d and _is_num(d["p_nurd"]) and not 0.0 <= float(d["p_nurd"]) <= 1.0:
            raise IvusSimError(f"{source}: p_nurd: expected a probability in [0, 1], got {d['p_nurd']!r}")
        # a single number means a fixed value: [v, v]
        d = {k: ([v, v] if k not in ("name", "p_nurd") and _is_num(v) else v) for k, v in d.items()}
        from ivus_sim.schema import build

        return build(cls, {**_fields_of(BUILTIN_RANGES[base_name]), **d}, source)


def _fields_of(r: ScannerRanges) -> dict[str, Any]:
    return {f.name: getattr(r, f.name) for f in fields(r)}


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def _validate(r: ScannerRanges, source: str) -> None:
    for f in fields(r):
        v = getattr(r, f.name)
        if f.name in _LIMITS:
            lo, hi = _LIMITS[f.name]
            if v[0] > v[1]:
                raise IvusSimError(f"{f.name}: low {v[0]:g} > high {v[1]:g}")
            if v[0] < lo or v[1] > hi:
                raise IvusSimError(f"{f.name}: [{v[0]:g}, {v[1]:g}] outside the supported [{lo:g}, {hi:g}]")


#: named ranges (``--randomise NAME``): ``scanner``, rotational coronary catheters 20-60 MHz (the
#: default); ``wide``, beyond them in every scanner setting (12-65 MHz, 25-90 dB displays, ...), for
#: a scanner you cannot place: in the segmentation benchmark (``benchmarks/RESULTS.md``, rounds 5
#: and 6) its frames alone met Dice 0.90 / 0.80 on three of four test scanners outside it, where
#: ``scanner`` had failed on the development scanners E and G
BUILTIN_RANGES: dict[str, ScannerRanges] = {
    "scanner": ScannerRanges(),
    "wide": ScannerRanges(
        name="wide", centre_frequency_mhz=(12.0, 65.0), fractional_bandwidth=(0.15, 1.0), aperture_mm=(0.25, 0.85),
        focus_mm=(0.6, 5.5), n_angles=(256.0, 1024.0), gain_offset_db=(-14.0, 14.0), dynamic_range_db=(25.0, 90.0),
        tgc_db_per_cm=(-6.0, 12.0), noise_offset_db=(-35.0, 15.0), ringdown_amplitude_db=(0.0, 32.0),
        ringdown_extent_mm=(0.1, 1.0), nurd_max_shift_deg=(1.0, 20.0)),
}


def load_ranges(name_or_path: str | Path) -> ScannerRanges:
    """A named range (``scanner``) or a YAML file of ranges (see the module docstring)."""
    s = str(name_or_path)
    if s in BUILTIN_RANGES:
        return BUILTIN_RANGES[s]
    if not s.endswith((".yaml", ".yml", ".json")):
        raise IvusSimError(f"--randomise {s!r}: not a named range ({', '.join(BUILTIN_RANGES)}) nor a YAML file")
    from ivus_sim.config import load_yaml

    p = Path(s)
    data = load_yaml(p)
    if data is None:
        data = {}
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": p.stem}
    return ScannerRanges.from_dict(data, p.name)


# ------------------------------------------------------------------------------------ sampling


def frequency_matched_base(f0_mhz: float) -> tuple[float, float, float]:
    """``(gain_db, noise_db, tgc_db_per_cm)`` a scanner at ``f0_mhz`` starts from, before offsets.

    Gain and noise floor are interpolated between the shipped 20 and 40 MHz presets (held outside
    20-40 MHz); the TGC slope gains 0.75 dB/cm per MHz above 20 MHz (attenuation grows with f).
    """
    t = min(max((f0_mhz - 20.0) / 20.0, 0.0), 1.0)
    return -13.8 + t * (-4.0 + 13.8), -29.0 + t * (-60.0 + 29.0), 0.75 * max(f0_mhz - 20.0, 0.0)


def settings_outside(preset: Any, ranges: ScannerRanges) -> dict[str, tuple[float, Range]]:
    """The settings of a physics preset that ``ranges`` cannot draw: ``{field: (value, (low, high))}``.

    How a test scanner is kept out of the randomisation it is meant to test (benchmarks'
    hidden scanners): a preset's gain, noise floor and TGC are compared as offsets from
    :func:`frequency_matched_base`, as the ranges define them; NURD counts only when enabled.
    Tissue settings (blood offset, jitter) and the phantom's catheter and field of view are not
    preset fields and are not compared.

    Args:
        preset: a :class:`ivus_sim.config.Preset`.
        ranges: the randomisation ranges.
    """
    f0 = float(preset.transducer.centre_frequency_mhz)
    gain0, noise0, tgc0 = frequency_matched_base(f0)
    values: dict[str, float] = {
        "centre_frequency_mhz": f0,
        "fractional_bandwidth": float(preset.transducer.fractional_bandwidth),
        "aperture_mm": float(preset.beam.aperture_mm),
        "focus_mm": float(preset.beam.focus_mm),
        "n_angles": float(preset.transducer.n_angles),
        "gain_offset_db": float(preset.processing.gain_db) - gain0,
        "dynamic_range_db": float(preset.processing.dynamic_range_db),
        "tgc_db_per_cm": float(preset.processing.tgc_db_per_cm) - tgc0,
        "noise_offset_db": float(preset.processing.noise_db) - noise0,
        "ringdown_amplitude_db": float(preset.ringdown.amplitude_db),
        "ringdown_extent_mm": float(preset.ringdown.extent_mm),
    }
    if preset.nurd.enabled:
        values["nurd_max_shift_deg"] = float(preset.nurd.max_shift_deg)
    out: dict[str, tuple[float, Range]] = {}
    for name, v in values.items():
        lo, hi = getattr(ranges, name)
        if not lo - 1e-9 <= v <= hi + 1e-9:
            out[name] = (v, (lo, hi))
    return out


def sample_scanner(seed: int, index: int, ranges: ScannerRanges) -> dict[str, Any]:
    """The scanner of output ``index`` (JSON-able; the draw order is fixed and engine-independent)."""
    g = rng(seed, "augment-scanner", index)

    def u(r: Range) -> float:
        return float(g.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])

    f0 = u(ranges.centre_frequency_mhz)
    base_gain, base_noise, base_tgc = frequency_matched_base(f0)
    out: dict[str, Any] = {
        "version": SCANNER_VERSION,
        "ranges": ranges.name,
        "centre_frequency_mhz": f0,
        "fractional_bandwidth": u(ranges.fractional_bandwidth),
        "aperture_mm": u(ranges.aperture_mm),
        "focus_mm": u(ranges.focus_mm),
        "n_angles": int(32 * round(u(ranges.n_angles) / 32)),
        "gain_db": base_gain + u(ranges.gain_offset_db),
        "dynamic_range_db": u(ranges.dynamic_range_db),
        "tgc_db_per_cm": u(ranges.tgc_db_per_cm) + base_tgc,
        "noise_db": base_noise + u(ranges.noise_offset_db),
        "blood_offset_db": u(ranges.blood_offset_db),
    }
    sd = u(ranges.tissue_jitter_db)
    out["tissue_offsets_db"] = {name: float(sd * g.normal()) for name in JITTER_TISSUES}
    out["catheter_radius_mm"] = u(ranges.catheter_radius_mm)
    out["ringdown_amplitude_db"] = u(ranges.ringdown_amplitude_db)
    out["ringdown_extent_mm"] = u(ranges.ringdown_extent_mm)
    nurd_on = bool(g.random() < ranges.p_nurd)
    shift = u(ranges.nurd_max_shift_deg)
    out["nurd_max_shift_deg"] = shift if nurd_on else 0.0
    out["fov_mm"] = u(ranges.fov_mm)
    out["z_scale"] = u(ranges.z_scale)
    return out


# ------------------------------------------------------------------------------------ physics


def physics_setup(scanner: dict[str, Any]) -> tuple[Any, Any]:
    """``(Preset, TissueAcoustics)`` of a sampled scanner (physics engine)."""
    from ivus_sim.config import Preset, TissueAcoustics, load_preset, load_tissue_acoustics

    try:
        f0 = float(scanner["centre_frequency_mhz"])
        t = min(max((f0 - 20.0) / 20.0, 0.0), 1.0)
        p20 = load_preset("20mhz").to_dict()
        p40 = load_preset("40mhz").to_dict()
        d = p20
        d["name"] = f"randomised-{f0:.1f}mhz"
        d["description"] = f"scanner drawn from the {scanner.get('ranges', '?')} ranges (ivus_sim.augment.randomise)"
        d["transducer"].update(centre_frequency_mhz=f0, fractional_bandwidth=float(scanner["fractional_bandwidth"]),
                               sampling_frequency_mhz=4.0 * f0, n_angles=int(scanner["n_angles"]))
        d["beam"].update(aperture_mm=float(scanner["aperture_mm"]), focus_mm=float(scanner["focus_mm"]))
        d["processing"].update(noise_db=float(scanner["noise_db"]), tgc_db_per_cm=float(scanner["tgc_db_per_cm"]),
                               gain_db=float(scanner["gain_db"]),
                               dynamic_range_db=float(scanner["dynamic_range_db"]))
        r20, r40 = p20["ringdown"], p40["ringdown"]
        d["ringdown"].update(amplitude_db=float(scanner["ringdown_amplitude_db"]),
                             extent_mm=float(scanner["ringdown_extent_mm"]),
                             decay_mm=r20["decay_mm"] + t * (r40["decay_mm"] - r20["decay_mm"]),
                             spacing_mm=r20["spacing_mm"] + t * (r40["spacing_mm"] - r20["spacing_mm"]))
        shift = float(scanner["nurd_max_shift_deg"])
        d["nurd"].update(enabled=shift > 0, max_shift_deg=shift if shift > 0 else d["nurd"]["max_shift_deg"])
        preset = Preset.from_dict(d, "randomised scanner")
        ac = load_tissue_acoustics().to_dict()
        ac["tissues"]["lumen"]["backscatter_db"] += float(scanner["blood_offset_db"])
        for name, off in scanner["tissue_offsets_db"].items():
            ac["tissues"][name]["backscatter_db"] += float(off)
        acoustics = TissueAcoustics.from_dict(ac, "randomised acoustics")
    except (KeyError, TypeError, ValueError) as e:
        raise IvusSimError(f"scanner record is incomplete or malformed: {e}") from None
    return preset, acoustics


# ------------------------------------------------------------------------------------ learned

#: display settings the learned default model was trained with (the 20 MHz physics corpus)
_LEARNED_DR_DB = 46.0


def learned_display(image: np.ndarray, scanner: dict[str, Any], seed: int, index: int,
                    fov_mm: float) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Apply a sampled scanner's display chain to a learned-engine image (uint8 ``(N, N)``).

    The input display value ``d`` is read as ``(d - 1) * 46 dB`` re white (the model's training
    dynamic range); the drawn gain offset (re the 20 MHz base gain) and TGC are added, the drawn
    noise floor is added in power (Rayleigh-distributed, from ``rng(seed, "augment-display",
    index)``), the result is log-compressed with the drawn dynamic range, and NURD warps the
    angles. Pixels outside the field of view stay 0.

    Returns:
        ``(display image (N, N) uint8, the NURD warp applied or None)``; warp the label map with
        the same coefficients (:func:`ivus_sim.physics.nurd.warp_cartesian`).
    """
    from ivus_sim.geometry import radius_map
    from ivus_sim.physics.nurd import warp_cartesian

    n = image.shape[-1]
    g = rng(seed, "augment-display", index)
    d = image.astype(np.float64) / 255.0
    rad = radius_map(n)
    inside = rad <= 1.0
    level = (d - 1.0) * _LEARNED_DR_DB + (float(scanner["gain_db"]) + 13.8)
    r_mm = rad * fov_mm / 2
    level = level + float(scanner["tgc_db_per_cm"]) * np.clip(r_mm - 1.0, 0.0, None) / 10.0
    power = 10.0 ** (level / 10.0) * (d > 0)
    noise_level = float(scanner["noise_db"]) + float(scanner["gain_db"])
    noise = 10.0 ** (noise_level / 10.0) * (g.standard_normal((n, n)) ** 2 + g.standard_normal((n, n)) ** 2) / 2
    power = power + noise * (d > 0)
    dr = float(scanner["dynamic_range_db"])
    out = np.clip(1.0 + 10.0 * np.log10(np.maximum(power, 1e-30)) / dr, 0.0, 1.0)
    out = np.where(d > 0, out, 0.0)
    shift = float(scanner["nurd_max_shift_deg"])
    coeffs = _nurd_coeffs(shift, g) if shift > 0 else None
    out = warp_cartesian(out, coeffs, order=1)
    out = np.where(inside, out, 0.0)
    return np.asarray(np.round(out * 255.0), dtype=np.uint8), coeffs


def _nurd_coeffs(max_shift_deg: float, g: np.random.Generator) -> dict[str, Any]:
    """A NURD warp for the learned engine's display (same law as the physics engine's)."""
    from ivus_sim.config import Nurd
    from ivus_sim.physics.nurd import sample_nurd

    return sample_nurd(Nurd(enabled=True, max_shift_deg=max_shift_deg, harmonics=3), g)
