"""Procedural random phantoms: anatomically plausible coronary cross-sections.

Randomness is *sampled first* into a :class:`PhantomParams` (every number recorded, JSON-able)
from ``ivus_sim.seeding.rng(seed, "phantom", index)``, then *rendered deterministically* in
millimetres by :func:`render_params`, so

* the same ``(seed, index)`` gives the same label map bit for bit,
* ``phantom.meta["params"]`` regenerates it (:func:`phantom_from_meta`), and
* a 64 px and a 256 px phantom of the same seed show the same anatomy (only the raster differs).

Anatomy (all lengths in mm, angles in degrees):

* external elastic membrane (EEM): a smooth, slightly elliptical closed curve (mean radius
  ``eem_radius_mm``) star-shaped about the vessel centre ``V``; the **media** is a thin ring just
  inside it (``media_thickness_mm``, at least one pixel wide), **interrupted** over
  ``media_gaps`` (arcs behind thick plaque where the media is not seen; plaque reaches the EEM
  there); **perivascular** tissue outside. Large vessels (and small fields of view) are cut by
  the edge of the field of view;
* **lumen**: a smooth, roughly elliptical curve star-shaped about its own centre ``L``, sized by
  the plaque burden ``1 - lumen area / EEM area``; ``L`` is offset from ``V`` by
  ``plaque_eccentricity`` of the largest offset that keeps ``min_intima_mm`` of intima
  everywhere, giving concentric (0) to crescent-shaped (~1) plaque;
* plaque (between lumen and media) is **fibrous**, with lens-shaped **fibro-fatty** patches and
  **necrotic-core** pools at a given relative depth, and **dense-calcium** arcs of 20-180 degrees
  at a relative depth (superficial to deep) and thickness in mm;
* the **catheter** (radius from :class:`~ivus_sim.geometry.Geometry`) sits at the image centre,
  always inside the lumen with a margin (the vessel is placed around it);
* optional **guidewire** (a small disc in the lumen beside the catheter), **stent struts**
  (small rectangles evenly spaced at the lumen border) and a **side branch** (a lumen channel
  through the wall into the perivascular tissue).

>>> p = random_phantom(0, size=64)
>>> p.labels.shape, p.meta["seed"]
((1, 64, 64), 0)
>>> bool((random_phantom(0, size=64).labels == p.labels).all())
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import DEFAULT_CATHETER_RADIUS_MM, DEFAULT_FOV_MM, Geometry
from ivus_sim.phantom.phantom import Phantom, finalise_labels
from ivus_sim.seeding import rng
from ivus_sim.tissues import Tissue

__all__ = [
    "RandomPhantomConfig",
    "PhantomParams",
    "CalciumArc",
    "PlaqueLens",
    "Guidewire",
    "Stent",
    "SideBranch",
    "MediaGap",
    "sample_params",
    "render_params",
    "random_phantom",
    "phantom_from_meta",
    "phantom_statistics",
    "GENERATOR_NAME",
    "PARAMS_VERSION",
]

GENERATOR_NAME = "ivus_sim.phantom.random_phantom"
#: bump when the meaning of a parameter or the renderer changes (old sidecars then refuse to regenerate)
PARAMS_VERSION = 2

_N_TABLE = 720  # angular samples of the boundary tables
_TWO_PI = 2 * math.pi

Range = tuple[float, float]


@dataclass(frozen=True)
class RandomPhantomConfig:
    """Ranges the random phantom parameters are drawn from (uniform unless stated).

    Lengths in mm, angles in degrees, probabilities in [0, 1]. Defaults give 20 MHz coronary
    cross-sections at the default 10 mm field of view.

    Args:
        eem_radius_mm: mean radius of the external elastic membrane.
        eem_ellipticity: relative amplitude of the elliptical (2nd harmonic) EEM deformation.
        roughness: relative amplitude of the smooth boundary ripple (harmonics 3-6).
        plaque_burden: 1 - lumen area / EEM area.
        plaque_eccentricity: lumen-centre offset as a fraction of the largest offset that keeps
            ``min_intima_mm`` of intima everywhere (0 = concentric plaque, ~1 = crescent).
        lumen_ellipticity: relative amplitude of the elliptical (2nd harmonic) lumen deformation.
        min_intima_mm: thinnest intima (at the plaque's thin side).
        media_thickness_mm: thickness of the media ring.
        min_lumen_radius_mm: the lumen always contains a disc of this radius about its centre.
        catheter_margin_mm: clearance between the catheter and the lumen border.
        p_calcium: probability that a phantom has calcium; then 1..``max_calcium_arcs`` arcs.
        calcium_arc_deg: angular extent of one calcium arc.
        calcium_thickness_mm: radial thickness of an arc (clipped to the plaque).
        calcium_depth: relative depth of the arc centre in the plaque (0 = lumen side, 1 = media side).
        p_necrotic_core: probability of necrotic core; then 1..``max_necrotic_pools`` pools.
        necrotic_arc_deg / necrotic_depth / necrotic_half_thickness: lens extent (degrees), centre
            depth and half-thickness, both relative to the local plaque thickness.
        p_fibro_fatty, max_fibro_fatty, fibro_fatty_arc_deg, fibro_fatty_depth,
            fibro_fatty_half_thickness: the same for fibro-fatty patches.
        p_guidewire: probability of a guidewire; ``guidewire_radius_mm`` its radius (0.014" wire).
        guidewire_gap_mm: gap between catheter and guidewire.
        p_stent: probability of a stent; ``stent_struts`` number of struts (inclusive integer range);
            ``strut_thickness_mm`` radial, ``strut_width_mm`` tangential size.
        p_side_branch: probability of a side branch; ``side_branch_width_mm`` its channel width and
            ``side_branch_extent_mm`` how far it reaches beyond the EEM.
        p_media_gap: probability that the media is interrupted; then 1..``max_media_gaps`` gaps of
            ``media_gap_arc_deg`` (centred near the thick side of the plaque).
    """

    eem_radius_mm: Range = (2.1, 4.4)
    eem_ellipticity: Range = (0.0, 0.12)
    roughness: Range = (0.0, 0.03)
    plaque_burden: Range = (0.2, 0.85)
    plaque_eccentricity: Range = (0.0, 0.95)
    lumen_ellipticity: Range = (0.0, 0.15)
    min_intima_mm: Range = (0.05, 0.2)
    media_thickness_mm: Range = (0.06, 0.25)
    min_lumen_radius_mm: float = 0.85
    catheter_margin_mm: float = 0.08
    p_calcium: float = 0.55
    max_calcium_arcs: int = 2
    calcium_arc_deg: Range = (20.0, 180.0)
    calcium_thickness_mm: Range = (0.15, 0.6)
    calcium_depth: Range = (0.1, 0.9)
    p_necrotic_core: float = 0.5
    max_necrotic_pools: int = 2
    necrotic_arc_deg: Range = (30.0, 120.0)
    necrotic_depth: Range = (0.4, 0.75)
    necrotic_half_thickness: Range = (0.1, 0.25)
    p_fibro_fatty: float = 0.5
    max_fibro_fatty: int = 3
    fibro_fatty_arc_deg: Range = (20.0, 90.0)
    fibro_fatty_depth: Range = (0.25, 0.75)
    fibro_fatty_half_thickness: Range = (0.08, 0.22)
    p_guidewire: float = 0.5
    guidewire_radius_mm: float = 0.178
    guidewire_gap_mm: Range = (0.03, 0.4)
    p_stent: float = 0.2
    stent_struts: tuple[int, int] = (6, 12)
    strut_thickness_mm: Range = (0.08, 0.12)
    strut_width_mm: Range = (0.15, 0.3)
    p_side_branch: float = 0.15
    side_branch_width_mm: Range = (1.0, 2.0)
    side_branch_extent_mm: Range = (0.2, 0.8)
    p_media_gap: float = 0.35
    max_media_gaps: int = 2
    media_gap_arc_deg: Range = (20.0, 90.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("p_") and not 0.0 <= v <= 1.0:
                raise IvusSimError(f"RandomPhantomConfig.{f.name} must be a probability in [0, 1], got {v}")
            if isinstance(v, tuple) and (len(v) != 2 or v[0] > v[1]):
                raise IvusSimError(f"RandomPhantomConfig.{f.name} must be a (low, high) range, got {v}")
        if self.min_lumen_radius_mm < DEFAULT_CATHETER_RADIUS_MM + self.catheter_margin_mm:
            raise IvusSimError("RandomPhantomConfig.min_lumen_radius_mm must exceed the catheter radius "
                               f"({DEFAULT_CATHETER_RADIUS_MM} mm) plus catheter_margin_mm")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "random-phantom config") -> RandomPhantomConfig:
        """Build from a mapping through :func:`ivus_sim.schema.build` (types, unknown keys, one-line errors)."""
        from ivus_sim.schema import build

        return build(cls, d, source)


@dataclass(frozen=True)
class CalciumArc:
    """A dense-calcium arc: centre angle and extent [deg], relative depth, thickness [mm]."""

    angle_deg: float
    arc_deg: float
    depth: float
    thickness_mm: float


@dataclass(frozen=True)
class PlaqueLens:
    """A lens-shaped plaque component (necrotic core pool or fibro-fatty patch).

    ``depth`` and ``half_thickness`` are relative to the local plaque thickness.
    """

    angle_deg: float
    arc_deg: float
    depth: float
    half_thickness: float


@dataclass(frozen=True)
class Guidewire:
    """Guidewire disc: centre relative to the catheter axis [mm] (x = +column, y = +row), radius [mm]."""

    x_mm: float
    y_mm: float
    radius_mm: float


@dataclass(frozen=True)
class Stent:
    """Evenly spaced struts at the lumen border: count, first angle [deg], size [mm], embedding.

    ``embed`` shifts the strut centre from the lumen border into the wall, in strut thicknesses.
    """

    n_struts: int
    phase_deg: float
    thickness_mm: float
    width_mm: float
    embed: float


@dataclass(frozen=True)
class SideBranch:
    """A lumen channel from the vessel centre at ``angle_deg`` through the wall, ``extent_mm`` past the EEM."""

    angle_deg: float
    width_mm: float
    extent_mm: float


@dataclass(frozen=True)
class MediaGap:
    """An arc (about the vessel centre) where the media ring is replaced by fibrous plaque."""

    angle_deg: float
    arc_deg: float


@dataclass(frozen=True)
class PhantomParams:
    """Every sampled number of one random phantom (mm / degrees); rendering is deterministic.

    Positions are relative to the catheter axis (x = +column, y = +row, mm). The EEM is
    star-shaped about ``vessel_centre_mm``, the lumen about ``lumen_centre_mm``; plaque
    components, stent struts and the side branch are placed by angle about the lumen centre.
    Boundary harmonics are ``[k, relative amplitude, phase_deg]``.
    """

    vessel_centre_mm: tuple[float, float]
    lumen_centre_mm: tuple[float, float]
    eem_radius_mm: float
    eem_harmonics: list[list[float]]
    media_thickness_mm: float
    lumen_radius_mm: float
    lumen_harmonics: list[list[float]]
    min_intima_mm: float
    plaque_burden: float
    plaque_eccentricity: float
    plaque_angle_deg: float
    calcium: list[CalciumArc] = field(default_factory=list)
    necrotic_core: list[PlaqueLens] = field(default_factory=list)
    fibro_fatty: list[PlaqueLens] = field(default_factory=list)
    guidewire: Guidewire | None = None
    stent: Stent | None = None
    side_branch: SideBranch | None = None
    media_gaps: list[MediaGap] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["vessel_centre_mm"] = list(self.vessel_centre_mm)
        d["lumen_centre_mm"] = list(self.lumen_centre_mm)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhantomParams:
        try:
            return cls(
                vessel_centre_mm=(float(d["vessel_centre_mm"][0]), float(d["vessel_centre_mm"][1])),
                lumen_centre_mm=(float(d["lumen_centre_mm"][0]), float(d["lumen_centre_mm"][1])),
                eem_radius_mm=float(d["eem_radius_mm"]),
                eem_harmonics=[list(map(float, h)) for h in d["eem_harmonics"]],
                media_thickness_mm=float(d["media_thickness_mm"]),
                lumen_radius_mm=float(d["lumen_radius_mm"]),
                lumen_harmonics=[list(map(float, h)) for h in d["lumen_harmonics"]],
                min_intima_mm=float(d["min_intima_mm"]),
                plaque_burden=float(d["plaque_burden"]),
                plaque_eccentricity=float(d["plaque_eccentricity"]),
                plaque_angle_deg=float(d["plaque_angle_deg"]),
                calcium=[CalciumArc(**c) for c in d.get("calcium", [])],
                necrotic_core=[PlaqueLens(**c) for c in d.get("necrotic_core", [])],
                fibro_fatty=[PlaqueLens(**c) for c in d.get("fibro_fatty", [])],
                guidewire=Guidewire(**d["guidewire"]) if d.get("guidewire") else None,
                stent=Stent(**d["stent"]) if d.get("stent") else None,
                side_branch=SideBranch(**d["side_branch"]) if d.get("side_branch") else None,
                media_gaps=[MediaGap(**m) for m in d.get("media_gaps", [])],
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise IvusSimError(f"random-phantom parameters are incomplete or malformed: {e}") from None


# --------------------------------------------------------------------------- boundary tables

_TABLE_THETA = np.arange(_N_TABLE) * (_TWO_PI / _N_TABLE)
_TABLE_THETA_CLOSED = np.arange(_N_TABLE + 1) * (_TWO_PI / _N_TABLE)


def _harmonic_series(theta: np.ndarray, harmonics: list[list[float]]) -> np.ndarray:
    """``sum_k a_k cos(k theta + phase_k)`` for ``harmonics = [[k, a_k, phase_deg], ...]``."""
    out = np.zeros_like(theta)
    for k, a, ph in harmonics:
        out += a * np.cos(k * theta + math.radians(ph))
    return out


def _eem_table(r_e: float, harmonics: list[list[float]]) -> np.ndarray:
    """EEM radius about the vessel centre at the table angles [mm]."""
    return r_e * (1.0 + _harmonic_series(_TABLE_THETA, harmonics))


def _lumen_table(r_l: float, harmonics: list[list[float]]) -> np.ndarray:
    """Lumen radius about the lumen centre at the table angles [mm]."""
    return r_l * (1.0 + _harmonic_series(_TABLE_THETA, harmonics))


def _lookup(table: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Periodic linear interpolation of a boundary table at angles ``theta`` [rad]."""
    return np.interp(np.mod(theta, _TWO_PI), _TABLE_THETA_CLOSED, np.append(table, table[0]))


def _lookup1(table: np.ndarray, theta: float) -> float:
    return float(_lookup(table, np.array([theta]))[0])


def _lumen_fits(lumen: np.ndarray, offset: tuple[float, float], inner: np.ndarray, gap: float) -> bool:
    """Whether the lumen (centre ``offset`` from the vessel centre) stays ``gap`` mm inside ``inner``."""
    x = offset[0] + lumen * np.cos(_TABLE_THETA)
    y = offset[1] + lumen * np.sin(_TABLE_THETA)
    return bool(np.all(np.hypot(x, y) <= _lookup(inner, np.arctan2(y, x)) - gap))


def _clearance(lumen: np.ndarray, x: float, y: float) -> float:
    """Distance [mm] from a point (lumen-centred coords) to the lumen border (negative outside)."""
    bx, by = lumen * np.cos(_TABLE_THETA), lumen * np.sin(_TABLE_THETA)
    d = float(np.min(np.hypot(bx - x, by - y)))
    return d if math.hypot(x, y) < _lookup1(lumen, math.atan2(y, x)) else -d


# --------------------------------------------------------------------------- sampling


def _u(g: np.random.Generator, r: Range) -> float:
    return float(g.uniform(r[0], r[1]))


def _harmonics(g: np.random.Generator, ks: range, amplitude: float) -> list[list[float]]:
    return [[float(k), float(amplitude * g.normal() / k), float(g.uniform(0, 360))] for k in ks]


def sample_params(g: np.random.Generator, config: RandomPhantomConfig | None = None,
                  catheter_radius_mm: float = DEFAULT_CATHETER_RADIUS_MM) -> PhantomParams:
    """Draw every parameter of one random phantom from ``g`` (see :class:`RandomPhantomConfig`).

    The draw order is fixed; all draws happen here, none in :func:`render_params`. Geometric
    constraints (lumen inside the wall, catheter inside the lumen) are enforced here by
    deterministic shrinking, so the recorded numbers are the rendered ones.
    """
    cfg = config or RandomPhantomConfig()
    r_e = _u(g, cfg.eem_radius_mm)
    rough = _u(g, cfg.roughness)
    eem_h = [[2.0, _u(g, cfg.eem_ellipticity), float(g.uniform(0, 360))], *_harmonics(g, range(3, 7), rough)]
    media = _u(g, cfg.media_thickness_mm)
    burden = _u(g, cfg.plaque_burden)
    min_int = _u(g, cfg.min_intima_mm)
    ecc = _u(g, cfg.plaque_eccentricity)
    lumen_h = [[2.0, _u(g, cfg.lumen_ellipticity), float(g.uniform(0, 360))], *_harmonics(g, range(3, 7), rough)]
    direction = float(g.uniform(0, _TWO_PI))  # where the lumen is pushed (thin side of the plaque)

    inner = _eem_table(r_e, eem_h) - media
    r_lmin = cfg.min_lumen_radius_mm
    # lumen size from the burden, shrunk (deterministically) until it fits inside the wall
    r_l = max(r_e * math.sqrt(1.0 - burden), r_lmin)
    shape = _lumen_table(1.0, lumen_h)
    r_l = max(min(r_l, float((inner.min() - min_int) / shape.max())), r_lmin / float(shape.min()))
    lumen = r_l * shape
    # push the lumen centre towards `direction` by `ecc` of the largest offset that still fits
    lo, hi = 0.0, float(inner.max())
    for _ in range(30):
        mid = (lo + hi) / 2
        if _lumen_fits(lumen, (mid * math.cos(direction), mid * math.sin(direction)), inner, min_int):
            lo = mid
        else:
            hi = mid
    off = ecc * lo
    l_off = (off * math.cos(direction), off * math.sin(direction))  # lumen centre relative to vessel centre
    plaque_angle = (math.degrees(direction) + 180.0) % 360.0  # thick side, seen from the lumen centre

    def lens(n_max: int, p: float, arc: Range, depth: Range, half: Range, spread_deg: float) -> list[PlaqueLens]:
        n = int(g.integers(1, n_max + 1)) if g.random() < p else 0
        return [PlaqueLens(angle_deg=float((plaque_angle + g.uniform(-spread_deg, spread_deg)) % 360),
                           arc_deg=_u(g, arc), depth=_u(g, depth), half_thickness=_u(g, half)) for _ in range(n)]

    n_ca = int(g.integers(1, cfg.max_calcium_arcs + 1)) if g.random() < cfg.p_calcium else 0
    calcium = [CalciumArc(angle_deg=float((plaque_angle + g.uniform(-80, 80)) % 360),
                          arc_deg=_u(g, cfg.calcium_arc_deg), depth=_u(g, cfg.calcium_depth),
                          thickness_mm=_u(g, cfg.calcium_thickness_mm)) for _ in range(n_ca)]
    necrotic = lens(cfg.max_necrotic_pools, cfg.p_necrotic_core, cfg.necrotic_arc_deg, cfg.necrotic_depth,
                    cfg.necrotic_half_thickness, 50.0)
    fibro_fatty = lens(cfg.max_fibro_fatty, cfg.p_fibro_fatty, cfg.fibro_fatty_arc_deg, cfg.fibro_fatty_depth,
                       cfg.fibro_fatty_half_thickness, 80.0)

    stent = None
    if g.random() < cfg.p_stent:
        stent = Stent(n_struts=int(g.integers(cfg.stent_struts[0], cfg.stent_struts[1] + 1)),
                      phase_deg=float(g.uniform(0, 360)), thickness_mm=_u(g, cfg.strut_thickness_mm),
                      width_mm=_u(g, cfg.strut_width_mm), embed=float(g.uniform(-0.2, 0.6)))
    side = None
    if g.random() < cfg.p_side_branch:
        side = SideBranch(angle_deg=float(g.uniform(0, 360)), width_mm=_u(g, cfg.side_branch_width_mm),
                          extent_mm=_u(g, cfg.side_branch_extent_mm))

    n_gap = int(g.integers(1, cfg.max_media_gaps + 1)) if g.random() < cfg.p_media_gap else 0
    gaps = [MediaGap(angle_deg=float((plaque_angle + g.uniform(-60, 60)) % 360), arc_deg=_u(g, cfg.media_gap_arc_deg))
            for _ in range(n_gap)]

    # catheter position inside the lumen (lumen-centred coords): rejection sampling with a
    # guaranteed fallback at the lumen centre (the lumen contains a disc of r_lmin there)
    need = catheter_radius_mm + cfg.catheter_margin_mm
    cx = cy = 0.0
    for _ in range(24):
        psi = float(g.uniform(0, _TWO_PI))
        s = math.sqrt(float(g.random())) * max(_lookup1(lumen, psi) - need, 0.0)
        x, y = s * math.cos(psi), s * math.sin(psi)
        if _clearance(lumen, x, y) >= need:
            cx, cy = x, y
            break

    guidewire = None
    if g.random() < cfg.p_guidewire:
        rad = catheter_radius_mm + _u(g, cfg.guidewire_gap_mm) + cfg.guidewire_radius_mm
        start = float(g.uniform(0, _TWO_PI))
        for j in range(12):  # first angle (in steps of 30 deg) where the wire fits in the lumen
            a = start + j * _TWO_PI / 12
            gx, gy = cx + rad * math.cos(a), cy + rad * math.sin(a)
            if _clearance(lumen, gx, gy) >= cfg.guidewire_radius_mm + 0.02:
                guidewire = Guidewire(x_mm=gx - cx, y_mm=gy - cy, radius_mm=cfg.guidewire_radius_mm)
                break

    return PhantomParams(
        vessel_centre_mm=(-cx - l_off[0], -cy - l_off[1]), lumen_centre_mm=(-cx, -cy), eem_radius_mm=r_e,
        eem_harmonics=eem_h, media_thickness_mm=media, lumen_radius_mm=r_l, lumen_harmonics=lumen_h,
        min_intima_mm=min_int, plaque_burden=burden, plaque_eccentricity=ecc, plaque_angle_deg=plaque_angle,
        calcium=calcium, necrotic_core=necrotic, fibro_fatty=fibro_fatty, guidewire=guidewire, stent=stent,
        side_branch=side, media_gaps=gaps)


# --------------------------------------------------------------------------- rendering


def _wrap(a: np.ndarray) -> np.ndarray:
    """Wrap angles to (-pi, pi]."""
    return np.mod(a + math.pi, _TWO_PI) - math.pi


def render_params(p: PhantomParams, geometry: Geometry) -> np.ndarray:
    """Rasterise sampled parameters on ``geometry``: ``(N, N)`` uint8 tissue ids (before finalising).

    Pixel centres are evaluated in mm, so any ``geometry.size`` shows the same anatomy. Thin
    structures (media, struts, guidewire) are kept at least one pixel wide so they survive at
    low resolution. The catheter and the FOV are applied by :func:`finalise_labels`.

    Plaque components use a wall coordinate: ``depth = d_lumen / (d_lumen + d_media)`` in [0, 1]
    (radial distance past the lumen border about the lumen centre, and radial distance to the
    media about the vessel centre), ``d_lumen + d_media`` being the local plaque thickness [mm].
    """
    n, pix = geometry.size, geometry.pixel_mm
    c = geometry.centre
    coords = (np.arange(n) - c) * pix
    eem = _eem_table(p.eem_radius_mm, p.eem_harmonics)
    lumen = _lumen_table(p.lumen_radius_mm, p.lumen_harmonics)
    media_t = max(p.media_thickness_mm, 1.5 * pix)  # >= 1.5 px: the ring stays 4-connected closed

    vx, vy = p.vessel_centre_mm
    dxv, dyv = coords[None, :] - vx, coords[:, None] - vy
    rho_v = np.hypot(dxv, dyv)
    th_v = np.arctan2(dyv, dxv)
    r_eem = _lookup(eem, th_v)
    r_in = r_eem - media_t

    lx, ly = p.lumen_centre_mm
    dxl, dyl = coords[None, :] - lx, coords[:, None] - ly
    rho_l = np.hypot(dxl, dyl)
    th_l = np.arctan2(dyl, dxl)
    d_lum = rho_l - _lookup(lumen, th_l)  # < 0 inside the lumen

    labels = np.full((n, n), int(Tissue.PERIVASCULAR), dtype=np.uint8)
    labels[rho_v < r_eem] = Tissue.MEDIA
    d_med = r_in - rho_v
    wall = (d_med > 0) & (d_lum >= 0)
    # plaque components: evaluated on the wall pixels only (same element-wise arithmetic, less work)
    th_w, d_lum_w = th_l[wall], d_lum[wall]
    thick_w = np.maximum(d_lum_w + d_med[wall], 1e-6)  # local plaque thickness [mm]
    depth_w = d_lum_w / thick_w
    wall_labels = np.full(th_w.shape, int(Tissue.FIBROUS), dtype=np.uint8)

    def lens(items: list[PlaqueLens], tissue: Tissue) -> None:
        for it in items:
            d = _wrap(th_w - math.radians(it.angle_deg)) / (math.radians(it.arc_deg) / 2)
            shape = np.sqrt(np.clip(1.0 - d * d, 0.0, None))
            wall_labels[np.abs(depth_w - it.depth) < it.half_thickness * shape] = tissue

    lens(p.fibro_fatty, Tissue.FIBRO_FATTY)
    lens(p.necrotic_core, Tissue.NECROTIC_CORE)
    for arc in p.calcium:
        d = _wrap(th_w - math.radians(arc.angle_deg)) / (math.radians(arc.arc_deg) / 2)
        taper = np.clip(1.0 - d**4, 0.0, None) ** 0.25  # blunt, rounded ends
        half = np.where(taper > 0, np.maximum(arc.thickness_mm / 2 * taper, pix / 2), 0.0)
        wall_labels[np.abs(d_lum_w - arc.depth * thick_w) < half] = Tissue.DENSE_CALCIUM
    labels[wall] = wall_labels
    for gap in p.media_gaps:  # interrupted media: plaque reaches the EEM over the gap
        in_gap = np.abs(_wrap(th_v - math.radians(gap.angle_deg))) < math.radians(gap.arc_deg) / 2
        labels[in_gap & (labels == Tissue.MEDIA)] = Tissue.FIBROUS
    labels[d_lum < 0] = Tissue.LUMEN

    if p.side_branch is not None:
        sb = p.side_branch
        a = math.radians(sb.angle_deg)
        ex, ey = math.cos(a), math.sin(a)
        along = dxl * ex + dyl * ey
        across = -dxl * ey + dyl * ex
        # reach: from the lumen centre to `extent_mm` beyond the EEM along the branch axis
        end = _lookup1(lumen, a) + 0.0
        while end < 2 * p.eem_radius_mm + 10 and _lookup1(eem, math.atan2(ly + end * ey - vy, lx + end * ex - vx)) > \
                math.hypot(lx + end * ex - vx, ly + end * ey - vy):
            end += 0.05
        end += sb.extent_mm
        half_w = sb.width_mm / 2
        channel = (along > 0) & (along < end) & (np.abs(across) < half_w)
        cap = np.hypot(along - end, across) < half_w
        labels[channel | cap] = Tissue.LUMEN

    def stamp(mask_fn: Any, x_mm: float, y_mm: float, reach_mm: float, tissue: Tissue) -> None:
        """Evaluate a small shape (catheter-centred mm) in its bounding box; always mark its centre pixel."""
        ccol, crow = x_mm / pix + c, y_mm / pix + c
        r_px = reach_mm / pix + 1
        r0, r1 = max(int(crow - r_px), 0), min(int(crow + r_px) + 2, n)
        c0, c1 = max(int(ccol - r_px), 0), min(int(ccol + r_px) + 2, n)
        if r0 >= r1 or c0 >= c1:
            return
        sub_x = coords[None, c0:c1] - x_mm
        sub_y = coords[r0:r1, None] - y_mm
        labels[r0:r1, c0:c1][mask_fn(sub_x, sub_y)] = tissue
        rr, cc = round(crow), round(ccol)
        if 0 <= rr < n and 0 <= cc < n:
            labels[rr, cc] = tissue

    if p.stent is not None:
        st = p.stent
        for i in range(st.n_struts):
            a = math.radians(st.phase_deg) + i * _TWO_PI / st.n_struts
            rs = _lookup1(lumen, a) + st.embed * st.thickness_mm
            ux, uy = math.cos(a), math.sin(a)

            def rect(x: np.ndarray, y: np.ndarray, ux: float = ux, uy: float = uy, st: Stent = st) -> np.ndarray:
                radial = x * ux + y * uy
                tangential = -x * uy + y * ux
                return (np.abs(radial) < st.thickness_mm / 2) & (np.abs(tangential) < st.width_mm / 2)

            stamp(rect, lx + rs * ux, ly + rs * uy, max(st.thickness_mm, st.width_mm), Tissue.STENT_STRUT)

    if p.guidewire is not None:
        gw = p.guidewire

        def disc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.hypot(x, y) < gw.radius_mm

        stamp(disc, gw.x_mm, gw.y_mm, gw.radius_mm, Tissue.GUIDEWIRE)
    return labels


# --------------------------------------------------------------------------- public API


def _build(params: PhantomParams, geometry: Geometry, meta: dict[str, Any]) -> Phantom:
    labels = finalise_labels(render_params(params, geometry)[None], geometry)
    return Phantom(labels=labels, geometry=geometry, source=meta["source"], meta=meta)


def random_phantom(seed: int, *, size: int = 256, fov_mm: float = DEFAULT_FOV_MM, index: int = 0,
                   config: RandomPhantomConfig | None = None,
                   catheter_radius_mm: float = DEFAULT_CATHETER_RADIUS_MM) -> Phantom:
    """A procedural, anatomically plausible cross-section (see the module docstring).

    Args:
        seed: the run seed; parameters come from ``rng(seed, "phantom", index)``.
        size: image side ``N`` in pixels (anatomy is defined in mm, so any size shows the same vessel).
        fov_mm: field-of-view diameter in mm.
        index: phantom number within the run (independent stream per index).
        config: parameter ranges (default :class:`RandomPhantomConfig`).
        catheter_radius_mm: catheter radius (the vessel is placed around it).

    Returns:
        A single-frame :class:`Phantom` ``(1, N, N)``; ``meta`` holds the seed, index, config and
        every sampled parameter (``meta["params"]``), enough for :func:`phantom_from_meta`.
    """
    cfg = config or RandomPhantomConfig()
    try:
        geometry = Geometry(size=int(size), fov_mm=float(fov_mm), catheter_radius_mm=float(catheter_radius_mm))
    except ValueError as e:
        raise IvusSimError(str(e)) from None
    if catheter_radius_mm + cfg.catheter_margin_mm > cfg.min_lumen_radius_mm:
        raise IvusSimError(f"catheter_radius_mm {catheter_radius_mm:g} plus the margin {cfg.catheter_margin_mm:g} must"
                           f" fit inside the smallest lumen radius {cfg.min_lumen_radius_mm:g} mm")
    params = sample_params(rng(seed, "phantom", index), cfg, geometry.catheter_radius_mm)
    meta = {"generator": GENERATOR_NAME, "params_version": PARAMS_VERSION, "seed": int(seed), "index": int(index),
            "source": f"random_phantom(seed={seed}, index={index})", "config": cfg.to_dict(),
            "params": params.to_dict()}
    return _build(params, geometry, meta)


def phantom_from_meta(meta: dict[str, Any], *, size: int | None = None, fov_mm: float | None = None) -> Phantom:
    """Re-render a random phantom from its recorded ``meta`` (e.g. a sidecar's ``meta`` field).

    Args:
        meta: ``phantom.meta`` of a random phantom (or a sidecar dict that holds it under ``"meta"``,
            with the geometry under ``"geometry"``).
        size: output side; default the recorded size (from the sidecar geometry) or 256.
        fov_mm: field of view; default the recorded one or 10 mm.
    """
    geom_d: dict[str, Any] = {}
    if "meta" in meta and "params" not in meta:
        geom_d = meta.get("geometry", {}) or {}
        meta = meta["meta"]
    if meta.get("generator") != GENERATOR_NAME or "params" not in meta:
        raise IvusSimError("metadata does not describe a random phantom (no 'params' from "
                           f"{GENERATOR_NAME})")
    if meta.get("params_version") != PARAMS_VERSION:
        raise IvusSimError(f"random-phantom parameters version {meta.get('params_version')} cannot be rendered by "
                           f"this ivus-sim (version {PARAMS_VERSION})")
    params = PhantomParams.from_dict(meta["params"])
    geometry = Geometry(size=int(size or geom_d.get("size", 256)),
                        fov_mm=float(fov_mm or geom_d.get("fov_mm", DEFAULT_FOV_MM)),
                        catheter_radius_mm=float(geom_d.get("catheter_radius_mm", DEFAULT_CATHETER_RADIUS_MM)))
    return _build(params, geometry, dict(meta))


def phantom_statistics(params: PhantomParams | dict[str, Any]) -> dict[str, float]:
    """Clinical IVUS measures of a random phantom, from its parameters (mm, before the FOV cut).

    * ``lumen_area_mm2``, ``eem_area_mm2`` (areas inside the lumen and EEM contours; the side
      branch is not counted);
    * ``plaque_burden``: ``1 - lumen / EEM`` area (plaque + media, as measured clinically);
    * ``max_thickness_mm``, ``min_thickness_mm``: lumen-to-EEM distance along rays from the lumen
      centre (plaque + media);
    * ``eccentricity``: ``(max - min) / max`` thickness (0 concentric, 1 crescent; >= 0.5 is
      usually called eccentric).
    """
    p = params if isinstance(params, PhantomParams) else PhantomParams.from_dict(params)
    eem = _eem_table(p.eem_radius_mm, p.eem_harmonics)
    lumen = _lumen_table(p.lumen_radius_mm, p.lumen_harmonics)
    dth = _TWO_PI / _N_TABLE
    lumen_area = 0.5 * float(np.sum(lumen**2)) * dth
    eem_area = 0.5 * float(np.sum(eem**2)) * dth
    # EEM distance along rays from the lumen centre: march outwards until leaving the EEM
    ox = p.lumen_centre_mm[0] - p.vessel_centre_mm[0]
    oy = p.lumen_centre_mm[1] - p.vessel_centre_mm[1]
    t = np.arange(0.0, 2.5 * p.eem_radius_mm + 1.0, 0.01)
    x = ox + t[None, :] * np.cos(_TABLE_THETA)[:, None]
    y = oy + t[None, :] * np.sin(_TABLE_THETA)[:, None]
    inside = np.hypot(x, y) < _lookup(eem, np.arctan2(y, x))
    r_eem = t[np.argmin(inside, axis=1)]
    thick = np.clip(r_eem - lumen, 0.0, None)
    tmax, tmin = float(thick.max()), float(thick.min())
    return {"lumen_area_mm2": lumen_area, "eem_area_mm2": eem_area, "plaque_burden": 1.0 - lumen_area / eem_area,
            "max_thickness_mm": tmax, "min_thickness_mm": tmin,
            "eccentricity": (tmax - tmin) / tmax if tmax > 0 else 0.0}
