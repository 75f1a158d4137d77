"""Geometry: the one module that owns the image grid and polar <-> Cartesian conversion.

Convention (shared by every stage, every output and the calibration figures):

* An image or phantom is a square ``N x N`` grid. The field-of-view (FOV) disc is inscribed
  in it: centre at pixel ``((N-1)/2, (N-1)/2)``, radius ``N/2`` pixels. Pixels whose centre lies
  outside the disc are outside the field of view (tissue id 255, intensity 0).
* Physical size comes from the FOV diameter ``fov_mm`` (default 10 mm): pixel spacing is
  ``fov_mm / N`` mm.
* The catheter sits at the centre. Its radius is ``catheter_radius_mm`` (default 0.575 mm,
  i.e. 0.115 x the disc radius at 10 mm FOV, as in the calibration frames).
* Polar frame (A-line x depth): angle index ``k`` in ``[0, n_angles)`` at
  ``theta_k = 2 pi k / n_angles``, measured from the +column axis towards +row
  (``row = c + r sin(theta)``, ``col = c + r cos(theta)``); depth index ``j`` in
  ``[0, n_samples)`` at radius ``r_j = (j + 0.5) * R / n_samples`` (sample centres from the
  catheter axis to the disc edge). Polar arrays have shape ``(..., n_angles, n_samples)``.

Conversions use :func:`torch.nn.functional.grid_sample`, so they batch and run on any device;
sampling grids are cached per (size, polar shape, device).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "Geometry",
    "Interp",
    "DEFAULT_FOV_MM",
    "DEFAULT_CATHETER_RADIUS_MM",
    "fov_mask",
    "radius_map",
    "cart_to_polar",
    "polar_to_cart",
    "sample_polar",
]

DEFAULT_FOV_MM = 10.0
DEFAULT_CATHETER_RADIUS_MM = 0.575


class Interp(str, Enum):
    """Interpolation used by the polar <-> Cartesian conversions."""

    NEAREST = "nearest"  # label maps
    BILINEAR = "bilinear"  # intensities
    #: intensities, keeping more of the speckle's fine grain than bilinear (cubic convolution,
    #: Keys 1981, as ``torch.nn.functional.grid_sample``); may overshoot [min, max] slightly: clip
    BICUBIC = "bicubic"


@dataclass(frozen=True)
class Geometry:
    """Physical geometry of one square image.

    Args:
        size: image side ``N`` in pixels.
        fov_mm: field-of-view diameter in mm (the inscribed disc).
        catheter_radius_mm: radius of the imaging catheter in mm.
    """

    size: int = 256
    fov_mm: float = DEFAULT_FOV_MM
    catheter_radius_mm: float = DEFAULT_CATHETER_RADIUS_MM

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be >= 8 pixels, got {self.size}")
        if not (self.fov_mm > 0 and math.isfinite(self.fov_mm)):
            raise ValueError(f"fov_mm must be a positive number, got {self.fov_mm}")
        if not 0 <= self.catheter_radius_mm < self.fov_mm / 2:
            raise ValueError(f"catheter_radius_mm must be in [0, fov/2), got {self.catheter_radius_mm}")

    @property
    def pixel_mm(self) -> float:
        """Pixel spacing [mm]."""
        return self.fov_mm / self.size

    @property
    def radius_px(self) -> float:
        """FOV disc radius [pixels]."""
        return self.size / 2

    @property
    def centre(self) -> float:
        """Row (= column) coordinate of the catheter axis [pixels]."""
        return (self.size - 1) / 2

    @property
    def catheter_radius_px(self) -> float:
        """Catheter radius [pixels]."""
        return self.catheter_radius_mm / self.pixel_mm

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pixel_mm": self.pixel_mm}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Geometry:
        return cls(size=int(d["size"]), fov_mm=float(d["fov_mm"]),
                   catheter_radius_mm=float(d.get("catheter_radius_mm", DEFAULT_CATHETER_RADIUS_MM)))

    def with_size(self, size: int) -> Geometry:
        return Geometry(size=size, fov_mm=self.fov_mm, catheter_radius_mm=self.catheter_radius_mm)


@lru_cache(maxsize=16)
def radius_map(size: int) -> np.ndarray:
    """Distance of every pixel centre from the catheter axis, in units of the disc radius ``(N, N)``.

    Cached; the returned array is read-only (copy it to modify).
    """
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - c, xx - c) / (size / 2)
    r.flags.writeable = False
    return r


@lru_cache(maxsize=16)
def fov_mask(size: int) -> np.ndarray:
    """Boolean ``(N, N)`` mask of the pixels inside the field-of-view disc (cached, read-only)."""
    m = radius_map(size) <= 1.0
    m.flags.writeable = False
    return m


def _polar_grid(size: int, theta: torch.Tensor, r_frac: torch.Tensor, device: str) -> torch.Tensor:
    """grid_sample grid (1, A, S, 2) for angles ``theta`` [rad] and radii ``r_frac`` (units of the disc radius)."""
    r = r_frac.double() * (size / 2)
    th = theta.double()
    c = (size - 1) / 2
    row = c + r[None, :] * torch.sin(th[:, None])
    col = c + r[None, :] * torch.cos(th[:, None])
    # grid_sample, align_corners=True: -1 -> pixel 0, +1 -> pixel N-1
    gx = col / (size - 1) * 2 - 1
    gy = row / (size - 1) * 2 - 1
    return torch.stack([gx, gy], -1).float().unsqueeze(0).to(device)


@lru_cache(maxsize=32)
def _cart_to_polar_grid(size: int, n_angles: int, n_samples: int, device: str) -> torch.Tensor:
    th = torch.arange(n_angles, dtype=torch.float64) * (2 * math.pi / n_angles)
    r = (torch.arange(n_samples, dtype=torch.float64) + 0.5) / n_samples
    return _polar_grid(size, th, r, device)


@lru_cache(maxsize=32)
def _polar_to_cart_grid(size: int, n_angles: int, n_samples: int, device: str) -> torch.Tensor:
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    dy, dx = yy - c, xx - c
    r = torch.sqrt(dx**2 + dy**2)
    th = torch.atan2(dy, dx) % (2 * math.pi)
    # fractional indices into a polar array padded with one wrap-around angle row and
    # one edge sample at each end of depth: angle index k -> padded row k, k in [0, A]
    a_idx = th / (2 * math.pi) * n_angles  # [0, A)
    s_idx = r / (size / 2) * n_samples - 0.5  # sample centres at integers
    s_idx = s_idx.clamp(-0.5, n_samples - 0.5) + 1  # padded: one extra sample at start
    # padded array has A+1 rows and S+2 columns
    gx = s_idx / (n_samples + 1) * 2 - 1
    gy = a_idx / n_angles * 2 - 1
    return torch.stack([gx, gy], -1).float().unsqueeze(0).to(device)  # (1, N, N, 2)


@lru_cache(maxsize=16)
def _fov_mask_torch(size: int, device: str) -> torch.Tensor:
    return torch.from_numpy(fov_mask(size).copy()).to(device)


def _as_batch(x: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, tuple[int, ...], bool]:
    was_numpy = isinstance(x, np.ndarray)
    t = torch.as_tensor(x)
    lead = tuple(t.shape[:-2])
    t = t.reshape(-1, 1, *t.shape[-2:])
    return t, lead, was_numpy


def cart_to_polar(
    image: torch.Tensor | np.ndarray,
    n_angles: int,
    n_samples: int,
    interp: Interp = Interp.BILINEAR,
) -> torch.Tensor | np.ndarray:
    """Resample Cartesian images onto the polar (A-line x depth) grid.

    Args:
        image: ``(..., N, N)`` image(s) or label map(s) on the geometry grid.
        n_angles: number of A-lines.
        n_samples: depth samples per A-line (from the axis to the disc edge).
        interp: ``BILINEAR`` for intensities, ``NEAREST`` for label maps.

    Returns:
        ``(..., n_angles, n_samples)``, same type (numpy or torch) and dtype as the input.
    """
    size = int(np.shape(image)[-1])
    grid = _cart_to_polar_grid(size, n_angles, n_samples, str(torch.as_tensor(image[..., :1, :1]).device))
    return _sample(image, grid, interp)


def sample_polar(
    image: torch.Tensor | np.ndarray,
    theta: np.ndarray,
    r_frac: np.ndarray,
    interp: Interp = Interp.BILINEAR,
) -> torch.Tensor | np.ndarray:
    """Sample Cartesian images on an arbitrary polar grid (for measurements with their own grid).

    Args:
        image: ``(..., N, N)``.
        theta: ``(A,)`` angles [rad], same convention as :func:`cart_to_polar`.
        r_frac: ``(S,)`` radii in units of the FOV disc radius ``N/2``.
        interp: interpolation.

    Returns:
        ``(..., A, S)``, same type and dtype as the input.
    """
    size = int(np.shape(image)[-1])
    dev = str(torch.as_tensor(image[..., :1, :1]).device)
    grid = _polar_grid(size, torch.as_tensor(theta), torch.as_tensor(r_frac), dev)
    return _sample(image, grid, interp)


def _sample(image: torch.Tensor | np.ndarray, grid: torch.Tensor, interp: Interp) -> torch.Tensor | np.ndarray:
    t, lead, was_numpy = _as_batch(image)
    dtype = t.dtype
    if t.shape[-2] != t.shape[-1]:
        raise ValueError(f"image must be square, got {tuple(t.shape[-2:])}")
    src = t.float() if not t.is_floating_point() else t
    out = F.grid_sample(src, grid.to(src.dtype).expand(src.shape[0], -1, -1, -1), mode=Interp(interp).value,
                        padding_mode="border", align_corners=True)
    out = out.reshape(*lead, *grid.shape[1:3])
    if not dtype.is_floating_point:
        out = out.round().to(dtype)
    return out.numpy() if was_numpy else out


def polar_to_cart(
    polar: torch.Tensor | np.ndarray,
    size: int,
    interp: Interp = Interp.BILINEAR,
    outside: float = 0.0,
) -> torch.Tensor | np.ndarray:
    """Scan-convert polar (A-line x depth) data to the Cartesian grid.

    Args:
        polar: ``(..., n_angles, n_samples)``.
        size: output side ``N`` in pixels.
        interp: ``BILINEAR`` for intensities, ``NEAREST`` for label maps.
        outside: value written outside the field-of-view disc (e.g. 255 for label maps).

    Returns:
        ``(..., N, N)``, same type (numpy or torch) and dtype as the input.
    """
    t, lead, was_numpy = _as_batch(polar)
    dtype = t.dtype
    n_angles, n_samples = t.shape[-2:]
    src = t.float() if not t.is_floating_point() else t
    # pad: wrap one angle row (circularity) and replicate one depth sample at each end
    src = torch.cat([src, src[..., :1, :]], dim=-2)
    src = torch.cat([src[..., :1], src, src[..., -1:]], dim=-1)
    grid = _polar_to_cart_grid(size, n_angles, n_samples, str(t.device))
    out = F.grid_sample(src, grid.to(src.dtype).expand(src.shape[0], -1, -1, -1), mode=Interp(interp).value,
                        padding_mode="border", align_corners=True)
    mask = _fov_mask_torch(size, str(out.device))
    out = torch.where(mask, out, torch.as_tensor(outside, dtype=out.dtype, device=out.device))
    out = out.reshape(*lead, size, size)
    if not dtype.is_floating_point:
        out = out.round().to(dtype)
    return out.numpy() if was_numpy else out
