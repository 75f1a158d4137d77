"""Image sets for evaluation: folder conventions, loading, and the shared polar measurement frame.

Every realism measurement in :mod:`ivus_sim.metrics` is taken in one geometry: the
normalised polar frame over the field of view, ``N_ANGLES x N_SAMPLES = 360 x 160``
(A-line x depth), produced by :func:`ivus_sim.geometry.cart_to_polar` (bilinear for
images, nearest for label maps). Images of any size therefore compare: angle index ``k``
is ``k`` degrees, depth index ``j`` is at ``(j + 0.5) / 160`` of the disc radius. The
calibration figures (:mod:`ivus_sim.metrics.calibration`) use the reference's own 360 x 160
grid (radius 0.99 x N/2, radii from 0 to the edge); the two grids differ by under 1 % in
radius, so pixel-unit figures (speckle widths) compare.

Folder conventions (as ``shared/calibration/measure.py``, plus a generic one):

* ``frame_XX_image.png`` + ``frame_XX_label.png`` in the same folder; the frame name is
  ``frame_XX``;
* generic ``<name>.png`` images (any name not ending in ``_label``); their label maps are
  ``<name>_label.png`` or ``<name>.png`` in the labels folder. A name ending in a sample
  suffix ``_sNN`` / ``_sampleNN`` / ``_seedS_NNN`` (several samples of one phantom, as
  ``ivus-sim generate`` names them) falls back to the label map of the name without the suffix
  (:func:`base_name`), and pairs with the real frame of that name.

Images are read as 8-bit display values by :func:`ivus_sim.image.read_grey` (RGB is converted to
grey, 16-bit is scaled to 0-255 by its full scale 65535, frames under 16 x 16 px are refused);
label maps are read by :func:`ivus_sim.phantom.reader.read_phantom` (tissue ids of
:mod:`ivus_sim.tissues`, or colour sketches) and resampled to their image's size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Interp, cart_to_polar
from ivus_sim.image import read_grey
from ivus_sim.io import array_hash
from ivus_sim.tissues import TISSUES, Tissue

__all__ = [
    "N_ANGLES",
    "N_SAMPLES",
    "EVAL_TISSUES",
    "LUMEN_FAR",
    "RINGDOWN_FRACTION",
    "IMAGE_SUFFIXES",
    "ImageSet",
    "PolarSet",
    "base_name",
    "load_gray",
    "load_labels",
    "load_image_set",
    "to_polar",
    "tissue_masks",
    "tissue_values",
]

N_ANGLES, N_SAMPLES = 360, 160
#: tissues measured (name -> id), in tissue-table order; the same set as the calibration figures
EVAL_TISSUES: dict[str, int] = {
    TISSUES[t].name: int(t)
    for t in (Tissue.PERIVASCULAR, Tissue.LUMEN, Tissue.FIBROUS, Tissue.FIBRO_FATTY, Tissue.NECROTIC_CORE,
              Tissue.DENSE_CALCIUM, Tissue.MEDIA)
}
#: lumen beyond the catheter ring-down (derived region, as in the calibration figures)
LUMEN_FAR = "lumen_beyond_ringdown"
#: the ring-down lies within this fraction of the disc radius
RINGDOWN_FRACTION = 0.2
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
_SAMPLE_SUFFIX = re.compile(r"^(?P<base>.+?)(?:_(?:s|sample)\d+|_seed\d+_\d+)$")


@dataclass
class ImageSet:
    """A set of Cartesian display images with optional label maps.

    Args:
        names: frame names (file stems without ``_image``), one per image.
        images: ``(N, N)`` float64 display values in [0, 255] (sizes may differ between frames).
        labels: matching ``(N, N)`` uint8 tissue-id maps, or ``None`` where a frame has none.
        source: where the set came from (folder), for reports and messages.
        files: the image files, for the report sidecar.
    """

    names: list[str]
    images: list[np.ndarray]
    labels: list[np.ndarray | None]
    source: str = "array"
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.images) == len(self.labels)):
            raise ValueError("names, images and labels must have the same length")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def has_labels(self) -> bool:
        """True when every frame has a label map."""
        return len(self) > 0 and all(lab is not None for lab in self.labels)

    def fingerprint(self) -> dict[str, str]:
        """Name -> content hash of every image (recorded in the report so a run can be checked)."""
        return {n: array_hash(np.asarray(im)) for n, im in zip(self.names, self.images, strict=True)}


@dataclass
class PolarSet:
    """A set in the measurement frame.

    Args:
        names: frame names ``(F,)``.
        images: ``(F, 360, 160)`` float64 display values in [0, 255].
        labels: ``(F, 360, 160)`` uint8 tissue ids, or ``None`` for an unlabelled set.
    """

    names: list[str]
    images: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.names)


def load_gray(path: Path) -> np.ndarray:
    """Read an image as ``(H, W)`` float64 display values in [0, 255] (as the calibration reference).

    Decoded by :func:`ivus_sim.image.read_grey` (the one frame reader: 8-bit as is, 16-bit scaled by
    255 / 65535 whatever the frame's own maximum, colour as luma; frames under 16 x 16 px refused).
    """
    # via the 16-bit grid so 8-bit frames come back as exact integers (v * 257 / 257)
    return np.round(read_grey(path).astype(np.float64) * 65535.0) / 257.0


def load_labels(path: Path, size: int | None = None) -> np.ndarray:
    """Read a label map as ``(N, N)`` uint8 tissue ids, through the one phantom reader.

    Anything :func:`ivus_sim.phantom.reader.read_phantom` reads works (label PNG/TIFF of tissue ids,
    a colour sketch, NIfTI, ``.npy``); ``size`` resamples it (nearest) to the image it belongs to.
    """
    from ivus_sim.phantom.reader import read_phantom

    ph = read_phantom(path, size=size)
    if ph.n_frames != 1:
        raise IvusSimError(f"{path}: expected one label frame, got a {ph.n_frames}-frame pullback")
    return ph.label_map


def _discover(folder: Path) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        raise IvusSimError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    paired = [(p.stem[: -len("_image")], p) for p in files if p.stem.endswith("_image")]
    if paired:
        return paired
    return [(p.stem, p) for p in files if not p.stem.endswith("_label") and not p.name.startswith(".")]


def base_name(name: str) -> str:
    """The frame name without a sample suffix (``p01_seed0_002`` -> ``p01``, ``case_s3`` -> ``case``).

    A ``_label`` left before the suffix is dropped too (``frame_03_label_seed0_000`` -> ``frame_03``:
    images generated from the label map ``frame_03_label.png``).
    """
    m = _SAMPLE_SUFFIX.match(name)
    if not m:
        return name
    base = m.group("base")
    return base[: -len("_label")] if base.endswith("_label") else base


def _find_label(name: str, folders: Sequence[Path], image: Path) -> Path | None:
    candidates = list(dict.fromkeys([name, base_name(name)]))
    for cand in candidates:
        for folder in folders:
            for suffix in IMAGE_SUFFIXES:
                for stem in (f"{cand}_label", cand):
                    p = folder / f"{stem}{suffix}"
                    if p.is_file() and p.resolve() != image.resolve():
                        return p
    return None


def load_image_set(
    folder: str | Path,
    labels_dir: str | Path | None = None,
    fallback_labels: ImageSet | None = None,
    role: str = "images",
) -> ImageSet:
    """Load a folder of display images (and their label maps) following the folder conventions.

    Args:
        folder: the image folder.
        labels_dir: optional folder with label maps matched by name (``<name>_label.png`` or ``<name>.png``).
        fallback_labels: another set whose label maps are used for frames of the same name that
            have none of their own (simulated frames made from the real frames' label maps).
        role: what the folder is (``real`` / ``fake``), for error messages.

    Returns:
        The :class:`ImageSet` (labels ``None`` for frames without a label map).
    """
    folder = Path(folder)
    found = _discover(folder)
    if not found:
        raise IvusSimError(f"{role} folder {folder} holds no images (*.png, *.tif)")
    lab_folders = [folder] + ([Path(labels_dir)] if labels_dir is not None else [])
    fb = dict(zip(fallback_labels.names, fallback_labels.labels, strict=True)) if fallback_labels else {}
    names, images, labels, files = [], [], [], []
    for name, path in found:
        img = load_gray(path)
        if img.shape[0] != img.shape[1]:
            raise IvusSimError(f"{path}: images must be square (FOV disc inscribed), got {img.shape}")
        lp = _find_label(name, lab_folders, path)
        lab: np.ndarray | None
        if lp is not None:
            lab = load_labels(lp, size=img.shape[0])
        else:
            lab = fb.get(name)
            if lab is None:
                lab = fb.get(base_name(name))
        if lab is not None and lab.shape != img.shape:
            raise IvusSimError(f"{path}: image {img.shape} and its label map {lab.shape} differ in size")
        names.append(name)
        images.append(img)
        labels.append(lab)
        files.append(str(path))
    return ImageSet(names=names, images=images, labels=labels, source=str(folder), files=files)


def to_polar(images: ImageSet) -> PolarSet:
    """Resample a set to the measurement frame (360 x 160, see module docstring)."""
    pol = np.stack([np.asarray(cart_to_polar(np.asarray(im, dtype=np.float64), N_ANGLES, N_SAMPLES),
                               dtype=np.float64) for im in images.images])
    labs: np.ndarray | None = None
    if images.has_labels:
        labs = np.stack([np.asarray(cart_to_polar(np.asarray(lab, dtype=np.uint8), N_ANGLES, N_SAMPLES,
                                                  Interp.NEAREST)) for lab in images.labels if lab is not None])
    return PolarSet(names=list(images.names), images=pol, labels=labs)


def tissue_masks(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-tissue masks eroded by one pixel in the polar frame (as the calibration reference).

    Args:
        labels: ``(F, A, S)`` polar tissue ids.

    Returns:
        Name -> ``(F, A, S)`` bool mask, for :data:`EVAL_TISSUES` and :data:`LUMEN_FAR`
        (tissues absent from every frame are left out).
    """
    struct = np.zeros((3, 3, 3), dtype=bool)
    struct[1] = ndimage.generate_binary_structure(2, 1)  # erode within each frame only
    out: dict[str, np.ndarray] = {}
    for name, tid in EVAL_TISSUES.items():
        m = ndimage.binary_erosion(labels == tid, structure=struct, iterations=1)
        if m.any():
            out[name] = m
    if "lumen" in out:
        far = out["lumen"].copy()
        far[..., : int(RINGDOWN_FRACTION * labels.shape[-1])] = False
        if far.any():
            out[LUMEN_FAR] = far
    return out


def tissue_values(polar: PolarSet) -> dict[str, np.ndarray]:
    """Pooled display values per tissue (eroded masks, all frames): name -> ``(n_pixels,)`` float64."""
    if polar.labels is None:
        raise IvusSimError("per-tissue measurements need label maps (pass --labels DIR)")
    return {name: polar.images[m] for name, m in tissue_masks(polar.labels).items()}
