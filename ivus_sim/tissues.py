"""The tissue table: the one place that owns tissue ids, names and sketch colours.

Tissue ids are fixed (other tools and datasets depend on them); nothing else in the
toolkit hard-codes an id or a colour. Import :class:`Tissue` and :data:`TISSUES`.

Sketch colours follow the Okabe-Ito colour-blind-safe palette where possible and the
VH-IVUS conventions where a clinician expects them (fibrous green, necrotic core red,
dense calcium white, media grey, lumen black).

>>> Tissue.LUMEN.value
1
>>> TISSUES[Tissue.DENSE_CALCIUM].colour
(255, 255, 255)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

__all__ = [
    "Tissue",
    "TissueInfo",
    "TISSUES",
    "VALID_IDS",
    "PALETTE_IDS",
    "palette_array",
    "tissue_by_name",
    "check_ids",
    "validate_labels",
    "MIN_LABEL_SIZE",
    "colourise",
]


class Tissue(IntEnum):
    """Tissue ids of a phantom label map (uint8)."""

    PERIVASCULAR = 0
    LUMEN = 1
    FIBROUS = 2
    FIBRO_FATTY = 3
    NECROTIC_CORE = 4
    DENSE_CALCIUM = 5
    MEDIA = 6
    CATHETER = 7
    GUIDEWIRE = 8
    STENT_STRUT = 9
    OUTSIDE = 255


@dataclass(frozen=True)
class TissueInfo:
    """Description of one tissue class.

    Args:
        tissue: the id.
        name: snake_case name used in files, configs and reports.
        colour: sketch colour as (R, G, B), 0-255.
        description: one line for legends and docs.
    """

    tissue: Tissue
    name: str
    colour: tuple[int, int, int]
    description: str


TISSUES: dict[Tissue, TissueInfo] = {
    t.tissue: t
    for t in (
        TissueInfo(Tissue.PERIVASCULAR, "perivascular", (204, 121, 167),
                   "outside the external elastic membrane (adventitia and beyond)"),
        TissueInfo(Tissue.LUMEN, "lumen", (0, 0, 0), "blood"),
        TissueInfo(Tissue.FIBROUS, "fibrous", (0, 158, 115), "intima / fibrous plaque"),
        TissueInfo(Tissue.FIBRO_FATTY, "fibro_fatty", (240, 228, 66), "fibro-fatty plaque"),
        TissueInfo(Tissue.NECROTIC_CORE, "necrotic_core", (213, 94, 0), "lipid-rich necrotic core"),
        TissueInfo(Tissue.DENSE_CALCIUM, "dense_calcium", (255, 255, 255),
                   "dense calcium: casts an acoustic shadow, may reverberate"),
        TissueInfo(Tissue.MEDIA, "media", (128, 128, 128), "media: thin hypo-echoic ring"),
        TissueInfo(Tissue.CATHETER, "catheter", (0, 114, 178),
                   "imaging catheter (placed at the centre automatically when absent)"),
        TissueInfo(Tissue.GUIDEWIRE, "guidewire", (86, 180, 233), "guidewire: bright echo with shadow"),
        TissueInfo(Tissue.STENT_STRUT, "stent_strut", (230, 0, 230), "stent strut: bright echo with shadow"),
        TissueInfo(Tissue.OUTSIDE, "outside", (64, 64, 64), "outside the field of view"),
    )
}

VALID_IDS: frozenset[int] = frozenset(int(t) for t in Tissue)
#: tissues whose interior is the tissue's own speckle (texture comparisons between samples use these):
#: not the lumen, the catheter, the outside, nor the thin bright reflectors (guidewire, stent strut)
SPECKLE_TISSUES: tuple[Tissue, ...] = (Tissue.PERIVASCULAR, Tissue.FIBROUS, Tissue.FIBRO_FATTY, Tissue.NECROTIC_CORE,
                                       Tissue.DENSE_CALCIUM, Tissue.MEDIA)
#: ids in palette order (row i of :func:`palette_array` is the colour of ``PALETTE_IDS[i]``)
PALETTE_IDS: tuple[int, ...] = tuple(int(t) for t in TISSUES)


def palette_array() -> np.ndarray:
    """Sketch colours as a ``(len(PALETTE_IDS), 3)`` uint8 array, rows in ``PALETTE_IDS`` order."""
    return np.array([TISSUES[Tissue(i)].colour for i in PALETTE_IDS], dtype=np.uint8)


def tissue_by_name(name: str) -> Tissue:
    """Look a tissue up by its snake_case name (case-insensitive)."""
    for info in TISSUES.values():
        if info.name == name.lower():
            return info.tissue
    raise KeyError(f"unknown tissue name {name!r}; known: {', '.join(i.name for i in TISSUES.values())}")


def check_ids(labels: np.ndarray) -> list[int]:
    """Return the sorted list of values in ``labels`` that are not tissue ids (empty when valid)."""
    arr = np.asarray(labels)
    if arr.dtype == np.uint8:  # marking the 256 possible values is faster than sorting for large pullbacks
        seen = np.zeros(256, dtype=bool)
        seen[arr.ravel()] = True
        present = np.flatnonzero(seen)
    else:
        present = np.unique(arr)
    return [int(v) for v in present if int(v) not in VALID_IDS]


#: smallest accepted side of a label map [pixels]
MIN_LABEL_SIZE = 8


def validate_labels(labels: Any, where: str = "labels", *, require_lumen: bool = False) -> np.ndarray:
    """The one label-map rule: return ``labels`` as uint8 ``(F, N, N)`` tissue ids, or raise.

    Accepted: a numpy array or torch tensor of shape ``(N, N)`` or ``(F, N, N)``, square,
    ``N >= 8``, ``F >= 1``, integer dtype, or floating point holding only finite whole numbers
    (NIfTI label volumes are often stored as float), every value a tissue id of :data:`TISSUES`.
    With ``require_lumen`` every frame must contain a ``LUMEN`` pixel (a phantom needs a vessel).

    Args:
        labels: the label map or pullback.
        where: names the input in the message (a path, ``"--labels"``, ``"label map"``).
        require_lumen: also require a lumen in every frame.

    Raises:
        IvusSimError: one line starting with ``where``; unknown ids point to
            ``ivus-sim phantom palette``.
    """
    from ivus_sim.errors import IvusSimError

    if hasattr(labels, "detach") and hasattr(labels, "cpu"):  # a torch tensor, without importing torch
        labels = labels.detach().cpu().numpy()
    try:
        arr = np.asarray(labels)
    except (TypeError, ValueError):
        raise IvusSimError(f"{where}: not an array of tissue ids ({type(labels).__name__})") from None
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise IvusSimError(f"{where}: expected an (N, N) label map or (F, N, N) pullback, got shape {arr.shape}")
    if arr.shape[-1] != arr.shape[-2]:
        raise IvusSimError(f"{where}: label frames must be square, got {arr.shape[-2]}x{arr.shape[-1]}")
    if arr.shape[-1] < MIN_LABEL_SIZE:
        raise IvusSimError(f"{where}: label map of side {arr.shape[-1]} is too small (at least {MIN_LABEL_SIZE} "
                           "pixels)")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise IvusSimError(f"{where}: label map has dtype {arr.dtype}; expected integer tissue ids")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise IvusSimError(f"{where}: label map contains NaN or Inf values; expected integer tissue ids")
        if not np.array_equal(arr, np.round(arr)):
            raise IvusSimError(f"{where}: label map has non-integer values; expected integer tissue ids")
    if arr.dtype != np.uint8:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > 255:
            bad_vals = np.unique(arr[(arr < 0) | (arr > 255)])
            shown = ", ".join(f"{v:g}" for v in bad_vals[:10].astype(float))
            raise IvusSimError(f"{where}: unknown tissue ids {shown} (values must be tissue ids 0-255); see "
                               "`ivus-sim phantom palette` for the tissue table")
        arr = arr.astype(np.uint8)
    bad = check_ids(arr)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise IvusSimError(f"{where}: unknown tissue ids {shown} ({len(bad)} distinct); see `ivus-sim phantom "
                           "palette` for the tissue table")
    if require_lumen:
        for i, f in enumerate(arr):
            if not (f == Tissue.LUMEN).any():
                frame = f" (frame {i})" if arr.shape[0] > 1 else ""
                raise IvusSimError(f"{where}: phantom has no lumen (tissue id {int(Tissue.LUMEN)}){frame}")
    return arr


def colourise(labels: np.ndarray) -> np.ndarray:
    """Map a label map ``(..., H, W)`` of tissue ids to sketch colours ``(..., H, W, 3)`` uint8."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for t, info in TISSUES.items():
        lut[int(t)] = info.colour
    return lut[np.asarray(labels, dtype=np.uint8)]
