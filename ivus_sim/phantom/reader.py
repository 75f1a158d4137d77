"""Reading and writing phantoms: every input format goes through :func:`read_phantom`.

Supported inputs (chosen by file extension):

* **sketch** (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.tif``/``.tiff`` in RGB/RGBA/palette mode):
  each pixel is snapped to the nearest sketch colour of :data:`ivus_sim.tissues.TISSUES`
  (:func:`snap_to_palette`); anti-aliased edges and JPEG noise are resolved from the nearest
  confidently coloured pixel; fully transparent pixels are background (``OUTSIDE``, which
  becomes perivascular inside the field of view).
* **label image** (single-channel 8/16-bit ``.png``/``.tif``, multi-page TIFF = pullback):
  pixel values are tissue ids.
* **NIfTI** (``.nii``, ``.nii.gz``): 2-D, or 3-D = a pullback of 2-D frames, stored as
  (column, row, frame) like :func:`ivus_sim.io.save_nifti`; the in-plane spacing gives the
  field of view when it is plausible for IVUS (1-30 mm) and ``fov_mm`` is not given.
* **NumPy** (``.npy``): ``(N, N)`` or ``(F, N, N)`` integer tissue ids.

Any side length is accepted and resampled (nearest neighbour) to ``size``; non-square input is
an error unless ``pad=True`` (then it is centred on an ``OUTSIDE`` background). The result is
validated and finalised (FOV, catheter) exactly like :meth:`Phantom.from_array`. Every problem
with the input raises a one-line :class:`~ivus_sim.errors.IvusSimError`.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import DEFAULT_FOV_MM
from ivus_sim.io import atomic_write, save_nifti, save_png, sidecar_path, write_json
from ivus_sim.phantom.phantom import Phantom
from ivus_sim.tissues import MIN_LABEL_SIZE, PALETTE_IDS, VALID_IDS, Tissue, palette_array

__all__ = [
    "IMAGE_EXTENSIONS",
    "PHANTOM_EXTENSIONS",
    "DEFAULT_COLOUR_TOLERANCE",
    "SnapResult",
    "snap_colours",
    "snap_to_palette",
    "read_phantom",
    "read_phantoms",
    "list_phantom_files",
    "write_phantom",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
PHANTOM_EXTENSIONS = (*IMAGE_EXTENSIONS, ".nii", ".nii.gz", ".npy")
#: Euclidean RGB distance within which a pixel counts as a palette colour
DEFAULT_COLOUR_TOLERANCE = 60.0
#: anti-aliased / noisy pixels take the label of the nearest confident pixel within this many pixels
EDGE_RADIUS_PX = 3.0
#: more distinct values than this in a single-channel image (with unknown ids) = not a label map
MAX_LABEL_LEVELS = 16
#: an unknown-colour blob this large (pixels), or this fraction of the image, is an error
BULK_BLOB_PX = 12
BULK_FRACTION = 0.005
_PLAUSIBLE_FOV_MM = (1.0, 30.0)
#: a sketch is mostly flat colour: below these fractions of flat pixels in the FOV it is a photograph
#: (any colour image / a grey-only image with many grey levels, e.g. an exported B-mode frame)
MIN_FLAT_FRACTION = 0.4
MIN_FLAT_FRACTION_GREY = 0.75
_FLAT_STD = 8.0  # local (3x3) standard deviation [0-255] below which a pixel counts as flat


def _ext(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


# --------------------------------------------------------------------------- palette snapping


@dataclass(frozen=True)
class SnapResult:
    """Outcome of :func:`snap_to_palette`.

    Args:
        labels: ``(H, W)`` uint8 tissue ids.
        confident: fraction of pixels within the tolerance of a palette colour (and not an edge blend).
        edge_filled: fraction labelled from a nearby confident pixel (anti-aliasing, JPEG noise).
        stray_filled: fraction of isolated unknown-colour pixels labelled from the nearest confident pixel.
    """

    labels: np.ndarray
    confident: float
    edge_filled: float
    stray_filled: float


def _segment_distance(colours: np.ndarray, pal: np.ndarray) -> np.ndarray:
    """Distance of each colour ``(M, 3)`` to the nearest blend segment between two palette colours ``(M,)``."""
    best = np.full(len(colours), np.inf)
    for i in range(len(pal)):
        for j in range(i + 1, len(pal)):
            a, seg = pal[i], pal[j] - pal[i]
            t = np.clip((colours - a) @ seg / float(seg @ seg), 0.0, 1.0)
            d = np.linalg.norm(colours - (a + t[:, None] * seg), axis=1)
            np.minimum(best, d, out=best)
    return best


def _edge_blend(rgb: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels that are a blend of two clearly different neighbours on opposite sides ``(H, W)`` bool.

    Such pixels are anti-aliasing (or JPEG smear) even when their colour happens to match a
    palette colour (the grey between black lumen and white calcium looks like media).
    """
    pad = np.pad(rgb, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = rgb.shape[:2]
    out = np.zeros((h, w), dtype=bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        q1 = pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        q2 = pad[1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
        seg = q2 - q1
        l2 = np.einsum("hwc,hwc->hw", seg, seg)
        strong = l2 > (2 * tolerance) ** 2
        t = np.einsum("hwc,hwc->hw", rgb - q1, seg) / np.maximum(l2, 1e-9)
        dist = np.linalg.norm(rgb - q1 - np.clip(t, 0, 1)[..., None] * seg, axis=-1)
        out |= strong & (t > 0.15) & (t < 0.85) & (dist < 0.3 * tolerance)
    return out


def _describe_offending(rgb: np.ndarray, mask: np.ndarray, source: str, hint: str) -> str:
    px = rgb[mask].astype(np.int64)
    packed = (px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2]
    vals, counts = np.unique(packed, return_counts=True)
    order = np.argsort(-counts)[:5]
    cols = ", ".join(f"rgb({v >> 16},{(v >> 8) & 255},{v & 255}) x{c}" for v, c in zip(vals[order], counts[order],
                                                                                        strict=True))
    more = f" and {len(vals) - 5} more colours" if len(vals) > 5 else ""
    rows, cs = np.nonzero(mask)
    first = int(np.argmin(rows * mask.shape[1] + cs))
    return (f"{source}: {int(mask.sum())} pixels are far from every {hint} colour ({cols}{more}) in rows "
            f"{rows.min()}-{rows.max()}, columns {cs.min()}-{cs.max()} (first at row {rows[first]}, column "
            f"{cs[first]})")


def snap_colours(rgb: np.ndarray, colours: np.ndarray, ids: np.ndarray, *,
                 tolerance: float = DEFAULT_COLOUR_TOLERANCE, alpha: np.ndarray | None = None,
                 source: str = "sketch", hint: str = "sketch", advice: str = "") -> SnapResult:
    """Snap a colour image ``(H, W, 3)`` to a colour table: ``colours`` ``(K, 3)`` -> ``ids`` ``(K,)``.

    1. Pixels within ``tolerance`` (Euclidean RGB) of a table colour, and not a blend of two
       different neighbours (:func:`_edge_blend`), are *confident* and take that colour's id.
    2. Other pixels whose colour lies near a blend of two table colours (anti-aliasing, JPEG
       noise) take the id of the nearest confident pixel within ``EDGE_RADIUS_PX``.
    3. The rest are off-table. Isolated specks are filled like (2) from any distance; a blob of
       ``BULK_BLOB_PX`` pixels or more, or more than ``BULK_FRACTION`` of the image, raises an
       :class:`IvusSimError` naming the colours, their counts and where they are.

    Args:
        rgb: ``(H, W, 3)`` colour image.
        colours: ``(K, 3)`` table colours; ``ids``: ``(K,)`` uint8 value for each.
        tolerance: colour distance (0-441) for a confident match.
        alpha: optional ``(H, W)`` alpha channel; fully transparent pixels (< 128) become ``OUTSIDE``.
        source, hint, advice: wording of error messages (file name, table name, what to do).
    """
    if not tolerance > 0:
        raise IvusSimError(f"colour tolerance must be positive, got {tolerance}")
    img = np.asarray(rgb, dtype=np.uint8)
    h, w = img.shape[:2]
    pal = np.asarray(colours, dtype=np.float64)
    ids = np.asarray(ids, dtype=np.uint8)

    packed = (img[..., 0].astype(np.int64) << 16) | (img[..., 1].astype(np.int64) << 8) | img[..., 2]
    uniq, inverse = np.unique(packed.ravel(), return_inverse=True)
    ucol = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.float64)
    dist = np.linalg.norm(ucol[:, None, :] - pal[None, :, :], axis=-1)
    nearest = dist.argmin(axis=1)
    near_ok = dist.min(axis=1) <= tolerance
    blend_ok = near_ok | (_segment_distance(ucol, pal) <= tolerance)

    labels = ids[nearest][inverse].reshape(h, w)
    in_pal = near_ok[inverse].reshape(h, w)
    in_blend = blend_ok[inverse].reshape(h, w)
    transparent = np.zeros((h, w), bool) if alpha is None else np.asarray(alpha) < 128
    labels[transparent] = Tissue.OUTSIDE

    confident = (in_pal & ~_edge_blend(img.astype(np.float64), tolerance)) | transparent
    if not confident.any():
        raise IvusSimError(f"{source}: no pixel is within the colour tolerance of a {hint} colour{advice}")
    dist_px, (ri, ci) = ndimage.distance_transform_edt(~confident, return_indices=True)
    from_nearest = labels[ri, ci]
    edge = ~confident & in_blend & (dist_px <= EDGE_RADIUS_PX)
    offending = ~confident & ~edge
    if offending.any():
        comp, _ = ndimage.label(offending, structure=np.ones((3, 3)))
        biggest = int(np.bincount(comp.ravel())[1:].max())
        if biggest >= BULK_BLOB_PX or offending.mean() > BULK_FRACTION:
            raise IvusSimError(_describe_offending(img, offending, source, hint) + advice)
    out = np.where(confident, labels, from_nearest).astype(np.uint8)
    return SnapResult(out, float(confident.mean()), float(edge.mean()), float(offending.mean()))


def snap_to_palette(rgb: np.ndarray, *, tolerance: float = DEFAULT_COLOUR_TOLERANCE,
                    alpha: np.ndarray | None = None, source: str = "sketch") -> SnapResult:
    """Turn a colour sketch ``(H, W, 3)`` into tissue ids with the sketch palette (see :func:`snap_colours`)."""
    return snap_colours(rgb, palette_array(), np.array(PALETTE_IDS, dtype=np.uint8), tolerance=tolerance,
                        alpha=alpha, source=source, hint="sketch",
                        advice="; repaint them in the palette (`ivus-sim phantom palette`) or raise "
                               "--colour-tolerance")


# --------------------------------------------------------------------------- format readers


@dataclass
class _Raw:
    labels: np.ndarray  # (F, H, W) integer-valued (any dtype)
    kind: str
    fov_mm: float | None = None
    frame_mm: float | None = None
    extra: dict[str, Any] | None = None


def _photo_message(rgb: np.ndarray, source: str) -> str | None:
    """Why a colour image looks like a photograph rather than a sketch (``None`` when it looks like a sketch)."""
    from ivus_sim.geometry import fov_mask

    h, w = rgb.shape[:2]
    x = rgb.astype(np.float32)
    mean = ndimage.uniform_filter(x, size=(3, 3, 1))
    sq = ndimage.uniform_filter(x * x, size=(3, 3, 1))
    std = np.sqrt(np.clip(sq - mean * mean, 0.0, None)).max(axis=-1)
    n = min(h, w)
    disc = np.zeros((h, w), bool)
    disc[(h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n] = fov_mask(n)
    flat = float((std[disc] < _FLAT_STD).mean())
    spread = np.abs(x[..., 0] - x[..., 1]) + np.abs(x[..., 1] - x[..., 2])
    grey = float((spread[disc] <= 12).mean()) > 0.99
    levels = len(np.unique(rgb[..., 1][disc]))
    if flat < MIN_FLAT_FRACTION or (grey and levels > 32 and flat < MIN_FLAT_FRACTION_GREY):
        kind = "greyscale photograph or ultrasound image" if grey else "photograph"
        return (f"{source}: this looks like a {kind} ({levels} {'grey' if grey else 'green'} levels, only "
                f"{flat:.0%} of the field of view is flat colour), not a sketch in the palette colours or a label "
                "map; see `ivus-sim phantom palette`")
    return None


def _check_label_values(arr: np.ndarray, source: str) -> None:
    """Refuse photographs / greyscale images passed as label maps (many values that are not ids)."""
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise IvusSimError(f"{source}: label map contains NaN or Inf values")
    vals = np.unique(arr)
    unknown = [v for v in vals.tolist() if not (float(v).is_integer() and int(v) in VALID_IDS)]
    if unknown and len(vals) > MAX_LABEL_LEVELS:
        raise IvusSimError(f"{source}: this looks like a photograph or greyscale image ({len(vals)} distinct grey "
                           "levels), not a label map of tissue ids; pass a colour sketch in the palette or a label "
                           "map whose pixel values are tissue ids (see `ivus-sim phantom palette`)")


def _read_image(path: Path, tolerance: float, source: str) -> _Raw:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            n_frames = int(getattr(im, "n_frames", 1))
            frames = []
            for i in range(n_frames):
                im.seek(i)
                im.load()
                frames.append(im.copy())
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, zlib.error,
            Image.DecompressionBombError) as e:
        detail = str(e).split("\n")[0] or type(e).__name__
        raise IvusSimError(f"{source}: cannot read the image (truncated or not a {_ext(path)} file: {detail})") \
            from None
    first = frames[0]
    if first.mode == "P":
        has_alpha = "transparency" in first.info
        frames = [f.convert("RGBA" if has_alpha else "RGB") for f in frames]
        first = frames[0]
    if first.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        if len(frames) > 1:
            raise IvusSimError(f"{source}: multi-page colour images are not supported; use one sketch per frame "
                               "or a label-map pullback (NIfTI / multi-page label TIFF)")
        alpha = np.asarray(first.getchannel("A")) if first.mode == "RGBA" else None
        rgb = np.asarray(first.convert("RGB"))
        grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        if grey and 2 <= len(np.unique(rgb[..., 0])) and int(rgb.max()) <= max(i for i in VALID_IDS if i < 255):
            return _Raw(rgb[None, ..., 0], "label image (grey RGB)")  # ids saved as an RGB image
        photo = _photo_message(rgb, source) if min(rgb.shape[:2]) >= 8 else None
        if photo:
            raise IvusSimError(photo)
        snap = snap_to_palette(rgb, tolerance=tolerance, alpha=alpha, source=source)
        return _Raw(snap.labels[None], "sketch", extra={"confident_fraction": round(snap.confident, 4),
                                                        "edge_filled_fraction": round(snap.edge_filled, 4),
                                                        "stray_filled_fraction": round(snap.stray_filled, 4)})
    arrays = []
    for f in frames:
        if f.mode in ("LA", "La", "PA"):
            f = f.getchannel(0)
        if f.mode == "1":
            f = f.convert("L")
        a = np.asarray(f)
        if a.ndim != 2:
            raise IvusSimError(f"{source}: unsupported image mode {f.mode!r}")
        arrays.append(a)
    if len({a.shape for a in arrays}) > 1:
        raise IvusSimError(f"{source}: the pages of this TIFF have different sizes")
    stack = np.stack(arrays)
    _check_label_values(stack, source)
    return _Raw(stack, "label image")


def _read_nifti(path: Path, source: str) -> _Raw:
    import nibabel as nib

    try:
        img: Any = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except (OSError, EOFError, zlib.error, ValueError, nib.filebasedimages.ImageFileError) as e:
        detail = str(e).split("\n")[0] or type(e).__name__
        raise IvusSimError(f"{source}: cannot read the NIfTI file (truncated or corrupt: {detail})") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise IvusSimError(f"{source}: expected a 2-D image or a 3-D pullback, got {data.ndim}-D data of shape "
                           f"{data.shape}")
    vol = data.T if data.ndim == 2 else data.transpose(2, 1, 0)  # (col,row[,frame]) -> ([frame,]row,col)
    vol = np.ascontiguousarray(vol)
    if vol.ndim == 2:
        vol = vol[None]
    _check_label_values(vol, source)
    header: Any = img.header
    zooms = header.get_zooms()
    unit = header.get_xyzt_units()[0]
    scale = {"mm": 1.0, "meter": 1000.0, "micron": 0.001}.get(str(unit), 1.0)
    fov = frame = None
    if len(zooms) >= 2 and zooms[0] > 0 and math.isclose(zooms[0], zooms[1], rel_tol=1e-3):
        cand = float(zooms[0]) * scale * vol.shape[-1]
        if _PLAUSIBLE_FOV_MM[0] <= cand <= _PLAUSIBLE_FOV_MM[1]:
            fov = cand
    if data.ndim == 3 and len(zooms) >= 3 and zooms[2] > 0:
        frame = float(zooms[2]) * scale
    return _Raw(vol, "nifti", fov_mm=fov, frame_mm=frame)


def _read_npy(path: Path, source: str) -> _Raw:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        detail = str(e).split("\n")[0] or type(e).__name__
        raise IvusSimError(f"{source}: cannot read the .npy file (truncated, pickled or not NumPy data: {detail})") \
            from None
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise IvusSimError(f"{source}: array has dtype {arr.dtype}; expected integer tissue ids")
    if arr.ndim not in (2, 3):
        raise IvusSimError(f"{source}: expected a 2-D label map or a 3-D (frames, N, N) pullback, got {arr.ndim}-D "
                           f"data of shape {arr.shape}")
    if arr.size == 0:
        raise IvusSimError(f"{source}: the array is empty (shape {arr.shape})")
    vol = arr if arr.ndim == 3 else arr[None]
    _check_label_values(vol, source)
    return _Raw(vol, "npy")


# --------------------------------------------------------------------------- resampling


def _square(vol: np.ndarray, pad: bool, source: str) -> tuple[np.ndarray, bool]:
    f, h, w = vol.shape
    if h == w:
        return vol, False
    if not pad:
        raise IvusSimError(f"{source}: phantom is {w}x{h} pixels (width x height), not square; crop it to a square "
                           "centred on the catheter, or pass --pad / pad=True to pad it with background")
    n = max(h, w)
    out = np.full((f, n, n), int(Tissue.OUTSIDE), dtype=vol.dtype)
    r0, c0 = (n - h) // 2, (n - w) // 2
    out[:, r0:r0 + h, c0:c0 + w] = vol
    return out, True


def _resample_nearest(vol: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resampling of ``(F, n, n)`` to ``(F, size, size)`` (pixel-centre aligned)."""
    n = vol.shape[-1]
    if n == size:
        return vol
    idx = np.minimum(((np.arange(size) + 0.5) * n / size).astype(np.int64), n - 1)
    return vol[:, idx[:, None], idx[None, :]]


# --------------------------------------------------------------------------- public API


def read_phantom(path: str | Path, *, size: int | None = 256, fov_mm: float | None = None, pad: bool = False,
                 colour_tolerance: float = DEFAULT_COLOUR_TOLERANCE) -> Phantom:
    """Read a phantom from a sketch, label image, NIfTI volume or ``.npy`` array.

    Args:
        path: the file (see the module docstring for formats).
        size: working side ``N`` in pixels (nearest-neighbour resampling); ``None`` keeps the native size.
        fov_mm: field-of-view diameter [mm]; default from a NIfTI header when plausible, else 10 mm.
        pad: pad non-square input to a square (centred, background) instead of refusing it.
        colour_tolerance: Euclidean RGB distance for snapping sketch colours (see :func:`snap_to_palette`).

    Returns:
        A validated, finalised :class:`Phantom` ``(F, N, N)``; ``meta`` records the reader, format,
        native shape, padding, the field-of-view source and, for sketches, snapping statistics.

    Raises:
        IvusSimError: missing/empty/unreadable file, unsupported extension, wrong dimensionality,
            NaN, unknown ids, off-palette colours, a photograph, non-square input, no lumen.
    """
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise IvusSimError(f"phantom file not found: {source}")
    if p.is_dir():
        raise IvusSimError(f"{source} is a directory; pass one phantom file (batch commands accept folders)")
    ext = _ext(p)
    if ext not in PHANTOM_EXTENSIONS:
        raise IvusSimError(f"{source}: unsupported phantom file type {ext or '(no extension)'!r}; "
                           f"expected one of {', '.join(PHANTOM_EXTENSIONS)}")
    if p.stat().st_size == 0:
        raise IvusSimError(f"{source}: the file is empty")
    if size is not None and size < 8:
        raise IvusSimError(f"size must be at least 8 pixels, got {size}")
    if fov_mm is not None and not (fov_mm > 0 and math.isfinite(fov_mm)):
        raise IvusSimError(f"field of view must be a positive number of mm, got {fov_mm}")

    if ext == ".npy":
        raw = _read_npy(p, source)
    elif ext in (".nii", ".nii.gz"):
        raw = _read_nifti(p, source)
    else:
        raw = _read_image(p, colour_tolerance, source)

    native = tuple(int(s) for s in raw.labels.shape)
    vol, padded = _square(raw.labels, pad, source)
    if vol.shape[-1] < MIN_LABEL_SIZE:
        n = vol.shape[-1]
        raise IvusSimError(f"{source}: phantom is {n} x {n} px; a phantom needs at least {MIN_LABEL_SIZE} x "
                           f"{MIN_LABEL_SIZE} px")
    vol = _resample_nearest(vol, size or vol.shape[-1])
    fov = fov_mm if fov_mm is not None else (raw.fov_mm if raw.fov_mm is not None else DEFAULT_FOV_MM)
    fov_source = "argument" if fov_mm is not None else ("nifti header" if raw.fov_mm is not None else "default")
    meta: dict[str, Any] = {"reader": "ivus_sim.phantom.read_phantom", "path": source, "format": raw.kind,
                            "native_shape": list(native), "padded": padded, "fov_source": fov_source}
    if raw.frame_mm is not None:
        meta["frame_mm"] = raw.frame_mm
    if raw.extra:
        meta["snapping"] = {**raw.extra, "colour_tolerance": colour_tolerance}
    return Phantom.from_array(vol, fov_mm=fov, source=source, meta=meta)


def list_phantom_files(path: str | Path) -> list[Path]:
    """The phantom files in a folder (sorted by name; sidecars and hidden files skipped), or ``[path]``."""
    p = Path(path)
    if not p.exists():
        raise IvusSimError(f"not found: {path}")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.iterdir()
                   if f.is_file() and not f.name.startswith(".") and _ext(f) in PHANTOM_EXTENSIONS)
    if not files:
        raise IvusSimError(f"{path}: no phantom files ({', '.join(PHANTOM_EXTENSIONS)}) in this folder")
    return files


def read_phantoms(path_or_dir: str | Path, **kwargs: Any) -> Iterator[Phantom]:
    """Read one phantom file, or every phantom file in a folder in name order (``kwargs`` as :func:`read_phantom`)."""
    for f in list_phantom_files(path_or_dir):
        yield read_phantom(f, **kwargs)


def write_phantom(path: str | Path, phantom: Phantom) -> Path:
    """Write a phantom atomically, with a JSON sidecar (``phantom.to_dict()``).

    ``.png``: 8-bit label image of tissue ids (single frame only); ``.nii``/``.nii.gz``: NIfTI with
    spacing in mm (any number of frames); ``.npy``: the ``(F, N, N)`` uint8 array.
    """
    p = Path(path)
    ext = _ext(p)
    labels = np.asarray(phantom.labels, dtype=np.uint8)
    if ext == ".png":
        if phantom.n_frames != 1:
            raise IvusSimError(f"{p}: a {phantom.n_frames}-frame pullback cannot be a PNG; write .nii.gz or .npy")
        save_png(p, labels[0])
    elif ext in (".nii", ".nii.gz"):
        save_nifti(p, labels, phantom.geometry.pixel_mm, float(phantom.meta.get("frame_mm", 1.0)))
    elif ext == ".npy":
        def _save(fh: Any) -> None:
            buf = io.BytesIO()
            np.save(buf, labels, allow_pickle=False)
            fh.write(buf.getvalue())

        atomic_write(p, _save)
    else:
        raise IvusSimError(f"{p}: cannot write a phantom as {ext or '(no extension)'!r}; use .png, .nii.gz or .npy")
    write_json(sidecar_path(p), phantom.to_dict())
    return p
