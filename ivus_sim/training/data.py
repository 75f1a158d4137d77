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
from ivus_sim.schema import ranged
from ivus_sim.stage1.targets import despeckle

__all__ = [
    "Layout",
    "PairRef",
    "discover",
    "load_pair",
    "data_fingerprint",
    "validate_pairs",
    "check_pairs",
    "LoadPolarPair",
    "make_dataset",
    "Augmentation",
    "augment",
    "collate",
    "TargetConfig",
    "polar_sample",
    "mirrored_window",
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
        try:
            shape_i = nib.load(str(img)).shape  # type: ignore[attr-defined]
            shape_l = nib.load(str(lab)).shape  # type: ignore[attr-defined]
        except Exception:  # undecodable: one pair, so dataset validation names the file (or --skip-bad drops it)
            out.append(PairRef(img, lab, Layout.NIFTI, frame=0))
            continue
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
def _read_rgb(path: Path) -> np.ndarray:
    """A colour map (VH export) as ``(H, W, 3)`` uint8; one-line error when it cannot be decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise IvusSimError(f"{path}: cannot decode image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                           ) from None


def _nifti_frame(path: Path, frame: int) -> np.ndarray:
    """One NIfTI frame as float32 grey levels in [0, 1], by the rule of :mod:`ivus_sim.image`."""
    from ivus_sim.image import MIN_FRAME_SIZE, grey_from_array

    a = np.asarray(_nifti_volume(str(path))[frame])
    out = grey_from_array(np.ascontiguousarray(a), f"{path} frame {frame}")
    if min(out.shape) < MIN_FRAME_SIZE:
        raise IvusSimError(f"{path}: frames are {out.shape[1]} x {out.shape[0]} px; IVUS frames must be at least "
                           f"{MIN_FRAME_SIZE} x {MIN_FRAME_SIZE}")
    return out


@lru_cache(maxsize=8)
def _label_volume(path: str) -> np.ndarray:
    """Label frames ``(F, N, N)`` of a label PNG (ids or sketch colours) or NIfTI volume, via the phantom reader."""
    from ivus_sim.phantom.reader import read_phantom

    return read_phantom(path, size=None).labels


@lru_cache(maxsize=8)
def _nifti_volume(path: str) -> np.ndarray:
    import nibabel as nib

    try:
        data = np.asanyarray(nib.load(path).dataobj)  # type: ignore[attr-defined]
    except Exception as e:  # truncated / corrupt volume (nibabel raises many kinds)
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise IvusSimError(f"{path}: cannot read NIfTI volume ({why})") from None
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise IvusSimError(f"{path}: expected a 2-D frame or a 3-D (x, y, frame) pullback, got shape {data.shape}")
    return np.ascontiguousarray(data[..., :].transpose(2, 1, 0))  # (F, rows, cols)


def load_pair(ref: PairRef) -> tuple[np.ndarray, np.ndarray]:
    """Read one pair as Cartesian ``(labels uint8 (N, N) finalised, image float32 (N, N) in [0, 1])``.

    Grey frames are read by :func:`ivus_sim.image.read_grey` (8-bit / 255, 16-bit / 65535: never by
    the frame's own maximum), label maps by the phantom reader (ids, sketch colours, NIfTI).

    Raises:
        IvusSimError: one line naming the bad file (empty, truncated, not an image, 1 x 1, unknown ids...).
    """
    from ivus_sim.image import read_grey

    if ref.layout in (Layout.PAIRS, Layout.FOLDERS):
        image = read_grey(ref.image)
        labels = _label_volume(str(ref.label))[0]
    elif ref.layout is Layout.VH:
        from ivus_sim.phantom.converters import vh_map_to_labels

        image = read_grey(ref.image)
        labels = vh_map_to_labels(_read_rgb(ref.label), source=str(ref.label))[0]
    elif ref.layout is Layout.CHALLENGE:
        from ivus_sim.phantom.converters import challenge_frame_to_phantom

        image = read_grey(ref.image)
        labels = challenge_frame_to_phantom(ref.image, ref.label, ref.extra[0]).labels[0]
    elif ref.layout is Layout.NIFTI:
        image = _nifti_frame(ref.image, ref.frame)
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


def validate_pairs(refs: Sequence[PairRef], progress: bool = False) -> tuple[list[PairRef], list[tuple[PairRef, str]]]:
    """Read every pair once (as training will) and sort them into ``(good, bad)``.

    ``bad`` holds ``(ref, one-line reason)`` for each pair whose image or label map cannot be used:
    empty, truncated, random bytes, a photograph, a 1 x 1 frame, unknown tissue ids, sizes that
    differ. Nothing is trained until this has passed (see :func:`check_pairs`).
    """
    from tqdm.auto import tqdm

    good: list[PairRef] = []
    bad: list[tuple[PairRef, str]] = []
    for ref in tqdm(refs, desc="check data", unit="pair", disable=not progress, leave=False):
        try:
            load_pair(ref)
        except IvusSimError as e:
            bad.append((ref, str(e)))
        except Exception as e:  # a reader library's own failure (nibabel, PIL, ...): a bad file, not a bug here
            bad.append((ref, f"{ref.name}: cannot read ({str(e).splitlines()[0] if str(e) else type(e).__name__})"))
        else:
            good.append(ref)
    return good, bad


def check_pairs(refs: Sequence[PairRef], skip_bad: bool = False, progress: bool = False
                ) -> tuple[list[PairRef], list[str]]:
    """:func:`validate_pairs`, then refuse (or, with ``skip_bad``, drop) the bad pairs.

    Returns:
        ``(usable pairs, messages about the skipped ones)``.

    Raises:
        IvusSimError: one line naming the bad files (unless ``skip_bad``), or no usable pair left.
    """
    good, bad = validate_pairs(refs, progress)
    if bad and not skip_bad:
        first = bad[0][1]
        names = ", ".join(r.name for r, _ in bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
        raise IvusSimError(f"{len(bad)} of {len(refs)} training pairs cannot be used ({names}); first: {first}; "
                           "fix or remove them, or pass --skip-bad to train without them")
    if not good:
        raise IvusSimError(f"none of the {len(refs)} training pairs can be used; first: {bad[0][1]}")
    return good, [msg for _, msg in bad]


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

    sigma_angle: float = ranged(3.0, lo=0, lo_open=True)
    sigma_depth: float = ranged(2.0, lo=0, lo_open=True)


def polar_sample(labels: np.ndarray, image: np.ndarray, polar_shape: tuple[int, int],
                 target: TargetConfig = TargetConfig(), interp: Interp = Interp.BILINEAR) -> dict[str, torch.Tensor]:
    """One Cartesian pair -> polar training sample (``image`` uint8 display values, or float in [0, 1]).

    Images larger than ``2 * n_samples`` px are first area-averaged to that size (anti-aliasing
    the speckle before resampling); ``interp`` resamples the image (the model's
    ``scan_conversion``; labels always nearest). Returns ``labels (A, S)`` uint8, ``image`` and ``mean``
    ``(1, A, S)`` float32 in [0, 1].
    """
    a, s = polar_shape
    n = labels.shape[-1]
    arr = np.asarray(image)
    img = torch.as_tensor(arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32))
    img = torch.where(torch.as_tensor(np.array(fov_mask(n))), img, torch.zeros(()))
    lab = torch.as_tensor(labels)
    if n > 2 * s:
        img = F.interpolate(img[None, None], size=(2 * s, 2 * s), mode="area")[0, 0]
        lab = F.interpolate(lab[None, None].float(), size=(2 * s, 2 * s), mode="nearest")[0, 0].to(torch.uint8)
    lab_p = cart_to_polar(lab, a, s, Interp.NEAREST)
    img_p = cart_to_polar(img, a, s, interp)
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

    def __init__(self, polar_shape: tuple[int, int], target: TargetConfig = TargetConfig(),
                 interp: Interp = Interp.BILINEAR) -> None:
        self.polar_shape = polar_shape
        self.target = target
        self.interp = interp

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        labels, image = load_pair(data["ref"])
        return {**polar_sample(labels, image, self.polar_shape, self.target, self.interp), "index": data["index"]}


class _ArrayPairs(Transform):
    def __init__(self, polar_shape: tuple[int, int], target: TargetConfig, interp: Interp) -> None:
        self.polar_shape = polar_shape
        self.target = target
        self.interp = interp

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        lab = finalise_labels(np.asarray(data["labels"], dtype=np.uint8), Geometry(size=data["labels"].shape[-1]))
        return {**polar_sample(lab, data["image"], self.polar_shape, self.target, self.interp), "index": data["index"]}


def make_dataset(source: Sequence[PairRef] | tuple[np.ndarray, np.ndarray], polar_shape: tuple[int, int],
                 target: TargetConfig = TargetConfig(), progress: bool = False,
                 interp: Interp = Interp.BILINEAR) -> CacheDataset:
    """A MONAI ``CacheDataset`` of polar samples.

    Args:
        source: pair references from :func:`discover`, or in-memory arrays
            ``(labels (M, N, N) uint8, images (M, N, N) uint8)``.
        polar_shape: the model's polar grid.
        target: stage-1 target settings.
        progress: show MONAI's caching progress bar.
        interp: image resampling to the polar grid (the model's ``scan_conversion``).
    """
    if isinstance(source, tuple):
        labels, images = source
        if labels.shape != images.shape or labels.ndim != 3:
            raise IvusSimError(f"in-memory pairs need equal (M, N, N) shapes, got {labels.shape}, {images.shape}")
        data: list[dict[str, Any]] = [{"labels": labels[i], "image": images[i], "index": i}
                                      for i in range(labels.shape[0])]
        tf: Transform = _ArrayPairs(polar_shape, target, interp)
    else:
        data = [{"ref": r, "index": i} for i, r in enumerate(source)]
        tf = LoadPolarPair(polar_shape, target, interp)
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
            shadows and attenuation stay intact); ``None`` = the whole 360-degree frame. The
            networks pad the angle axis circularly (a frame is periodic); a bare window would
            wrap its last A-line onto its first, which never happens in a whole frame. So the
            window is mirrored into a periodic strip ``[window, reversed window]`` of
            ``2 * crop_angles`` lines: the circular padding then meets continuous tissue (a
            reflection, like reflect padding) instead of the far end of the window. Cost per
            sample ``2 * crop_angles / n_angles`` of a whole frame; a window of half the frame
            or more trains on the whole frame.
    """

    rotate: bool = True
    gain: float = ranged(0.1, lo=0, hi=1, hi_open=True)
    gamma: float = ranged(0.1, lo=0)
    elastic_prob: float = ranged(0.0, lo=0, hi=1)
    elastic_spacing: float = ranged(16.0, lo=0, lo_open=True)
    elastic_magnitude: float = ranged(1.0, lo=0)
    crop_angles: int | None = ranged(None, lo=1)


def _plain(t: Any) -> torch.Tensor:
    """A plain tensor (MONAI transforms return ``MetaTensor``)."""
    return t.as_tensor() if hasattr(t, "as_tensor") else torch.as_tensor(t)


def mirrored_window(t: torch.Tensor, start: int, width: int) -> torch.Tensor:
    """A-lines ``start .. start + width`` (wrapping) of ``t (..., A, S)`` followed by the same lines reversed.

    The result (``2 * width`` lines) is periodic without a jump: across either junction a line
    meets its own copy (symmetric padding), so a circularly padded convolution sees continuous
    content where a bare window would join its two far ends.
    """
    w = torch.roll(t, -start, dims=-2)[..., :width, :]
    return torch.cat([w, w.flip(-2)], dim=-2)


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
    if aug.crop_angles is not None and 2 * aug.crop_angles < lab.shape[-2]:
        lab, img, mean = (mirrored_window(t, crop_at, aug.crop_angles) for t in (lab, img, mean))
    return {"labels": torch.as_tensor(lab).contiguous(), "image": torch.as_tensor(img).contiguous(),
            "mean": torch.as_tensor(mean).contiguous()}


def collate(samples: Sequence[dict[str, torch.Tensor]], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Stack polar samples into a batch on ``device``."""
    return {k: torch.stack([torch.as_tensor(s[k]) for s in samples]).to(device) for k in ("labels", "image", "mean")}

