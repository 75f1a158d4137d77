"""Leakage neutralisation: every image a reader sees goes through one identical encoder.

Real and simulated frames usually reach a reader study by different routes (clinical JPEG
exports, simulator PNGs with text chunks, 16-bit TIFFs, different matrix sizes). Each of
those differences is a cue that has nothing to do with realism. :func:`neutralise` removes
them before anything is shown:

1. decode any supported file (PNG, JPEG, TIFF, BMP, ``.npy``) to grey levels in ``[0, 1]``
   with :func:`ivus_sim.image.read_grey` (colour is converted to luminance, 16-bit data scaled
   by 65535, frames under 16 x 16 px refused);
2. centre-crop to a square and resample to ``size x size`` with the same filter for both
   classes (Lanczos);
3. optionally normalise the display range (:class:`IntensityNorm`; default ``NONE`` so that
   a gain difference is *caught by the audit* rather than silently hidden);
4. quantise to 8 bits and set every pixel outside the field-of-view disc to 0 (the one
   mask of :func:`ivus_sim.geometry.fov_mask`);
5. write an 8-bit greyscale PNG with **no compression** and **no ancillary chunks**
   (only IHDR, IDAT, IEND): every file of the study then has exactly the same byte size,
   so file size (visible in any browser's network tab) carries no information.

Files are named by opaque random tokens (:func:`opaque_name`), never by their source names.
"""

from __future__ import annotations

import io
import secrets
from enum import Enum
from pathlib import Path

import numpy as np

from ivus_sim.image import FRAME_SUFFIXES, read_grey
from ivus_sim.io import atomic_write

__all__ = [
    "IMAGE_SUFFIXES",
    "IntensityNorm",
    "load_grey",
    "square_resize",
    "normalise_intensity",
    "encode_png",
    "neutralise",
    "opaque_name",
    "write_encoded",
    "png_chunks",
]

IMAGE_SUFFIXES = FRAME_SUFFIXES


class IntensityNorm(str, Enum):
    """Display-range normalisation applied identically to every image (inside the FOV).

    ``NONE`` keeps grey levels (gain differences stay visible and the audit reports them);
    ``MINMAX`` stretches min..max to 0..1; ``PERCENTILE`` stretches the 1st..99th percentile.
    """

    NONE = "none"
    MINMAX = "minmax"
    PERCENTILE = "percentile"


def load_grey(path: str | Path) -> np.ndarray:
    """Decode an image file to a float32 ``(H, W)`` array of grey levels in ``[0, 1]``.

    This is :func:`ivus_sim.image.read_grey` (the one frame reader and its scaling rule: 16-bit
    data divided by 65535, never by the frame's maximum; frames under 16 x 16 px refused).

    Raises:
        IvusSimError: unsupported suffix, missing, empty, undecodable or too small file.
    """
    return read_grey(path)


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop ``(H, W)`` to a square and resample to ``(size, size)`` (Lanczos), float32 in [0, 1]."""
    from PIL import Image

    h, w = image.shape
    s = min(h, w)
    r0, c0 = (h - s) // 2, (w - s) // 2
    sq = image[r0:r0 + s, c0:c0 + s]
    if s != size:
        im = Image.fromarray(sq.astype(np.float32), mode="F")
        sq = np.asarray(im.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    return np.clip(sq, 0.0, 1.0).astype(np.float32)


def normalise_intensity(image: np.ndarray, mask: np.ndarray, norm: IntensityNorm) -> np.ndarray:
    """Apply the display-range normalisation ``norm`` using the pixels inside ``mask``."""
    norm = IntensityNorm(norm)
    if norm is IntensityNorm.NONE:
        return image
    vals = image[mask]
    if norm is IntensityNorm.MINMAX:
        lo, hi = float(vals.min()), float(vals.max())
    else:
        lo, hi = (float(v) for v in np.percentile(vals, [1.0, 99.0]))
    if hi - lo < 1e-6:
        return np.zeros_like(image)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def encode_png(image_u8: np.ndarray) -> bytes:
    """Encode a ``(N, N)`` uint8 image as an uncompressed 8-bit greyscale PNG with no metadata."""
    from PIL import Image

    if image_u8.dtype != np.uint8 or image_u8.ndim != 2:
        raise ValueError(f"encode_png expects a 2-D uint8 array, got {image_u8.dtype} {image_u8.shape}")
    buf = io.BytesIO()
    Image.fromarray(image_u8, mode="L").save(buf, format="PNG", compress_level=0, optimize=False)
    data = buf.getvalue()
    extra = [c for c in png_chunks(data) if c not in ("IHDR", "IDAT", "IEND")]
    if extra:  # pragma: no cover - guards against a Pillow change
        raise RuntimeError(f"encoder wrote ancillary PNG chunks {extra}")
    return data


def neutralise(image: np.ndarray, size: int, norm: IntensityNorm = IntensityNorm.NONE) -> np.ndarray:
    """The pixel part of the pipeline: ``(H, W)`` float in [0, 1] -> ``(size, size)`` uint8, FOV-masked."""
    from ivus_sim.geometry import fov_mask

    mask = fov_mask(size)
    sq = square_resize(image, size)
    sq = normalise_intensity(sq, mask, norm)
    out = np.round(sq * 255.0).astype(np.uint8)
    out[~mask] = 0
    return out


def opaque_name(suffix: str = ".png") -> str:
    """A random, unguessable file name (128 bits from :mod:`secrets`; deliberately not seeded)."""
    return secrets.token_hex(16) + suffix


def write_encoded(path: str | Path, image_u8: np.ndarray) -> Path:
    """Write the encoded PNG of ``image_u8`` atomically to ``path``."""
    data = encode_png(image_u8)
    return atomic_write(path, lambda fh: fh.write(data))


def png_chunks(data: bytes) -> list[str]:
    """Chunk types of a PNG byte string, in order (empty list if ``data`` is not a PNG)."""
    import struct

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return []
    out: list[str] = []
    i = 8
    while i + 8 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        out.append(data[i + 4:i + 8].decode("latin-1"))
        i += 12 + n
    return out
