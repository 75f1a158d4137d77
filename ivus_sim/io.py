"""Output I/O: atomic writes, JSON sidecars, PNG and NIfTI images.

Every file the toolkit writes goes through :func:`atomic_write` (temp file in the same
folder, fsync, then ``os.replace``), so an interrupted run never leaves a partial or
corrupted output. Every generated image gets a JSON sidecar (``<name>.json``) from which
it can be regenerated.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import IO, Any

import numpy as np

from ivus_sim.errors import IvusSimError

__all__ = [
    "atomic_write",
    "atomic_path",
    "temp_path",
    "commit",
    "clean_stale_temps",
    "write_json",
    "sidecar_path",
    "save_png",
    "save_nifti",
    "write_png",
    "write_nifti",
    "array_hash",
    "json_default",
    "check_writable",
]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


#: hidden temp files of :func:`temp_path`: ``.<name>.<pid>-<random>.tmp<suffixes>``
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp(\..*)?$")
#: temp files of older versions (no pid): removed when older than this [s]
_OLD_TEMP_AGE_S = 3600.0
_OLD_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\..*)?$")


def temp_path(path: str | Path) -> Path:
    """A new, empty hidden temp file beside ``path`` (same folder, so a rename is atomic).

    Its name carries this process's id (``.<name>.<pid>-<random>.tmp<suffixes>``), so
    :func:`clean_stale_temps` can tell the leftovers of a killed run from a live run's files.
    Publish it with :func:`commit`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp" + "".join(path.suffixes),
                               dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: str | Path, path: str | Path) -> Path:
    """Publish a finished temp file: fsync, ordinary permissions, then ``os.replace`` onto ``path``."""
    tmp, path = Path(tmp), Path(path)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get ordinary permissions
    os.replace(tmp, path)
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(folder: str | Path, *, recursive: bool = False, exclusive: bool = False) -> list[Path]:
    """Remove the hidden temp files that a killed run (``kill -9``, power loss) left in ``folder``.

    A temp file is stale when the process named in it no longer runs (temp files of a live
    process, e.g. a parallel run into the same folder, are kept); a temp file of an older version
    (no process id in its name) when it is over an hour old.

    Args:
        folder: the folder to clean (missing: nothing to do).
        recursive: also clean its sub-folders.
        exclusive: the caller owns the folder (no other process writes there: a training run
            folder being resumed), so every temp file in it is stale.

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.rglob(".*") if recursive else folder.iterdir():
        name = p.name
        if not name.startswith(".") or ".tmp" not in name:
            continue
        m = _TEMP_RE.match(name)
        try:
            if exclusive:
                stale = True
            elif m is not None:
                stale = not _pid_alive(int(m.group("pid")))
            else:
                stale = bool(_OLD_TEMP_RE.match(name)) and now - p.stat().st_mtime > _OLD_TEMP_AGE_S
            if stale and p.is_file():
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    tmp_path = temp_path(path)
    try:
        yield tmp_path
        commit(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` atomically: ``write`` receives a binary file handle on a temp file."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return path


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for the toolkit's records: numpy scalars/arrays, torch tensors,
    paths, enums, and objects with ``to_dict()``."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if type(o).__module__.startswith("torch") and hasattr(o, "tolist"):  # tensors, without importing torch
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Enum):
        return o.value
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, default=json_default, sort_keys=False) + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of an output file: ``img.png`` -> ``img.json``, ``img.nii.gz`` -> ``img.json``."""
    path = Path(path)
    name = path.name
    for suf in (".nii.gz", ".nii", ".png", ".npy", ".tif", ".tiff"):
        if name.endswith(suf):
            name = name[: -len(suf)]
            break
    return path.with_name(name + ".json")


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Refuse to clobber an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise IvusSimError(f"{path} exists; pass --overwrite to replace it")
    return path


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a ``(H, W)`` uint8 (or ``(H, W, 3)``) image as PNG to ``path`` as is (not atomic; see :func:`save_png`)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"save_png expects uint8, got {arr.dtype}")
    with open(path, "wb") as fh:
        Image.fromarray(arr).save(fh, format="PNG")
    return Path(path)


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Save a ``(H, W)`` uint8 (or ``(H, W, 3)``) image as PNG, atomically, without metadata."""
    with atomic_path(path) as tmp:
        write_png(tmp, image)
    return Path(path)


def write_nifti(path: str | Path, volume: np.ndarray, pixel_mm: float, frame_mm: float = 1.0) -> Path:
    """Write ``(H, W)`` or ``(F, H, W)`` data as NIfTI to ``path`` as is (not atomic; see :func:`save_nifti`).

    ``path`` must end in ``.nii`` or ``.nii.gz`` (which selects compression).
    Axis convention: NIfTI ``(x, y, z)`` = (column, row, frame), i.e. the array is stored as
    ``volume.transpose(2, 1, 0)``; :func:`ivus_sim.phantom.read_phantom` reads it back the same way.
    """
    import nibabel as nib

    vol = np.asarray(volume)
    if vol.ndim == 2:
        vol = vol[None]
    data = np.ascontiguousarray(vol.transpose(2, 1, 0))
    affine = np.diag([pixel_mm, pixel_mm, frame_mm, 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))
    return Path(path)


def save_nifti(path: str | Path, volume: np.ndarray, pixel_mm: float, frame_mm: float = 1.0) -> Path:
    """Save ``(H, W)`` or ``(F, H, W)`` data as NIfTI with spacing in mm, atomically (see :func:`write_nifti`)."""
    suffix = ".nii.gz" if str(path).endswith(".gz") else ".nii"
    with atomic_path(path) as tmp:
        tmp_n = tmp.with_name(tmp.name + suffix) if not tmp.name.endswith(suffix) else tmp
        write_nifti(tmp_n, volume, pixel_mm, frame_mm)
        if tmp_n != tmp:
            os.replace(tmp_n, tmp)
    return Path(path)


def array_hash(a: np.ndarray) -> str:
    """sha256 of an array's shape, dtype and bytes (first 16 hex digits)."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
    return h.hexdigest()[:16]
