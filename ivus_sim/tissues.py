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
    present = np.unique(labels)
    return [int(v) for v in present if int(v) not in VALID_IDS]


def colourise(labels: np.ndarray) -> np.ndarray:
    """Map a label map ``(..., H, W)`` of tissue ids to sketch colours ``(..., H, W, 3)`` uint8."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for t, info in TISSUES.items():
        lut[int(t)] = info.colour
    return lut[np.asarray(labels, dtype=np.uint8)]
