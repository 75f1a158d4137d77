"""Draw the example sketches in ``examples/`` (deterministic: rerun to get the same files byte for byte).

Each sketch is a 400 x 400 RGB PNG in the sketch palette of :mod:`ivus_sim.tissues`, at the
default 10 mm field of view (40 px per mm), drawn like a hand sketch: wobbly outlines, drawn at
4x and box-downsampled (anti-aliased edges, as a paint program would leave them).

    python examples/make_examples.py            # writes examples/*.png
    python examples/make_examples.py --out DIR
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ivus_sim.geometry import DEFAULT_CATHETER_RADIUS_MM, DEFAULT_FOV_MM
from ivus_sim.io import save_png
from ivus_sim.seeding import rng
from ivus_sim.tissues import TISSUES, Tissue

SIZE = 400  # output side [px]
SUPER = 4  # drawing supersampling factor
PX_PER_MM = SIZE / DEFAULT_FOV_MM
SEED = 2024
N_POINTS = 720

RadiusFn = Callable[[np.ndarray], np.ndarray]


def colour(t: Tissue) -> tuple[int, int, int]:
    return TISSUES[t].colour


def wobble(name: str, radius_mm: float, amount: float = 1.0, ellipse: float = 0.0,
           ellipse_deg: float = 0.0) -> RadiusFn:
    """A hand-drawn closed curve: radius [mm] as a function of angle, with slow wobble and tremor."""
    g = rng(SEED, "examples", name)
    ks = np.arange(3, 9)
    amp = amount * 0.012 * g.normal(size=ks.size) / np.sqrt(ks)
    ph = g.uniform(0, 2 * np.pi, size=ks.size)
    tk = np.arange(14, 24)
    tamp = amount * 0.0025 * g.normal(size=tk.size)
    tph = g.uniform(0, 2 * np.pi, size=tk.size)

    def r(theta: np.ndarray) -> np.ndarray:
        out = 1.0 + ellipse * np.cos(2 * (theta - math.radians(ellipse_deg)))
        out = out + (amp[:, None] * np.cos(ks[:, None] * theta[None] + ph[:, None])).sum(0)
        out = out + (tamp[:, None] * np.cos(tk[:, None] * theta[None] + tph[:, None])).sum(0)
        return radius_mm * out

    return r


@dataclass
class Sketch:
    """A drawing canvas in mm coordinates (origin at the catheter, x right, y down)."""

    name: str

    def __post_init__(self) -> None:
        n = SIZE * SUPER
        self.img = Image.new("RGB", (n, n), colour(Tissue.OUTSIDE))
        self.draw = ImageDraw.Draw(self.img)
        c = (n - 1) / 2
        self.draw.ellipse([c - n / 2, c - n / 2, c + n / 2, c + n / 2], fill=colour(Tissue.PERIVASCULAR))

    def _pt(self, x_mm: float, y_mm: float) -> tuple[float, float]:
        c = (SIZE * SUPER - 1) / 2
        return c + x_mm * PX_PER_MM * SUPER, c + y_mm * PX_PER_MM * SUPER

    def closed(self, centre: tuple[float, float], r: RadiusFn, t: Tissue) -> None:
        th = np.linspace(0, 2 * np.pi, N_POINTS, endpoint=False)
        rr = r(th)
        pts = [self._pt(centre[0] + a * math.cos(b), centre[1] + a * math.sin(b)) for a, b in zip(rr, th, strict=True)]
        self.draw.polygon(pts, fill=colour(t))

    def band(self, centre: tuple[float, float], inner: RadiusFn, outer: RadiusFn, start_deg: float, end_deg: float,
             t: Tissue, taper: float = 0.25) -> None:
        """A region between two radii (about ``centre``) over an angle range, ends rounded by ``taper``."""
        th = np.radians(np.linspace(start_deg, end_deg, 240))
        u = np.linspace(-1, 1, th.size)
        shrink = np.clip(1 - np.abs(u) ** 6, 0, 1) ** taper
        ri, ro = inner(th), outer(th)
        mid, half = (ri + ro) / 2, (ro - ri) / 2 * shrink
        a, b = mid - half, mid + half
        pts = [self._pt(centre[0] + r * math.cos(q), centre[1] + r * math.sin(q)) for r, q in zip(a, th, strict=True)]
        pts += [self._pt(centre[0] + r * math.cos(q), centre[1] + r * math.sin(q))
                for r, q in zip(b[::-1], th[::-1], strict=True)]
        self.draw.polygon(pts, fill=colour(t))

    def disc(self, x: float, y: float, r_mm: float, t: Tissue) -> None:
        (x0, y0), (x1, y1) = self._pt(x - r_mm, y - r_mm), self._pt(x + r_mm, y + r_mm)
        self.draw.ellipse([x0, y0, x1, y1], fill=colour(t))

    def rect(self, x: float, y: float, along_deg: float, w_mm: float, h_mm: float, t: Tissue) -> None:
        """A small rectangle centred at (x, y), ``h_mm`` along the direction ``along_deg``, ``w_mm`` across."""
        a = math.radians(along_deg)
        ux, uy, vx, vy = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
        corners = [(x + su * h_mm / 2 * ux + sv * w_mm / 2 * vx, y + su * h_mm / 2 * uy + sv * w_mm / 2 * vy)
                   for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        self.draw.polygon([self._pt(*p) for p in corners], fill=colour(t))

    def vessel(self, v: tuple[float, float], eem: RadiusFn, media_mm: float) -> None:
        self.closed(v, eem, Tissue.MEDIA)
        self.closed(v, lambda th: eem(th) - media_mm, Tissue.FIBROUS)

    def finish(self) -> np.ndarray:
        self.disc(0.0, 0.0, DEFAULT_CATHETER_RADIUS_MM, Tissue.CATHETER)
        return np.asarray(self.img.resize((SIZE, SIZE), Image.Resampling.BOX))


def wall_radius(lumen_c: tuple[float, float], vessel_c: tuple[float, float], inner: RadiusFn) -> RadiusFn:
    """Distance from the lumen centre to the inner EEM curve (about the vessel centre), per angle [mm]."""

    def r(theta: np.ndarray) -> np.ndarray:
        t = np.linspace(0, 8, 1601)[None, :]
        px = lumen_c[0] - vessel_c[0] + t * np.cos(theta)[:, None]
        py = lumen_c[1] - vessel_c[1] + t * np.sin(theta)[:, None]
        rv = np.hypot(px, py)
        inside = rv < inner(np.arctan2(py, px).ravel()).reshape(rv.shape)
        return t[0, np.argmin(inside, axis=1)]

    return r


def between(lumen: RadiusFn, wall: RadiusFn, a: float, b: float) -> tuple[RadiusFn, RadiusFn]:
    """Radii at fractions ``a`` and ``b`` of the way from the lumen border to the media."""
    return (lambda th: lumen(th) + a * (wall(th) - lumen(th))), (lambda th: lumen(th) + b * (wall(th) - lumen(th)))


def normal_vessel() -> np.ndarray:
    s = Sketch("normal_vessel")
    v, lc = (0.15, -0.1), (0.1, -0.05)
    eem = wobble("normal-eem", 2.9, ellipse=0.04, ellipse_deg=20)
    s.vessel(v, eem, 0.2)
    s.closed(lc, wobble("normal-lumen", 2.5, ellipse=0.05, ellipse_deg=25), Tissue.LUMEN)
    return s.finish()


def _eccentric(name: str, s: Sketch) -> tuple[tuple[float, float], RadiusFn, RadiusFn]:
    v, lc = (-0.2, 0.1), (0.35, -0.3)
    eem = wobble(f"{name}-eem", 3.3, ellipse=0.05, ellipse_deg=-30)
    s.vessel(v, eem, 0.2)
    lumen = wobble(f"{name}-lumen", 1.75, ellipse=0.08, ellipse_deg=40)
    return lc, lumen, wall_radius(lc, v, lambda th: eem(th) - 0.2)


def fibrous_plaque() -> np.ndarray:
    s = Sketch("fibrous_plaque")
    lc, lumen, wall = _eccentric("fibrous", s)
    s.band(lc, *between(lumen, wall, 0.5, 0.8), 150, 200, Tissue.FIBRO_FATTY)
    s.closed(lc, lumen, Tissue.LUMEN)
    return s.finish()


def calcified_plaque() -> np.ndarray:
    s = Sketch("calcified_plaque")
    lc, lumen, wall = _eccentric("calcified", s)
    s.band(lc, *between(lumen, wall, 0.15, 0.45), 95, 215, Tissue.DENSE_CALCIUM)  # 120-degree arc: casts a shadow
    s.band(lc, *between(lumen, wall, 0.55, 0.85), 230, 270, Tissue.FIBRO_FATTY)
    s.closed(lc, lumen, Tissue.LUMEN)
    return s.finish()


def lipid_rich_plaque() -> np.ndarray:
    s = Sketch("lipid_rich_plaque")
    lc, lumen, wall = _eccentric("lipid", s)
    s.band(lc, *between(lumen, wall, 0.3, 0.85), 110, 215, Tissue.NECROTIC_CORE, taper=0.5)  # under a thin cap
    s.band(lc, *between(lumen, wall, 0.45, 0.8), 215, 265, Tissue.FIBRO_FATTY)
    s.band(lc, *between(lumen, wall, 0.6, 0.85), 80, 100, Tissue.DENSE_CALCIUM)  # spotty calcium
    s.closed(lc, lumen, Tissue.LUMEN)
    return s.finish()


def stented_vessel() -> np.ndarray:
    s = Sketch("stented_vessel")
    v, lc = (0.1, 0.05), (0.2, 0.0)
    eem = wobble("stent-eem", 3.0, ellipse=0.03, ellipse_deg=70)
    s.vessel(v, eem, 0.2)
    lumen = wobble("stent-lumen", 2.05, amount=0.5, ellipse=0.02)
    s.closed(lc, lumen, Tissue.LUMEN)
    for i in range(9):
        a = 15 + i * 40.0
        r = float(lumen(np.array([math.radians(a)]))[0]) + 0.03
        s.rect(lc[0] + r * math.cos(math.radians(a)), lc[1] + r * math.sin(math.radians(a)), a, 0.28, 0.12,
               Tissue.STENT_STRUT)
    s.disc(0.95, 0.45, 0.18, Tissue.GUIDEWIRE)
    return s.finish()


EXAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "normal_vessel": normal_vessel,
    "fibrous_plaque": fibrous_plaque,
    "calcified_plaque": calcified_plaque,
    "lipid_rich_plaque": lipid_rich_plaque,
    "stented_vessel": stented_vessel,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    args = ap.parse_args()
    for name, fn in EXAMPLES.items():
        path = save_png(args.out / f"{name}.png", fn())
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
