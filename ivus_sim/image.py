"""Greyscale IVUS frames in and out: the ONE frame reader and the ONE float -> uint8 rule.

Scaling rule (documented in docs/architecture.md, used by training, evaluation and the reader study):
a frame is read as float32 grey levels in ``[0, 1]`` by dividing by the FULL SCALE OF ITS STORAGE
TYPE, never by the frame's own maximum, so the same scene stored at 8 or 16 bits reads the same:

* 8-bit (PNG/TIFF/JPEG/BMP ``L``, ``uint8`` ``.npy``): ``v / 255``;
* 16-bit (``I;16`` PNG/TIFF, ``uint16`` ``.npy``, or 32-bit integer images whose values fit in
  16 bits, as Pillow opens some 16-bit PNGs): ``v / 65535``;
* float (``F`` TIFF, float ``.npy``): taken as is, must be finite and within ``[0, 1]``;
* colour (RGB/RGBA/palette): ITU-R 601 luma of the 8-bit channels, ``/ 255``.

Anything else (other integer ranges, NaN, fewer than 2 dimensions, colour ``.npy``) is refused with
a one-line :class:`~ivus_sim.errors.IvusSimError`, as are frames smaller than
:data:`MIN_FRAME_SIZE` pixels on a side (a 1 x 1 PNG is not an IVUS frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ivus_sim.errors import IvusSimError

__all__ = ["FRAME_SUFFIXES", "MIN_FRAME_SIZE", "grey_from_array", "read_grey", "to_uint8"]

#: file types :func:`read_grey` decodes
FRAME_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy")
#: smallest accepted frame side [px]
MIN_FRAME_SIZE = 16


def grey_from_array(arr: np.ndarray, where: str) -> np.ndarray:
    """One 2-D frame held in memory (a NIfTI slice, an ``.npy`` array) -> float32 grey levels in ``[0, 1]``.

    The same scaling rule as :func:`read_grey` (by the full scale of the storage type).

    Raises:
        IvusSimError: not 2-D, integers outside 0..65535, non-finite or out-of-range floats.
    """
    if arr.ndim != 2:
        raise IvusSimError(f"{where}: expected a single-channel 2-D frame, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype.kind in "iu":
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise IvusSimError(f"{where}: integer grey levels must lie in 0..65535, got {lo}..{hi}")
        return arr.astype(np.float32) / 65535.0
    if arr.dtype.kind == "f":
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise IvusSimError(f"{where}: frame holds NaN or infinite values")
        if out.size and (out.min() < 0 or out.max() > 1):
            raise IvusSimError(f"{where}: float frames must hold values in [0, 1], got "
                               f"{float(out.min()):.3g}..{float(out.max()):.3g}")
        return out
    raise IvusSimError(f"{where}: unsupported pixel type {arr.dtype}")


def read_grey(path: str | Path, min_size: int = MIN_FRAME_SIZE) -> np.ndarray:
    """Read one greyscale frame as float32 ``(H, W)`` grey levels in ``[0, 1]`` (see the module rule).

    Args:
        path: image file (``.png``, ``.tif``, ``.jpg``, ``.bmp``) or ``.npy`` array.
        min_size: smallest accepted height and width [px].

    Raises:
        IvusSimError: missing, empty, truncated or undecodable file, unsupported type, too small.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in FRAME_SUFFIXES:
        kinds = ", ".join(FRAME_SUFFIXES)
        raise IvusSimError(f"{p}: unsupported image type {suffix or '(none)'!r} (use one of {kinds})")
    if not p.is_file():
        raise IvusSimError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise IvusSimError(f"{p}: empty file")
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise IvusSimError(f"{p}: cannot read array ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                               ) from None
        out = grey_from_array(np.asarray(arr), str(p))
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(p) as im:
                im.load()
                if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                    out = np.asarray(im, dtype=np.uint16).astype(np.float32) / 65535.0
                elif im.mode in ("I", "F", "L"):
                    out = grey_from_array(np.asarray(im), str(p))
                elif im.mode in ("1",):
                    out = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
                else:  # RGB, RGBA, P, LA, CMYK, YCbCr ...: ITU-R 601 luma
                    out = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise IvusSimError(f"{p}: cannot decode image ({msg})") from None
    if out.ndim != 2:
        raise IvusSimError(f"{p}: expected a single-channel 2-D frame, got shape {out.shape}")
    if min(out.shape) < min_size:
        raise IvusSimError(f"{p}: frame is {out.shape[1]} x {out.shape[0]} px; IVUS frames must be at least "
                           f"{min_size} x {min_size}")
    return np.ascontiguousarray(out, dtype=np.float32)


def to_uint8(image: object) -> np.ndarray:
    """Float image(s) in ``[0, 1]`` (numpy array or torch tensor) -> uint8 display values.

    Round half up, clipped to 0..255: ``floor(v * 255 + 0.5)``. NaN maps to 0.
    """
    if hasattr(image, "detach"):
        a = image.detach().float().cpu().numpy()  # type: ignore[attr-defined]
    else:
        a = np.asarray(image, np.float32)
    a = np.nan_to_num(a.astype(np.float32), nan=0.0)
    return np.clip(np.floor(a * 255.0 + 0.5), 0, 255).astype(np.uint8)
