"""Dataset layouts: where an image/label pair goes and what ``dataset.json`` says.

Two layouts, each in two file formats (:class:`ImageFormat`):

* :attr:`Layout.MONAI` (Medical Segmentation Decathlon style, read by
  :func:`monai.data.load_decathlon_datalist`)::

      DIR/dataset.json        {"name", "tensorImageSize": "2D", "modality": {"0": "IVUS"},
                               "labels": {"0": "background", ...}, "numTraining", "training": [...]}
      DIR/imagesTr/ivus_000000.nii.gz
      DIR/labelsTr/ivus_000000.nii.gz

* :attr:`Layout.NNUNET` (nnU-Net v2 raw dataset; name the folder ``DatasetXXX_Name``)::

      DIR/dataset.json        {"channel_names": {"0": "IVUS"}, "labels": {"background": 0, ...},
                               "numTraining", "file_ending": ".nii.gz"}
      DIR/imagesTr/ivus_000000_0000.nii.gz     (``_0000``: channel 0)
      DIR/labelsTr/ivus_000000.nii.gz

NIfTI files carry the pixel spacing (``fov_mm / N`` mm; see :func:`ivus_sim.io.save_nifti`
for the axis order); PNG files are 8-bit greyscale. Every image has a JSON sidecar beside
it (:func:`ivus_sim.io.sidecar_path`). All writes are atomic.

References:
    Antonelli et al., "The Medical Segmentation Decathlon", Nat. Commun. 13, 4128 (2022).
    Isensee et al., "nnU-Net", Nat. Methods 18, 203-211 (2021); nnU-Net v2
    ``documentation/dataset_format.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.augment.labels import LabelMapping
from ivus_sim.errors import IvusSimError
from ivus_sim.io import save_nifti, save_png, sidecar_path, write_json

__all__ = ["Layout", "ImageFormat", "CasePaths", "DatasetLayout", "CASE_PREFIX"]

CASE_PREFIX = "ivus"
MODALITY = "IVUS"


class Layout(str, Enum):
    """Folder layout and ``dataset.json`` flavour."""

    MONAI = "monai"
    NNUNET = "nnunet"


class ImageFormat(str, Enum):
    """File format of images and label maps."""

    PNG = "png"
    NIFTI = "nifti"

    @property
    def suffix(self) -> str:
        return ".png" if self is ImageFormat.PNG else ".nii.gz"


@dataclass(frozen=True)
class CasePaths:
    """Paths of one case, relative to the dataset root (POSIX strings, as written in manifests)."""

    case_id: str
    image: str
    label: str
    sidecar: str


@dataclass(frozen=True)
class DatasetLayout:
    """Writes cases and the ``dataset.json`` of one dataset folder.

    Args:
        root: the dataset folder.
        layout: MONAI (decathlon) or nnU-Net v2.
        fmt: PNG or NIfTI.
        mapping: the task labels the label maps are written in.
    """

    root: Path
    layout: Layout
    fmt: ImageFormat
    mapping: LabelMapping

    def __post_init__(self) -> None:
        if self.layout is Layout.NNUNET:
            if not self.mapping.is_consecutive:
                raise IvusSimError(f"nnU-Net layout needs consecutive label ids 0..K-1; label mapping"
                                   f" {self.mapping.name} has ids {sorted(self.mapping.ids)}")
            if self.mapping.labels[0].id != 0:
                raise IvusSimError("nnU-Net layout: the first label must be the background (id 0)")

    # -- one case -------------------------------------------------------------------------------
    @staticmethod
    def case_id(index: int) -> str:
        """Case identifier of output ``index`` (``ivus_000042``; more digits past 999999)."""
        return f"{CASE_PREFIX}_{index:06d}"

    def paths(self, index: int) -> CasePaths:
        case = self.case_id(index)
        suffix = self.fmt.suffix
        channel = "_0000" if self.layout is Layout.NNUNET else ""
        image = f"imagesTr/{case}{channel}{suffix}"
        return CasePaths(case, image, f"labelsTr/{case}{suffix}", sidecar_path(Path(image)).as_posix())

    def write_case(self, index: int, image: np.ndarray, label: np.ndarray, pixel_mm: float,
                   sidecar: dict[str, Any]) -> CasePaths:
        """Write one pair and its sidecar (sidecar last: its presence means the pair is whole).

        Args:
            index: output index.
            image: ``(N, N)`` uint8 image.
            label: ``(N, N)`` uint8 task label map (already mapped).
            pixel_mm: pixel spacing [mm] (NIfTI header).
            sidecar: JSON-able provenance written beside the image.
        """
        p = self.paths(index)
        img_path, lab_path = self.root / p.image, self.root / p.label
        if self.fmt is ImageFormat.PNG:
            save_png(img_path, image)
            save_png(lab_path, label)
        else:
            save_nifti(img_path, image, pixel_mm)
            save_nifti(lab_path, label, pixel_mm)
        write_json(self.root / p.sidecar, sidecar)
        return p

    def exists(self, paths: CasePaths) -> bool:
        return all((self.root / rel).is_file() for rel in (paths.image, paths.label, paths.sidecar))

    # -- dataset.json -----------------------------------------------------------------------------
    def dataset_json(self, cases: list[CasePaths], description: str, extra: dict[str, Any]) -> dict[str, Any]:
        """The ``dataset.json`` content for ``cases`` (in order)."""
        if self.layout is Layout.NNUNET:
            labels: dict[str, int] = {}
            for lab in self.mapping.labels:
                name = "background" if lab.id == 0 else lab.name
                labels[name] = lab.id
            return {
                "name": "ivus-sim synthetic IVUS",
                "description": description,
                "channel_names": {"0": MODALITY},
                "labels": labels,
                "numTraining": len(cases),
                "file_ending": self.fmt.suffix,
                **extra,
            }
        return {
            "name": "ivus-sim synthetic IVUS",
            "description": description,
            "tensorImageSize": "2D",
            "modality": {"0": MODALITY},
            "labels": {str(lab.id): lab.name for lab in self.mapping.labels},
            "numTraining": len(cases),
            "numTest": 0,
            # every entry is flagged synthetic, so it can be listed beside real cases in one datalist
            "training": [{"image": f"./{c.image}", "label": f"./{c.label}", "synthetic": True} for c in cases],
            "test": [],
            **extra,
        }

    def write_dataset_json(self, cases: list[CasePaths], description: str, extra: dict[str, Any]) -> Path:
        return write_json(self.root / "dataset.json", self.dataset_json(cases, description, extra))
