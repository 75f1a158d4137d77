"""Where the label maps of an augmentation run come from.

* random (default): output ``i`` uses ``random_phantom(seed, size, fov_mm, index=i)``, the
  same phantom ``ivus-sim phantom random --seed S`` numbers ``i``;
* a folder of the user's phantoms (``--phantoms DIR``, read by
  :func:`ivus_sim.phantom.reader.read_phantoms`): all frames of all phantoms, in reading order,
  are cycled through, output ``i`` using frame ``i mod n_frames`` (each with its own image seed,
  so repeated frames get fresh speckle). Phantoms are resampled (nearest neighbour) to
  ``--size`` when it is given, else keep their own size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import DEFAULT_FOV_MM, Geometry
from ivus_sim.phantom.phantom import Phantom

__all__ = ["PhantomFrame", "PhantomSource"]


@dataclass(frozen=True)
class PhantomFrame:
    """One label map for one output.

    Args:
        labels: ``(N, N)`` uint8 tissue ids.
        geometry: its geometry.
        source: ``random`` or the phantom file.
        index: random-phantom index, or the frame's position in the folder's frame list.
        hash: content hash of the phantom.
        params: the phantom's parameters (random phantoms: the sampled ``meta["params"]``).
        meta: the phantom's full ``meta`` (for the sidecar).
    """

    labels: np.ndarray
    geometry: Geometry
    source: str
    index: int
    hash: str
    params: dict[str, Any]
    meta: dict[str, Any]


@dataclass
class PhantomSource:
    """Label maps for outputs ``0..n-1``.

    Args:
        seed: run seed (random phantoms).
        size: image side ``N`` [px]; ``None`` with a folder keeps each phantom's own size.
        fov_mm: field-of-view diameter [mm] (random phantoms; folder phantoms keep their own).
        folder: a folder of phantom files, or ``None`` for random phantoms.
    """

    seed: int
    size: int | None = 256
    fov_mm: float = DEFAULT_FOV_MM
    folder: Path | None = None
    _frames: list[tuple[Phantom, int]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.folder is not None:
            from ivus_sim.phantom.reader import read_phantoms

            folder = Path(self.folder)
            if not folder.is_dir():
                raise IvusSimError(f"--phantoms {folder}: not a folder")
            phantoms = list(read_phantoms(folder, size=self.size))
            self._frames = [(p, f) for p in phantoms for f in range(p.n_frames)]
            if not self._frames:
                raise IvusSimError(f"--phantoms {folder}: no phantoms found")
        elif self.size is None:
            raise IvusSimError("random phantoms need a --size")

    @property
    def n_frames(self) -> int | None:
        """Number of distinct label maps in the folder (``None`` for random phantoms)."""
        return len(self._frames) if self.folder is not None else None

    def get(self, index: int, fov_mm: float | None = None, catheter_radius_mm: float | None = None) -> PhantomFrame:
        """The label map of output ``index``.

        ``fov_mm`` / ``catheter_radius_mm`` override the geometry of a random phantom (scanner
        randomisation); a folder's phantoms keep their own.
        """
        if self.folder is None:
            from ivus_sim.geometry import DEFAULT_CATHETER_RADIUS_MM
            from ivus_sim.phantom.random import random_phantom

            assert self.size is not None
            p = random_phantom(self.seed, size=self.size, fov_mm=self.fov_mm if fov_mm is None else fov_mm,
                               index=index, catheter_radius_mm=catheter_radius_mm or DEFAULT_CATHETER_RADIUS_MM)
            return PhantomFrame(p.labels[0], p.geometry, "random", index, p.hash(),
                                dict(p.meta.get("params", {})), dict(p.meta))
        k = index % len(self._frames)
        p, f = self._frames[k]
        source = f"{p.source}#frame{f}" if p.n_frames > 1 else p.source
        return PhantomFrame(p.labels[f], p.geometry, source, k, p.hash(), {}, dict(p.meta))

    def to_dict(self) -> dict[str, Any]:
        """What defines the label maps (compared on resume)."""
        if self.folder is None:
            from ivus_sim.phantom.random import GENERATOR_NAME, PARAMS_VERSION

            return {"kind": "random", "generator": GENERATOR_NAME, "params_version": PARAMS_VERSION,
                    "size": self.size, "fov_mm": self.fov_mm}
        listing = "\n".join(f"{p.source}#{f}:{p.hash()}" for p, f in self._frames)
        return {"kind": "folder", "folder": str(Path(self.folder).resolve()), "size": self.size,
                "n_frames": len(self._frames), "frames_hash": hashlib.sha256(listing.encode()).hexdigest()[:16]}
