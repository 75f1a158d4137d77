"""Training data: dataset adapters, polar loading and paired augmentation.

Every adapter turns a folder into a list of :class:`PairRef` (an image and its label map, with a
frame index for pullbacks). :class:`LoadPolarPair` (a MONAI ``Transform``) loads one pair,
finalises the labels on the shared geometry, resamples both onto the model's polar grid and
computes the stage-1 target (:func:`ivus_sim.stage1.targets.despeckle`); a MONAI
``CacheDataset`` caches that deterministic part. :func:`augment` then applies the random
augmentations, identically to labels, image and target, from a seeded numpy generator (so a
resumed run sees exactly the same samples).

Layouts (:class:`Layout`, detected automatically by :func:`discover`):

* ``pairs``: one folder of ``<name>_image.png`` + ``<name>_label.png`` (label PNG: grayscale tissue
  ids, or sketch colours, read by :func:`ivus_sim.phantom.reader.read_phantom`). This is what
  ``ivus-sim corpus`` writes.
* ``folders``: ``images/`` and ``labels/`` sub-folders with matching file names (PNG).
* ``challenge``: the 2011 IVUS challenge layout, ``frame_*.png`` with ``lum_frame_*.txt`` and
  ``med_frame_*.txt`` contours anywhere below (paired by
  :func:`ivus_sim.phantom.converters.find_challenge_cases`, rasterised by
  :func:`~ivus_sim.phantom.converters.challenge_frame_to_phantom`).
* ``vh``: VH-IVUS exports, ``<name>_image.png`` (grayscale) + ``<name>_vh.png`` (colour tissue map,
  converted by :func:`ivus_sim.phantom.converters.vh_map_to_labels`).
* ``nifti``: pullbacks ``<name>_image.nii[.gz]`` + ``<name>_label.nii[.gz]`` (``(x, y, frame)``
  as written by :func:`ivus_sim.io.save_nifti`), one training pair per frame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import CacheDataset
from monai.transforms import Rand2DElasticd, Transform

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Geometry, Interp, cart_to_polar, fov_mask
from ivus_sim.phantom.phantom import finalise_labels
from ivus_sim.stage1.targets import despeckle

__all__ = [
    "Layout",
    "PairRef",
    "discover",
    "load_pair",
    "data_fingerprint",
    "LoadPolarPair",
    "make_dataset",
    "Augmentation",
    "augment",
    "collate",
    "TargetConfig",
    "polar_sample",
]


class Layout(str, Enum):
    """Folder layouts understood by :func:`discover`."""

    AUTO = "auto"
    PAIRS = "pairs"
    FOLDERS = "folders"
    CHALLENGE = "challenge"
    VH = "vh"
    NIFTI = "nifti"


@dataclass(frozen=True)
class PairRef:
    """One training pair on disk.

    Args:
        image: the image file (grayscale PNG or NIfTI volume).
        label: the label file (label PNG, VH colour map, NIfTI volume, or the lumen contour for the
            challenge layout).
        layout: how to read it.
        frame: frame index within a NIfTI pullback (0 otherwise).
        extra: further files (the media contour of the challenge layout).
    """

    image: Path
    label: Path
    layout: Layout
    frame: int = 0
    extra: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.image.name}#{self.frame}" if self.layout is Layout.NIFTI else self.image.name


def _nifti_stem(p: Path, suffix: str) -> str | None:
    for ext in (".nii.gz", ".nii"):
        if p.name.endswith(suffix + ext):
            return p.name[: -len(suffix + ext)]
    return None


def _discover_pairs(root: Path) -> list[PairRef]:
    out = []
    for img in sorted(root.glob("*_image.png")):
        lab = img.with_name(img.name[: -len("_image.png")] + "_label.png")
        if lab.exists():
            out.append(PairRef(img, lab, Layout.PAIRS))
    return out


def _discover_folders(root: Path) -> list[PairRef]:
    idir, ldir = root / "images", root / "labels"
    if not (idir.is_dir() and ldir.is_dir()):
        return []
    return [PairRef(img, ldir / img.name, Layout.FOLDERS) for img in sorted(idir.glob("*.png"))
            if (ldir / img.name).exists()]


def _discover_challenge(root: Path) -> list[PairRef]:
    from ivus_sim.phantom.converters import find_challenge_cases

    if not any(root.rglob("lum_*.txt")):
        return []
    cases, _ = find_challenge_cases(root)
    return [PairRef(c.frame, c.lumen, Layout.CHALLENGE, extra=(c.media,)) for c in cases]


def _discover_vh(root: Path) -> list[PairRef]:
    out = []
    for img in sorted(root.glob("*_image.png")):
        vh = img.with_name(img.name[: -len("_image.png")] + "_vh.png")
        if vh.exists():
            out.append(PairRef(img, vh, Layout.VH))
    return out


def _discover_nifti(root: Path) -> list[PairRef]:
    import nibabel as nib

    out = []
    for img in sorted(list(root.glob("*_image.nii.gz")) + list(root.glob("*_image.nii"))):
        stem = _nifti_stem(img, "_image")
        assert stem is not None
        lab = next((root / f"{stem}_label{ext}" for ext in (".nii.gz", ".nii")
                    if (root / f"{stem}_label{ext}").exists()), None)
        if lab is None:
            continue
        shape_i = nib.load(str(img)).shape  # type: ignore[attr-defined]
        shape_l = nib.load(str(lab)).shape  # type: ignore[attr-defined]
        if shape_i != shape_l:
            raise IvusSimError(f"{img.name} and {lab.name} have different shapes {shape_i} vs {shape_l}")
        n_frames = shape_i[2] if len(shape_i) >= 3 else 1
        out += [PairRef(img, lab, Layout.NIFTI, frame=f) for f in range(n_frames)]
    return out


_DISCOVER = {
    Layout.NIFTI: _discover_nifti,
    Layout.CHALLENGE: _discover_challenge,
    Layout.VH: _discover_vh,
    Layout.FOLDERS: _discover_folders,
    Layout.PAIRS: _discover_pairs,
}


def discover(root: str | Path, layout: Layout = Layout.AUTO) -> list[PairRef]:
    """List the training pairs under ``root`` (sorted, deterministic).

    Args:
        root: the data folder.
        layout: a specific :class:`Layout`, or ``AUTO`` to try each (NIfTI, challenge, VH, folders, pairs).

    Raises:
        IvusSimError: the folder does not exist or holds no pairs of the layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise IvusSimError(f"data folder {root} does not exist")
    layout = Layout(layout)
    if layout is not Layout.AUTO:
        refs = _DISCOVER[layout](root)
    else:
        refs = []
        for fn in _DISCOVER.values():
            refs = fn(root)
            if refs:
                break
    if not refs:
        raise IvusSimError(f"no training pairs found in {root} (layout {layout.value}); expected e.g. "
                           "<name>_image.png + <name>_label.png, see docs/training.md")
    return refs


# ------------------------------------------------------------------------------------------- loading
def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA", "P"):
                return np.asarray(im.convert("RGB"))
            if im.mode in ("I;16", "I;16B", "I"):
                return np.asarray(im).astype(np.int64)
            return np.asarray(im.convert("L"))
    except OSError as e:
        raise IvusSimError(f"cannot read image {path}: {e}") from None


def _to_gray(a: np.ndarray, path: Path) -> np.ndarray:
    if a.ndim == 3:
        a = a[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if a.dtype != np.uint8:
        hi = float(a.max()) if a.size else 1.0
        a = np.clip(np.round(a / (hi if hi > 255 else 1.0) * (255 if hi > 255 else 1.0)), 0, 255)
    return a.astype(np.uint8)


@lru_cache(maxsize=8)
def _label_volume(path: str) -> np.ndarray:
    """Label frames ``(F, N, N)`` of a label PNG (ids or sketch colours) or NIfTI volume, via the phantom reader."""
    from ivus_sim.phantom.reader import read_phantom

    return read_phantom(path, size=None).labels


@lru_cache(maxsize=8)
def _nifti_volume(path: str) -> np.ndarray:
    import nibabel as nib

    data = np.asanyarray(nib.load(path).dataobj)  # type: ignore[attr-defined]
    if data.ndim == 2:
        data = data[..., None]
    return np.ascontiguousarray(data[..., :].transpose(2, 1, 0))  # (F, rows, cols)


def load_pair(ref: PairRef) -> tuple[np.ndarray, np.ndarray]:
    """Read one pair as Cartesian ``(labels uint8 (N, N) finalised, image uint8 (N, N))``."""
    if ref.layout in (Layout.PAIRS, Layout.FOLDERS):
        image = _to_gray(_read_png(ref.image), ref.image)
        labels = _label_volume(str(ref.label))[0]
    elif ref.layout is Layout.VH:
        from ivus_sim.phantom.converters import vh_map_to_labels

        image = _to_gray(_read_png(ref.image), ref.image)
        labels = vh_map_to_labels(_read_png(ref.label), source=str(ref.label))[0]
    elif ref.layout is Layout.CHALLENGE:
        from ivus_sim.phantom.converters import challenge_frame_to_phantom

        image = _to_gray(_read_png(ref.image), ref.image)
        labels = challenge_frame_to_phantom(ref.image, ref.label, ref.extra[0]).labels[0]
    elif ref.layout is Layout.NIFTI:
        image = _to_gray(np.asarray(_nifti_volume(str(ref.image))[ref.frame]), ref.image)
        vol = _label_volume(str(ref.label))
        if ref.frame >= vol.shape[0]:
            raise IvusSimError(f"{ref.label} has {vol.shape[0]} frames, fewer than {ref.image.name}")
        labels = vol[ref.frame]
    else:  # pragma: no cover - AUTO is resolved by discover()
        raise IvusSimError(f"cannot load layout {ref.layout}")
    if labels.ndim == 3:
        labels = labels[0]
    if image.shape != labels.shape or image.shape[0] != image.shape[1]:
        raise IvusSimError(f"{ref.name}: image {image.shape} and label {labels.shape} must be the same square size")
    labels = finalise_labels(labels, Geometry(size=labels.shape[-1]))
    return labels, image


def data_fingerprint(refs: Sequence[PairRef]) -> str:
    """sha256 (first 16 hex digits) over the names and contents of every file of ``refs``."""
    h = hashlib.sha256()
    seen: set[Path] = set()
    for r in refs:
        h.update(f"{r.layout.value}|{r.name}|{r.frame}".encode())
        for p in (r.image, r.label, *r.extra):
            if p in seen:
                continue
            seen.add(p)
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class TargetConfig:
    """Stage-1 target despeckling widths (see :func:`ivus_sim.stage1.targets.despeckle`).

    Args:
        sigma_angle: lateral Gaussian width [A-lines].
        sigma_depth: axial Gaussian width [depth samples].
    """

    sigma_angle: float = 3.0
    sigma_depth: float = 2.0


def polar_sample(labels: np.ndarray, image: np.ndarray, polar_shape: tuple[int, int],
                 target: TargetConfig = TargetConfig()) -> dict[str, torch.Tensor]:
    """One Cartesian pair -> polar training sample.

    Images larger than ``2 * n_samples`` px are first area-averaged to that size (anti-aliasing
    the speckle before resampling). Returns ``labels (A, S)`` uint8, ``image`` and ``mean``
    ``(1, A, S)`` float32 in [0, 1].
    """
    a, s = polar_shape
    n = labels.shape[-1]
    img = torch.as_tensor(image, dtype=torch.float32) / 255.0
    img = torch.where(torch.as_tensor(np.array(fov_mask(n))), img, torch.zeros(()))
    lab = torch.as_tensor(labels)
    if n > 2 * s:
        img = F.interpolate(img[None, None], size=(2 * s, 2 * s), mode="area")[0, 0]
        lab = F.interpolate(lab[None, None].float(), size=(2 * s, 2 * s), mode="nearest")[0, 0].to(torch.uint8)
    lab_p = cart_to_polar(lab, a, s, Interp.NEAREST)
    img_p = cart_to_polar(img, a, s, Interp.BILINEAR)
    assert isinstance(lab_p, torch.Tensor) and isinstance(img_p, torch.Tensor)
    mean_p = despeckle(img_p[None], lab_p[None], target.sigma_angle, target.sigma_depth)[0]
    return {"labels": lab_p.contiguous(), "image": img_p[None].clamp(0, 1).contiguous(),
            "mean": mean_p[None].clamp(0, 1).contiguous()}


class LoadPolarPair(Transform):
    """MONAI transform: ``{"ref": PairRef}`` -> polar sample dict (see :func:`polar_sample`).

    Args:
        polar_shape: ``(n_angles, n_samples)`` of the model.
        target: stage-1 target settings.
    """

    def __init__(self, polar_shape: tuple[int, int], target: TargetConfig = TargetConfig()) -> None:
        self.polar_shape = polar_shape
        self.target = target

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        labels, image = load_pair(data["ref"])
        return {**polar_sample(labels, image, self.polar_shape, self.target), "index": data["index"]}


class _ArrayPairs(Transform):
    def __init__(self, polar_shape: tuple[int, int], target: TargetConfig) -> None:
        self.polar_shape = polar_shape
        self.target = target

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        lab = finalise_labels(np.asarray(data["labels"], dtype=np.uint8), Geometry(size=data["labels"].shape[-1]))
        return {**polar_sample(lab, data["image"], self.polar_shape, self.target), "index": data["index"]}


def make_dataset(source: Sequence[PairRef] | tuple[np.ndarray, np.ndarray], polar_shape: tuple[int, int],
                 target: TargetConfig = TargetConfig(), progress: bool = False) -> CacheDataset:
    """A MONAI ``CacheDataset`` of polar samples.

    Args:
        source: pair references from :func:`discover`, or in-memory arrays
            ``(labels (M, N, N) uint8, images (M, N, N) uint8)``.
        polar_shape: the model's polar grid.
        target: stage-1 target settings.
        progress: show MONAI's caching progress bar.
    """
    if isinstance(source, tuple):
        labels, images = source
        if labels.shape != images.shape or labels.ndim != 3:
            raise IvusSimError(f"in-memory pairs need equal (M, N, N) shapes, got {labels.shape}, {images.shape}")
        data: list[dict[str, Any]] = [{"labels": labels[i], "image": images[i], "index": i}
                                      for i in range(labels.shape[0])]
        tf: Transform = _ArrayPairs(polar_shape, target)
    else:
        data = [{"ref": r, "index": i} for i, r in enumerate(source)]
        tf = LoadPolarPair(polar_shape, target)
    return CacheDataset(data, transform=tf, num_workers=0, progress=progress, copy_cache=False)


# -------------------------------------------------------------------------------------- augmentation
@dataclass(frozen=True)
class Augmentation:
    """Random augmentation applied identically to labels, image and stage-1 target.

    Args:
        rotate: rotate about the catheter by a random angle (a circular shift of A-lines; exact).
        gain: intensity gain drawn from ``U(1 - gain, 1 + gain)``.
        gamma: intensity gamma drawn from ``exp(U(-gamma, gamma))``.
        elastic_prob: probability of a smooth elastic deformation (MONAI ``Rand2DElasticd``).
        elastic_spacing: control-point spacing [polar samples].
        elastic_magnitude: deformation magnitude range upper bound.
        crop_angles: train on a random window of this many consecutive A-lines (full depth, so
            shadows and attenuation stay intact); ``None`` = the whole frame. Cuts the cost per
            sample by ``n_angles / crop_angles``; the networks are convolutional, so the model
            still generates whole frames.
    """

    rotate: bool = True
    gain: float = 0.1
    gamma: float = 0.1
    elastic_prob: float = 0.0
    elastic_spacing: float = 16.0
    elastic_magnitude: float = 1.0
    crop_angles: int | None = None


def _plain(t: Any) -> torch.Tensor:
    """A plain tensor (MONAI transforms return ``MetaTensor``)."""
    return t.as_tensor() if hasattr(t, "as_tensor") else torch.as_tensor(t)


def augment(sample: dict[str, torch.Tensor], aug: Augmentation, g: np.random.Generator) -> dict[str, torch.Tensor]:
    """Apply ``aug`` to one polar sample with randomness from ``g`` (the same ``g`` state gives the same result)."""
    lab, img, mean = sample["labels"], sample["image"], sample["mean"]
    shift = int(g.integers(lab.shape[-2])) if aug.rotate else 0
    gain = float(g.uniform(1 - aug.gain, 1 + aug.gain)) if aug.gain > 0 else 1.0
    gamma = float(np.exp(g.uniform(-aug.gamma, aug.gamma))) if aug.gamma > 0 else 1.0
    do_elastic = bool(g.random() < aug.elastic_prob)
    elastic_seed = int(g.integers(2**31))
    crop_at = int(g.integers(lab.shape[-2]))
    if shift:
        lab, img, mean = (torch.roll(t, shift, dims=-2) for t in (lab, img, mean))
    if do_elastic:
        el = Rand2DElasticd(keys=("image", "mean", "labels"), spacing=aug.elastic_spacing,
                            magnitude_range=(0.0, aug.elastic_magnitude), prob=1.0,
                            mode=("bilinear", "bilinear", "nearest"), padding_mode="border")
        el.set_random_state(seed=elastic_seed)
        d = el({"image": img, "mean": mean, "labels": lab[None].float()})
        img = _plain(d["image"]).float()
        mean = _plain(d["mean"]).float()
        lab = _plain(d["labels"])[0].round().to(torch.uint8)
    if gain != 1.0 or gamma != 1.0:
        img = (gain * img.clamp_min(0) ** gamma).clamp(0, 1)
        mean = (gain * mean.clamp_min(0) ** gamma).clamp(0, 1)
    if aug.crop_angles is not None and aug.crop_angles < lab.shape[-2]:
        c = aug.crop_angles
        lab, img, mean = (torch.roll(t, -crop_at, dims=-2)[..., :c, :] for t in (lab, img, mean))
    return {"labels": torch.as_tensor(lab).contiguous(), "image": torch.as_tensor(img).contiguous(),
            "mean": torch.as_tensor(mean).contiguous()}


def collate(samples: Sequence[dict[str, torch.Tensor]], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Stack polar samples into a batch on ``device``."""
    return {k: torch.stack([torch.as_tensor(s[k]) for s in samples]).to(device) for k in ("labels", "image", "mean")}

