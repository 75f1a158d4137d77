"""Outputs of every generating command: plan -> check -> atomic write -> one sidecar schema -> one command.

Every command that writes images (``generate``, ``simulate``, ``explore``, ``corpus``, ``augment``)
goes through this module, in this order:

1. **Path rule** (:func:`resolve_out`): an ``--out`` ending in an image suffix (``.png``,
   ``.nii.gz``, ...) names ONE file, allowed where the command makes one image; anything else
   names a folder. An ``--out`` that cannot work (an existing regular file used as a folder, an
   existing folder used as a file, one file for many images) is a one-line
   :class:`~ivus_sim.errors.IvusSimError` (exit 2) before anything is read or loaded.
2. **Plan** (:class:`PlannedOutput`): every output is a sidecar ``<base>.json`` plus its files,
   and the *request* that makes it (a JSON-able dict of everything that determines its pixels).
3. **Check** (:meth:`OutputPlan.check`), BEFORE any heavy work (model load, simulation): stale
   hidden temp files of a killed run are removed; an output whose sidecar holds the same request
   and whose files all exist, as its checksums say, is *done* and skipped (an identical rerun completes, i.e. resumes);
   an output whose sidecar holds the same request but lacks files (or whose files do not match the
   checksums in its sidecar) is redone; any other existing file is a clash that needs ``--overwrite``.
4. **Atomic write** (:func:`write_output`): every file goes to a hidden temp file beside it, then
   the sidecar is written (atomically), then the files are renamed into place. So an image never
   exists without its sidecar, and a run killed at any point leaves only complete outputs, hidden
   temp files (cleaned by the next run) and sidecars whose files are missing (redone by the next run).
5. **One sidecar schema** (:func:`make_sidecar`, :data:`SCHEMA`, :data:`SCHEMA_VERSION`) and **one
   reproducing command** (:func:`reproducing_command`).

Using it in a command (``augment`` does the same with its own names and request)::

    target = resolve_out(out, n_images)                        # 1. the path rule
    items = [PlannedOutput(folder / f"{name}.json", [folder / f"{name}.png"],
                           {"command": "mine", "seed": seed, "index": i, "input": input_hash})
             for i, name in enumerate(names)]                  # 2. plan
    plan = OutputPlan(items)
    todo = plan.check(overwrite)                               # 3. check (raises; [] when all done)
    model = load_heavy_model()                                 #    heavy work only now
    command = reproducing_command("mine", {"out": out.resolve(), "seed": seed})
    for item in todo:                                          # 4. + 5. write
        image, record = make_one(item.request["index"])
        write_output(item, {item.files[0]: png_writer(image)}, make_sidecar(item, record, command))
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.io import clean_stale_temps, commit, json_default, temp_path, write_json, write_nifti, write_png

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "IMAGE_SUFFIXES",
    "OutKind",
    "OutTarget",
    "image_suffix",
    "strip_image_suffix",
    "input_stem",
    "resolve_out",
    "reproducing_command",
    "PlannedOutput",
    "OutputPlan",
    "make_sidecar",
    "write_output",
    "png_writer",
    "nifti_writer",
    "stage_to_uint8",
    "normalise",
    "file_checksum",
    "ImageFormat",
    "ImageLayout",
    "ImageJob",
    "plan_images",
    "write_images",
]

#: the ``schema`` field of every sidecar written through this module
SCHEMA = "ivus-sim/output"
#: bumped when the sidecar layout changes (readers check it)
SCHEMA_VERSION = 1
#: file name endings that mean "one image file" (longest first: ``.nii.gz`` before ``.gz``)
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy")


# ------------------------------------------------------------------------------------ the path rule
class OutKind(str, Enum):
    """What ``--out`` names."""

    FILE = "file"  # one image file (an image suffix)
    FOLDER = "folder"


@dataclass(frozen=True)
class OutTarget:
    """A resolved ``--out``: ``path``, its ``kind``, and for a file its image ``suffix``."""

    path: Path
    kind: OutKind
    suffix: str = ""

    @property
    def folder(self) -> Path:
        """The folder outputs go into (the file's parent for a file)."""
        return self.path.parent if self.kind is OutKind.FILE else self.path

    @property
    def base(self) -> Path:
        """For a file target: the path without its image suffix (``out/x.png`` -> ``out/x``)."""
        return self.path.with_name(strip_image_suffix(self.path.name)) if self.kind is OutKind.FILE else self.path


def image_suffix(path: str | Path) -> str:
    """The image suffix of a path (lower case, ``".nii.gz"`` counted whole), or ``""``.

    >>> image_suffix("a/x.PNG"), image_suffix("x.nii.gz"), image_suffix("out/"), image_suffix("run.v2")
    ('.png', '.nii.gz', '', '')
    """
    name = Path(path).name.lower()
    return next((s for s in IMAGE_SUFFIXES if name.endswith(s) and len(name) > len(s)), "")


def strip_image_suffix(name: str) -> str:
    """``"x.nii.gz"`` -> ``"x"``, ``"x.png"`` -> ``"x"``; other names unchanged."""
    suf = image_suffix(name)
    return name[: len(name) - len(suf)] if suf else name


def input_stem(path: str | Path) -> str:
    """An input file's name without its extension, ``.nii.gz`` counted whole (output names start with it).

    >>> input_stem("ph/pullback.nii.gz"), input_stem("a/sketch.v2.jpg"), input_stem("labels.npy")
    ('pullback', 'sketch.v2', 'labels')
    """
    name = Path(path).name
    stripped = strip_image_suffix(name)
    return stripped if stripped != name else Path(name).stem


def resolve_out(out: str | Path, n_images: int | None, *, option: str = "--out",
                suffixes: Sequence[str] | None = None) -> OutTarget:
    """THE path rule of every command: an image suffix means one file, otherwise a folder.

    Args:
        out: the user's ``--out``.
        n_images: how many images the command will make (``None``: not known yet; a file target
            is then accepted and the caller must check later).
        option: the option's name, for messages.
        suffixes: image suffixes this command can write to a single file (default: any of
            :data:`IMAGE_SUFFIXES`).

    Raises:
        IvusSimError: a file target for several images, a file target with a suffix the command
            cannot write, a file target that is an existing folder, a folder target that is an
            existing regular file, or a parent that is a file.

    >>> resolve_out("out", 4).kind.value, resolve_out("x.png", 1).kind.value
    ('folder', 'file')
    """
    p = Path(out)
    suf = image_suffix(p)
    if suf:
        if suffixes is not None and suf not in suffixes:
            raise IvusSimError(f"{option} {p}: this command writes {' or '.join(suffixes)} files, not {suf}; "
                               "or give a folder")
        if p.is_dir():
            raise IvusSimError(f"{option} {p} is an existing folder, but a name ending in {suf} means one image "
                               "file; remove the suffix to write into the folder")
        if n_images is not None and n_images != 1:
            raise IvusSimError(f"{option} {p} names one image file, but this makes {n_images} images; "
                               "give a folder instead")
        _check_parents(p.parent, option, p)
        return OutTarget(p, OutKind.FILE, suf)
    if p.exists() and not p.is_dir():
        raise IvusSimError(f"{option} {p} is an existing file, not a folder; give a folder (or an image file "
                           "name such as out.png where one image is made)")
    _check_parents(p, option, p)
    return OutTarget(p, OutKind.FOLDER)


def _check_parents(folder: Path, option: str, shown: Path) -> None:
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise IvusSimError(f"{option} {shown}: {parent} is a file, not a folder")
            return


# ------------------------------------------------------------------------------------ the command
def reproducing_command(command: str, options: Mapping[str, Any], positional: Sequence[str | Path] = ()) -> str:
    """THE reproducing command line: ``ivus-sim <command> [positional] --opt value ...``.

    Options are written in the given order; ``None`` and ``False`` are left out, ``True`` writes
    the bare flag, a list or tuple writes its items after one flag. Keys are option names without
    the leading dashes (``fov_mm`` -> ``--fov-mm``), or full flags (``"--no-nurd"``). Paths should
    be absolute so the command works from any folder.

    >>> reproducing_command("generate", {"phantom": "/d/a b.png", "n": 4, "save_stages": True, "z": None})
    "ivus-sim generate --phantom '/d/a b.png' --n 4 --save-stages"
    """
    parts = ["ivus-sim", *command.split(), *(str(p) for p in positional)]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = key if key.startswith("--") else "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            parts += [flag, *(str(v) for v in value)]
        else:
            parts += [flag, str(value.value if isinstance(value, Enum) else value)]
    return shlex.join(parts)


# ------------------------------------------------------------------------------------ plan and check
def normalise(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples -> lists, numpy -> Python), for comparisons."""
    return json.loads(json.dumps(obj, default=json_default))


@dataclass
class PlannedOutput:
    """One output: its sidecar, its files, and the request that makes it.

    Args:
        sidecar: the JSON sidecar path (``<base>.json``).
        files: every other file this output writes (images, stages, ...).
        request: JSON-able description of everything that determines the output (inputs' hashes,
            seed, index, model identity, options); equal requests make equal outputs.
        key: free-form handle for the caller (e.g. ``(phantom, index)``).
    """

    sidecar: Path
    files: list[Path]
    request: dict[str, Any]
    key: Any = None
    state: str = field(default="new", init=False)  # new | done | redo | clash (set by OutputPlan.check)

    def paths(self) -> list[Path]:
        return [*self.files, self.sidecar]


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def file_checksum(path: str | Path) -> str:
    """First 16 hex digits of a file's sha256 (recorded in sidecars; resume verifies them)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _complete(item: PlannedOutput, side: Mapping[str, Any]) -> bool:
    sums = side.get("checksums")
    if not isinstance(sums, dict):
        return False
    for p in item.files:
        if not p.is_file() or sums.get(p.name) != file_checksum(p):
            return False
    return True


def _state(item: PlannedOutput) -> str:
    side = _read_sidecar(item.sidecar) if item.sidecar.is_file() else None
    if side is not None and side.get("schema") == SCHEMA and side.get("request") == normalise(item.request):
        return "done" if _complete(item, side) else "redo"  # ours: finished, or interrupted / damaged
    return "clash" if any(p.exists() for p in item.paths()) else "new"


class OutputPlan:
    """Every output of one command run (see the module docstring).

    Args:
        items: the planned outputs.
    """

    def __init__(self, items: Iterable[PlannedOutput]) -> None:
        self.items = list(items)
        self.done: list[PlannedOutput] = []
        self.todo: list[PlannedOutput] = []

    def check(self, overwrite: bool, hint: str = "pass --overwrite to replace, or choose another --out"
              ) -> list[PlannedOutput]:
        """Check the plan before any heavy work; returns the outputs still to write.

        Removes stale temp files in the output folders, marks outputs made by an identical
        request as done (skipped), and refuses (one-line :class:`IvusSimError`, ending with
        ``hint``) when another existing file would be replaced and ``overwrite`` is false, or when
        two outputs would write the same file.
        """
        seen: dict[Path, int] = {}
        for k, item in enumerate(self.items):
            for p in item.paths():
                q = Path(p).absolute()
                if q in seen and seen[q] != k:
                    raise IvusSimError(f"two outputs would write the same file {p}; rename one of the inputs")
                seen[q] = k
        for folder in sorted({p.parent for item in self.items for p in item.paths()}):
            clean_stale_temps(folder)
        for item in self.items:
            item.state = _state(item)
        clashes = [p for item in self.items if item.state == "clash" for p in item.paths() if p.exists()]
        if clashes and not overwrite:
            more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
            raise IvusSimError(f"{clashes[0]} exists{more} and was not made by this same request; {hint}")
        self.done = [i for i in self.items if i.state == "done"]
        self.todo = [i for i in self.items if i.state != "done"]
        return self.todo


# ------------------------------------------------------------------------------------ sidecar and write
def make_sidecar(item: PlannedOutput, record: Mapping[str, Any], command: str,
                 files: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """THE sidecar of an output (schema :data:`SCHEMA` version :data:`SCHEMA_VERSION`).

    Fields: ``schema``, ``schema_version``, then the generator's ``record`` (what was sampled:
    seed, index, codes, parameters... from which the output is regenerated), ``files`` (names
    relative to the sidecar's folder; default: every planned file), ``request`` (what resume
    compares) and ``command`` (the one reproducing command line). :func:`write_output` adds
    ``checksums`` (file name -> sha256 prefix) of the files it writes.
    """
    names = files if files is not None else {"all": [p.name for p in item.files]}
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **normalise(dict(record)),
            "files": normalise(dict(names)), "request": normalise(item.request), "command": command}


def write_output(item: PlannedOutput, writers: Mapping[Path, Callable[[Path], Any]],
                 sidecar: Mapping[str, Any]) -> None:
    """Write one output: files to hidden temps, then the sidecar, then the files renamed into place.

    Args:
        item: the planned output (its old files, if any, are removed before the new sidecar appears,
            so a sidecar never describes files of another request).
        writers: final path -> function writing that file to the path it is given (a temp path
            with the same suffixes), e.g. :func:`png_writer`.
        sidecar: the sidecar dict (:func:`make_sidecar`).
    """
    temps: dict[Path, Path] = {}
    try:
        for path, write in writers.items():
            tmp = temp_path(path)
            temps[Path(path)] = tmp
            write(tmp)
        sums = {path.name: file_checksum(tmp) for path, tmp in temps.items()}
        if item.state in ("clash", "redo"):
            for p in item.paths():
                if p.is_file() and p != item.sidecar:
                    p.unlink()
        write_json(item.sidecar, {**sidecar, "checksums": sums})
        for path, tmp in temps.items():
            commit(tmp, path)
        item.state = "done"
    finally:
        for tmp in temps.values():
            if tmp.exists():
                tmp.unlink()


def png_writer(image: np.ndarray) -> Callable[[Path], Any]:
    """A writer for :func:`write_output`: ``image`` (uint8 ``(H, W)`` or ``(H, W, 3)``) as PNG."""
    return lambda p: write_png(p, image)


def nifti_writer(volume: np.ndarray, pixel_mm: float, frame_mm: float = 1.0) -> Callable[[Path], Any]:
    """A writer for :func:`write_output`: ``(H, W)`` / ``(F, H, W)`` data as NIfTI (spacing in mm)."""
    return lambda p: write_nifti(p, volume, pixel_mm, frame_mm)


def stage_to_uint8(stage: np.ndarray, inside: np.ndarray | None = None) -> tuple[np.ndarray, list[float]]:
    """An intermediate stage (float) -> uint8 for saving, and the ``[lo, hi]`` mapped onto 0..255.

    One rule for every engine: values already in [0, 1] (display values, the stage-1 mean) are
    kept; signed data (scatterers, RF) map ``[-s, s]`` with ``s`` the 99.5th percentile of
    ``|x|``; other amplitudes (envelope, TGC) map ``[0, p99.5]``. Pixels outside ``inside`` are 0.
    """
    a = np.asarray(stage, dtype=np.float64)
    m = np.ones(a.shape[-2:], bool) if inside is None else np.asarray(inside, bool)
    vals = a[..., m]
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0:
        rng = [0.0, 1.0]
    elif lo < 0.0:
        s = max(float(np.percentile(np.abs(vals), 99.5)), 1e-12)
        rng = [-s, s]
    else:
        rng = [0.0, max(float(np.percentile(vals, 99.5)), 1e-12)]
    scaled = (a - rng[0]) / (rng[1] - rng[0])
    out = np.clip(np.floor(scaled * 255.0 + 0.5), 0, 255).astype(np.uint8)
    out[..., ~m] = 0
    return out, rng


# ------------------------------------------------------------------------------------ image files
class ImageFormat(str, Enum):
    """Image file format of the generating commands."""

    AUTO = "auto"  # PNG for single frames, NIfTI for pullbacks
    PNG = "png"
    NIFTI = "nifti"
    BOTH = "both"


@dataclass(frozen=True)
class ImageLayout:
    """The files of one generated image (one naming rule for ``generate`` and ``simulate``).

    For a base path ``out/x`` and a tag (``""`` for the image, ``"_stage_<name>"`` for a stage,
    ``"_polar"`` for the polar image): ``out/x<tag>.nii.gz`` (one volume), ``out/x<tag>.png`` (one
    frame) or ``out/x<tag>_f0000.png``, ``..._f0001.png`` (the frames of a pullback).

    Args:
        png: write PNG(s).
        nifti: write a NIfTI volume.
        stages: names of intermediate stages to write (each with the image's formats).
        polar: also write the polar image(s) as PNG.
    """

    png: bool = True
    nifti: bool = False
    stages: tuple[str, ...] = ()
    polar: bool = False

    @staticmethod
    def _names(base: Path, tag: str, frames: int, png: bool, nifti: bool) -> list[Path]:
        out = [base.with_name(base.name + tag + ".nii.gz")] if nifti else []
        if png:
            out += [base.with_name(base.name + tag + ".png")] if frames == 1 else [
                base.with_name(f"{base.name}{tag}_f{f:04d}.png") for f in range(frames)]
        return out

    @classmethod
    def for_format(cls, fmt: ImageFormat | str, frames: int, *, stages: Sequence[str] = (), polar: bool = False
                   ) -> ImageLayout:
        """The layout of ``fmt`` for an image of ``frames`` frames (``auto``: PNG for 1 frame, else NIfTI)."""
        f = ImageFormat(fmt)
        png = f in (ImageFormat.PNG, ImageFormat.BOTH) or (f is ImageFormat.AUTO and frames == 1)
        nii = f in (ImageFormat.NIFTI, ImageFormat.BOTH) or (f is ImageFormat.AUTO and frames > 1)
        return cls(png=png, nifti=nii, stages=tuple(stages), polar=polar)

    def tags(self) -> list[tuple[str, str, bool, bool]]:
        """``(role, tag, png, nifti)`` for the image, each stage and the polar image."""
        t = [("image", "", self.png, self.nifti)]
        t += [(f"stage:{s}", f"_stage_{s}", self.png, self.nifti) for s in self.stages]
        if self.polar:
            t.append(("polar", "_polar", True, False))
        return t

    def files(self, base: Path, frames: int) -> list[Path]:
        """Every file (not the sidecar) of the image at ``base`` with ``frames`` frames."""
        return [p for _, tag, png, nii in self.tags() for p in self._names(base, tag, frames, png, nii)]

    def writers(self, base: Path, image: np.ndarray, *, pixel_mm: float, frame_mm: float = 1.0,
                stages: Mapping[str, np.ndarray] | None = None, polar: np.ndarray | None = None,
                inside: np.ndarray | None = None) -> tuple[dict[Path, Callable[[Path], Any]], dict[str, Any]]:
        """Writers for :func:`write_output` and the sidecar's ``files`` entry.

        Args:
            base: base path (no suffix).
            image: uint8 ``(N, N)`` or ``(F, N, N)``.
            pixel_mm: pixel spacing [mm]; frame_mm: frame spacing [mm] (NIfTI header).
            stages: float stages by name, same shape as ``image`` (converted by :func:`stage_to_uint8`).
            polar: float polar images in [0, 1], ``(A, S)`` or ``(F, A, S)``.
            inside: the field-of-view mask ``(N, N)`` (stage pixels outside are 0).
        """
        writers: dict[Path, Callable[[Path], Any]] = {}
        files: dict[str, Any] = {}

        def add(tag: str, data: np.ndarray, png: bool, nii: bool) -> list[str]:
            names = []
            frames = 1 if data.ndim == 2 else data.shape[0]
            for p in self._names(base, tag, frames, png=False, nifti=nii):
                writers[p] = nifti_writer(data, pixel_mm, frame_mm)
                names.append(p.name)
            if png:
                pngs = self._names(base, tag, frames, png=True, nifti=False)
                for p, fr in zip(pngs, [data] if data.ndim == 2 else list(data), strict=True):
                    writers[p] = png_writer(fr)
                    names.append(p.name)
            return names

        files["image"] = add("", np.asarray(image, np.uint8), self.png, self.nifti)
        if self.stages:
            files["stages"] = {}
            for s in self.stages:
                if stages is None or s not in stages:
                    raise IvusSimError(f"stage {s!r} was not computed")
                u8, rng = stage_to_uint8(stages[s], inside)
                files["stages"][s] = {"files": add(f"_stage_{s}", u8, self.png, self.nifti), "value_range": rng}
        if self.polar:
            if polar is None:
                raise IvusSimError("the polar image was not computed")
            pu8 = np.clip(np.floor(np.asarray(polar, np.float64) * 255 + 0.5), 0, 255).astype(np.uint8)
            files["polar"] = add("_polar", pu8, True, False)
        return writers, files


# ------------------------------------------------------------------------------------ generated images
@dataclass
class ImageJob:
    """The images of one phantom that one command makes.

    Args:
        phantom: the validated phantom (:class:`~ivus_sim.phantom.Phantom`).
        bases: base path (no suffix) of image ``i`` for ``i in range(len(bases))``.
        request: what makes these images besides the phantom and the image index (engine, model
            identity, seed, options); the phantom's hash and the index are added per image.
        layout: the files of each image (:class:`ImageLayout`).
    """

    phantom: Any
    bases: list[Path]
    request: dict[str, Any]
    layout: ImageLayout
    items: list[PlannedOutput] = field(default_factory=list)


def plan_images(jobs: Sequence[ImageJob]) -> OutputPlan:
    """The :class:`OutputPlan` of every image of every job (call :meth:`OutputPlan.check` next)."""
    items: list[PlannedOutput] = []
    for j, job in enumerate(jobs):
        job.items = []
        for i, base in enumerate(job.bases):
            req = {**job.request, "phantom_hash": job.phantom.hash(), "index": i}
            item = PlannedOutput(base.with_name(base.name + ".json"), job.layout.files(base, job.phantom.n_frames), req,
                                 key=(j, i))
            job.items.append(item)
            items.append(item)
    return OutputPlan(items)


def write_images(sim: Any, jobs: Sequence[ImageJob], *, seed: int, commands: Sequence[str],
                 z: Any = None, progress: bool = False, extra: Mapping[str, Any] | None = None) -> int:
    """Generate the images still to do (after :meth:`OutputPlan.check`) and write them; returns how many.

    Image ``i`` of a job is ``sim.generate(phantom, seed=seed, first_index=i)``'s image (so a
    resumed run makes exactly the pixels an uninterrupted one makes); contiguous runs of missing
    indices are generated together.

    Args:
        sim: a :class:`~ivus_sim.simulator.Simulator`.
        jobs: planned jobs (:func:`plan_images`).
        seed: the one seed.
        commands: the reproducing command line of each job (:func:`reproducing_command`), in every sidecar.
        z: a fixed latent code (learned engine), or None.
        progress: show a progress bar (stderr).
        extra: more fields for every sidecar's record (e.g. the phantom's path).
    """
    from ivus_sim.geometry import fov_mask

    todo = [(job, [it for it in job.items if it.state != "done"]) for job in jobs]
    total = sum(len(t) for _, t in todo)
    bar = None
    if progress and total:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=total, desc="generate", unit="img", file=sys.stderr)
    written = 0
    try:
        for (job, items), command in zip(todo, commands, strict=True):
            ph, layout = job.phantom, job.layout
            runs: list[list[PlannedOutput]] = []
            for it in items:
                if runs and runs[-1][-1].key[1] == it.key[1] - 1:
                    runs[-1].append(it)
                else:
                    runs.append([it])
            frame_mm = float(ph.meta.get("frame_mm", 1.0)) if isinstance(ph.meta, dict) else 1.0
            inside = fov_mask(ph.geometry.size)
            for run in runs:
                res = sim.generate(ph, n=len(run), seed=seed, z=z, first_index=run[0].key[1],
                                   return_stages=bool(layout.stages), return_polar=layout.polar)
                for k, it in enumerate(run):
                    base = job.bases[it.key[1]]
                    writers, files = layout.writers(
                        base, res.images[k], pixel_mm=ph.geometry.pixel_mm, frame_mm=frame_mm,
                        stages={s: v[k] for s, v in res.stages.items()}, inside=inside,
                        polar=res.polar[k] if res.polar is not None else None)
                    rec = {**res.records[k], **(extra or {})}
                    write_output(it, writers, make_sidecar(it, rec, command, files))
                    written += 1
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return written
