"""Converters from the two public IVUS annotation conventions to phantom label maps.

**(a) 2011 IVUS segmentation challenge** (Balocco et al., *Comput. Med. Imaging Graph.* 38(2), 2014):
frame images ``frame_PP_FFFF_003.png`` with contour files ``lum_frame_PP_FFFF_003.txt`` (lumen) and
``med_frame_PP_FFFF_003.txt`` (media-adventitia border = external elastic membrane), one
``x,y`` point per line in pixel coordinates (x = column, y = row). Conversion:

* inside the lumen contour -> ``LUMEN``;
* between the lumen and the media contours -> ``wall_tissue`` (default ``FIBROUS``: the challenge
  annotates borders, not plaque composition);
* a **media ring** of ``media_ring_mm`` (default 0.15 mm; 0 = none) just *inside* the media
  contour -> ``MEDIA`` (the contour is the outer edge of the media, the EEM);
* outside the media contour -> ``PERIVASCULAR``; the catheter is added at the centre.

**(b) VH-IVUS colour-coded tissue maps** (virtual histology exports): fibrous dark green,
fibro-fatty yellow-green, necrotic core red, dense calcium white, media grey, on black
(:class:`VHPalette`, adjustable). Black means lumen *inside* the vessel and perivascular tissue
*outside* it. Inside/outside is decided by the region the coloured wall encloses: black
components not connected to the image border (after filling holes in the coloured mask) are
lumen. If the wall ring is open (a side branch, a gap in the map), it is closed with a
morphological closing of growing radius until the image centre (the catheter) is enclosed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import DEFAULT_FOV_MM
from ivus_sim.phantom.phantom import Phantom
from ivus_sim.phantom.reader import (
    DEFAULT_COLOUR_TOLERANCE,
    IMAGE_EXTENSIONS,
    _ext,
    _resample_nearest,
    snap_colours,
    write_phantom,
)
from ivus_sim.tissues import Tissue

__all__ = [
    "DEFAULT_MEDIA_RING_MM",
    "ChallengeCase",
    "read_contour",
    "contours_to_labels",
    "challenge_frame_to_phantom",
    "find_challenge_cases",
    "convert_challenge_folder",
    "VHPalette",
    "vh_map_to_labels",
    "vh_image_to_phantom",
    "convert_vh",
]

#: thickness of the media ring drawn inside the challenge media contour [mm]
DEFAULT_MEDIA_RING_MM = 0.15
_WALL_TISSUES = (Tissue.FIBROUS, Tissue.FIBRO_FATTY, Tissue.NECROTIC_CORE, Tissue.DENSE_CALCIUM)
_BLACK = 254  # temporary id for black VH pixels before the inside/outside decision


# --------------------------------------------------------------------------- (a) IVUS challenge 2011


def read_contour(path: str | Path) -> np.ndarray:
    """Read a challenge contour file: ``(P, 2)`` float array of ``(x, y)`` = (column, row) pixel coordinates.

    Lines are ``x,y`` (commas, semicolons, tabs or spaces as separators); blank lines are skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise IvusSimError(f"contour file not found: {p}")
    pts: list[tuple[float, float]] = []
    for i, line in enumerate(p.read_text(errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = [t for t in re.split(r"[,;\s]+", line) if t]
        try:
            if len(parts) != 2:
                raise ValueError
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise IvusSimError(f"{p}:{i}: expected 'x,y' pixel coordinates, got {line[:40]!r}") from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise IvusSimError(f"{p}:{i}: coordinates must be finite numbers, got {line[:40]!r}")
        pts.append((x, y))
    if len(pts) < 3:
        raise IvusSimError(f"{p}: a contour needs at least 3 points, found {len(pts)}")
    return np.asarray(pts, dtype=np.float64)


def _polygon_mask(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.draw import polygon2mask

    return polygon2mask(shape, xy[:, ::-1])  # (row, col) vertices


def contours_to_labels(lumen_xy: np.ndarray, media_xy: np.ndarray, shape: tuple[int, int], *,
                       pixel_mm: float, wall_tissue: Tissue = Tissue.FIBROUS,
                       media_ring_mm: float = DEFAULT_MEDIA_RING_MM, source: str = "contours") -> np.ndarray:
    """Rasterise lumen and media (EEM) contours to a ``(H, W)`` uint8 label map.

    Args:
        lumen_xy, media_xy: ``(P, 2)`` contour points (x = column, y = row) in pixels.
        shape: ``(H, W)`` of the frame.
        pixel_mm: pixel spacing [mm] (for the media ring thickness).
        wall_tissue: tissue between the lumen and the media (a plaque tissue).
        media_ring_mm: media ring thickness inside the media contour [mm]; 0 for none. At least one
            pixel when positive.
        source: name for error messages.
    """
    if wall_tissue not in _WALL_TISSUES:
        raise IvusSimError(f"wall tissue must be one of {', '.join(t.name.lower() for t in _WALL_TISSUES)}, "
                           f"got {Tissue(wall_tissue).name.lower()}")
    if media_ring_mm < 0:
        raise IvusSimError(f"media ring thickness must be >= 0 mm, got {media_ring_mm}")
    lumen = _polygon_mask(lumen_xy, shape)
    vessel = _polygon_mask(media_xy, shape)
    if not lumen.any():
        raise IvusSimError(f"{source}: the lumen contour encloses no pixel of the {shape[1]}x{shape[0]} frame")
    if not vessel.any():
        raise IvusSimError(f"{source}: the media contour encloses no pixel of the {shape[1]}x{shape[0]} frame")
    outside_frac = float((lumen & ~vessel).sum() / lumen.sum())
    if outside_frac > 0.05:
        raise IvusSimError(f"{source}: {outside_frac:.0%} of the lumen lies outside the media contour; "
                           "are the lum_/med_ files swapped?")
    labels = np.full(shape, int(Tissue.PERIVASCULAR), dtype=np.uint8)
    labels[vessel] = wall_tissue
    if media_ring_mm > 0:
        depth = ndimage.distance_transform_edt(vessel)  # distance to the nearest pixel outside the contour
        labels[vessel & (depth <= max(media_ring_mm / pixel_mm, 1.0))] = Tissue.MEDIA
    labels[lumen] = Tissue.LUMEN
    return labels


def _check_out_dir(src_dir: str | Path, out_dir: str | Path) -> None:
    if Path(out_dir).resolve() == Path(src_dir).resolve():
        raise IvusSimError(f"output folder {out_dir} is the input folder; choose another so inputs are not overwritten")


def _image_shape(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.height), int(im.width)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise IvusSimError(f"{path}: cannot read the frame image ({e})") from None


def _finish(labels: np.ndarray, size: int | None, fov_mm: float, source: str, meta: dict[str, Any],
            pad: bool = False) -> Phantom:
    vol = labels[None]
    h, w = labels.shape
    if h != w:
        if not pad:
            raise IvusSimError(f"{source}: frame is {w}x{h} pixels (width x height), not square; pass --pad to pad "
                               "it with background")
        n = max(h, w)
        sq = np.full((1, n, n), int(Tissue.OUTSIDE), np.uint8)
        sq[0, (n - h) // 2:(n - h) // 2 + h, (n - w) // 2:(n - w) // 2 + w] = labels
        vol = sq
    if size is not None:
        if size < 8:
            raise IvusSimError(f"size must be at least 8 pixels, got {size}")
        vol = _resample_nearest(vol, size)
    return Phantom.from_array(vol, fov_mm=fov_mm, source=source, meta=meta)


def challenge_frame_to_phantom(frame: str | Path | None, lumen_txt: str | Path, media_txt: str | Path, *,
                               shape: tuple[int, int] | None = None, size: int | None = None,
                               fov_mm: float = DEFAULT_FOV_MM, wall_tissue: Tissue = Tissue.FIBROUS,
                               media_ring_mm: float = DEFAULT_MEDIA_RING_MM, pad: bool = False) -> Phantom:
    """Convert one challenge frame (image + lumen and media contours) to a :class:`Phantom`.

    Args:
        frame: the frame image (only its size is used) or ``None`` with ``shape`` given.
        lumen_txt, media_txt: the ``lum_*.txt`` and ``med_*.txt`` contour files.
        shape: ``(H, W)`` when there is no frame image.
        size: output side in pixels (nearest resampling); ``None`` keeps the frame size.
        fov_mm: field-of-view diameter of the frame [mm] (sets the pixel spacing).
        wall_tissue, media_ring_mm: see :func:`contours_to_labels`.
        pad: pad a non-square frame instead of refusing it.
    """
    if frame is not None:
        shape = _image_shape(Path(frame))
    if shape is None:
        raise IvusSimError("give the frame image or its shape")
    source = str(frame if frame is not None else lumen_txt)
    pixel_mm = fov_mm / max(shape)
    labels = contours_to_labels(read_contour(lumen_txt), read_contour(media_txt), shape, pixel_mm=pixel_mm,
                                wall_tissue=wall_tissue, media_ring_mm=media_ring_mm, source=source)
    meta = {"converter": "ivus_challenge_2011", "frame": None if frame is None else str(frame),
            "lumen_contour": str(lumen_txt), "media_contour": str(media_txt), "native_shape": list(shape),
            "wall_tissue": Tissue(wall_tissue).name.lower(), "media_ring_mm": media_ring_mm}
    return _finish(labels, size, fov_mm, source, meta, pad)


@dataclass(frozen=True)
class ChallengeCase:
    """One annotated challenge frame: the image and its lumen / media contour files."""

    name: str
    frame: Path
    lumen: Path
    media: Path


def find_challenge_cases(folder: str | Path, exclude: str | Path | None = None) -> tuple[list[ChallengeCase],
                                                                                         list[Path]]:
    """Pair frame images with their contours anywhere under ``folder`` (``frame_X.png`` <-> ``lum_frame_X.txt``).

    Images under ``exclude`` (e.g. an output folder inside the input folder) are ignored.

    Returns:
        ``(cases sorted by name, frames without both contour files)``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise IvusSimError(f"challenge folder not found: {root}")
    contours: dict[str, Path] = {}
    for f in root.rglob("*.txt"):
        contours.setdefault(f.name.lower(), f)
    cases, unmatched = [], []
    skip = Path(exclude).resolve() if exclude is not None else None
    for img in sorted(f for f in root.rglob("*") if f.is_file() and _ext(f) in IMAGE_EXTENSIONS
                      and not f.name.startswith(".") and not (skip and f.resolve().is_relative_to(skip))):
        stem = img.name[: -len(_ext(img))]
        lum, med = contours.get(f"lum_{stem}.txt".lower()), contours.get(f"med_{stem}.txt".lower())
        if lum is None or med is None:
            unmatched.append(img)
        else:
            cases.append(ChallengeCase(stem, img, lum, med))
    if not cases:
        raise IvusSimError(f"{root}: no frame image with matching lum_<frame>.txt and med_<frame>.txt contours "
                           "(2011 IVUS challenge layout)")
    return sorted(cases, key=lambda c: c.name), unmatched


def convert_challenge_folder(folder: str | Path, out_dir: str | Path, *, size: int | None = None,
                             fov_mm: float = DEFAULT_FOV_MM, wall_tissue: Tissue = Tissue.FIBROUS,
                             media_ring_mm: float = DEFAULT_MEDIA_RING_MM, pad: bool = False,
                             progress: bool = True) -> tuple[list[Path], list[Path]]:
    """Convert every annotated frame under ``folder`` to ``out_dir/<frame>.png`` label maps (+ JSON sidecars).

    Returns:
        ``(written label maps, frames skipped for lack of contours)``.
    """
    from tqdm import tqdm

    _check_out_dir(folder, out_dir)
    cases, unmatched = find_challenge_cases(folder, exclude=out_dir)
    written = []
    for case in tqdm(cases, desc="challenge frames", unit="frame", disable=not progress):
        ph = challenge_frame_to_phantom(case.frame, case.lumen, case.media, size=size, fov_mm=fov_mm,
                                        wall_tissue=wall_tissue, media_ring_mm=media_ring_mm, pad=pad)
        written.append(write_phantom(Path(out_dir) / f"{case.name}.png", ph))
    return written, unmatched


# --------------------------------------------------------------------------- (b) VH-IVUS colour maps


@dataclass(frozen=True)
class VHPalette:
    """Colours (R, G, B) of a VH-IVUS tissue map; the defaults follow the usual VH display."""

    fibrous: tuple[int, int, int] = (0, 128, 0)
    fibro_fatty: tuple[int, int, int] = (128, 255, 0)
    necrotic_core: tuple[int, int, int] = (255, 0, 0)
    dense_calcium: tuple[int, int, int] = (255, 255, 255)
    media: tuple[int, int, int] = (128, 128, 128)
    black: tuple[int, int, int] = (0, 0, 0)

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(K, 3)`` colours and ``(K,)`` ids (black -> a placeholder resolved by connectivity)."""
        colours = np.array([self.fibrous, self.fibro_fatty, self.necrotic_core, self.dense_calcium, self.media,
                            self.black], dtype=np.uint8)
        ids = np.array([Tissue.FIBROUS, Tissue.FIBRO_FATTY, Tissue.NECROTIC_CORE, Tissue.DENSE_CALCIUM,
                        Tissue.MEDIA, _BLACK], dtype=np.uint8)
        return colours, ids

    def to_dict(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in asdict(self).items()}


def vh_map_to_labels(rgb: np.ndarray, *, palette: VHPalette | None = None,
                     tolerance: float = DEFAULT_COLOUR_TOLERANCE, source: str = "VH map",
                     max_closing_px: int = 16) -> tuple[np.ndarray, int]:
    """Convert a VH-IVUS colour map ``(H, W, 3)`` to tissue ids ``(H, W)`` uint8.

    Returns:
        ``(labels, closing radius in pixels that was needed to enclose the centre; 0 = ring closed)``.
    """
    pal = palette or VHPalette()
    colours, ids = pal.table()
    snapped = snap_colours(rgb, colours, ids, tolerance=tolerance, source=source, hint="VH-IVUS",
                           advice="; expected the VH colours (fibrous, fibro-fatty, necrotic core, dense calcium, "
                                  "media, black)").labels
    h, w = snapped.shape
    wall = snapped != _BLACK
    if not wall.any():
        raise IvusSimError(f"{source}: the map is all black; no vessel wall colours found")
    centre = (h // 2, w // 2)
    radius = 0
    vessel = ndimage.binary_fill_holes(wall)
    while not vessel[centre]:
        radius = 2 if radius == 0 else radius * 2
        if radius > max_closing_px:
            raise IvusSimError(f"{source}: the coloured vessel wall does not enclose the image centre (catheter), "
                               f"even after closing gaps of {max_closing_px} px; cannot tell lumen from "
                               "perivascular black")
        yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        closed = ndimage.binary_closing(np.pad(wall, radius), structure=np.hypot(yy, xx) <= radius)[
            radius:-radius, radius:-radius]
        vessel = ndimage.binary_fill_holes(closed)
    labels = snapped.copy()
    black = snapped == _BLACK
    labels[black & vessel] = Tissue.LUMEN
    labels[black & ~vessel] = Tissue.PERIVASCULAR
    return labels, radius


def vh_image_to_phantom(path: str | Path, *, size: int | None = None, fov_mm: float = DEFAULT_FOV_MM,
                        palette: VHPalette | None = None, tolerance: float = DEFAULT_COLOUR_TOLERANCE,
                        pad: bool = False) -> Phantom:
    """Read one VH-IVUS colour map image and convert it to a :class:`Phantom` (see :func:`vh_map_to_labels`)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise IvusSimError(f"VH map not found: {p}")
    if p.stat().st_size == 0:
        raise IvusSimError(f"{p}: the file is empty")
    try:
        with Image.open(p) as im:
            im.load()
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise IvusSimError(f"{p}: cannot read the image (truncated or not an image: {e})") from None
    pal = palette or VHPalette()
    labels, closing = vh_map_to_labels(rgb, palette=pal, tolerance=tolerance, source=str(p))
    meta = {"converter": "vh_ivus", "path": str(p), "native_shape": list(labels.shape), "palette": pal.to_dict(),
            "colour_tolerance": tolerance, "closing_radius_px": closing}
    return _finish(labels, size, fov_mm, str(p), meta, pad)


def convert_vh(path: str | Path, out_dir: str | Path, *, size: int | None = None, fov_mm: float = DEFAULT_FOV_MM,
               palette: VHPalette | None = None, tolerance: float = DEFAULT_COLOUR_TOLERANCE, pad: bool = False,
               progress: bool = True) -> list[Path]:
    """Convert a VH map image, or every image in a folder (name order), to ``out_dir/<name>.png`` label maps."""
    from tqdm import tqdm

    src = Path(path)
    if not src.exists():
        raise IvusSimError(f"not found: {src}")
    files: Sequence[Path]
    if src.is_dir():
        files = sorted(f for f in src.iterdir()
                       if f.is_file() and _ext(f) in IMAGE_EXTENSIONS and not f.name.startswith("."))
        if not files:
            raise IvusSimError(f"{src}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    else:
        files = [src]
    _check_out_dir(src if src.is_dir() else src.parent, out_dir)
    written = []
    for f in tqdm(files, desc="VH maps", unit="image", disable=not progress):
        ph = vh_image_to_phantom(f, size=size, fov_mm=fov_mm, palette=palette, tolerance=tolerance, pad=pad)
        written.append(write_phantom(Path(out_dir) / f"{f.name[: -len(_ext(f))]}.png", ph))
    return written
