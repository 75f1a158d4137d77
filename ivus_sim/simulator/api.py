"""Simulator: the user-facing generation API (learned default model or the physics engine).

The API mirrors ``ivus-sim generate``:

>>> from ivus_sim import Simulator                                   # doctest: +SKIP
>>> sim = Simulator.default(device="cpu")        # the embedded learned model (ivus_sim/weights)
>>> sim = Simulator.physics(preset="20mhz")      # the stage-0 pseudo B-mode engine
>>> sim = Simulator.from_run("runs/my_run")      # a user's trained run (or weights folder/file)
>>> res = sim.generate(label_map, n=4, seed=0)   # label map (N, N) / (F, N, N) uint8, or a Phantom
>>> res.images.shape                             # (n, N, N); (n, F, N, N) for a pullback
(4, 256, 256)

Randomness (every draw from :mod:`ivus_sim.seeding`, one seed): image ``i`` of a call uses only
the streams of index ``i`` (learned: ``(seed, "generate", <z1|z2|noise>, i, anchor)``; physics:
``(seed, "physics", i, <step>)``), so it does not depend on how many images were asked for nor on
other phantoms, and ``res.records[i]`` (its JSON sidecar) regenerates it with
:meth:`Simulator.regenerate`. Pullbacks: see :mod:`ivus_sim.simulator.latent` (learned: smooth
slerp paths between anchor draws) and :mod:`ivus_sim.simulator.physics` (frozen scatterers).
"""

from __future__ import annotations

import copy
import json
import math
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ivus_sim import __version__
from ivus_sim.device import Precision, resolve_device
from ivus_sim.engines import Engine
from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import DEFAULT_FOV_MM
from ivus_sim.io import json_default
from ivus_sim.phantom.phantom import Phantom
from ivus_sim.seeding import check_seed
from ivus_sim.simulator.latent import DEFAULT_FRAMES_PER_CODE, n_anchors, path_at
from ivus_sim.simulator.learned import DEFAULT_SOURCE, LearnedBackend, load_default, load_from_path
from ivus_sim.simulator.physics import PhysicsBackend
from ivus_sim.simulator.results import GenerationResult, GridResult

if TYPE_CHECKING:
    from ivus_sim.two_stage import TwoStageAAE

__all__ = ["Simulator", "as_phantom", "parse_codes", "DEFAULT_BATCH"]

#: frames per forward pass of the learned networks
DEFAULT_BATCH = 8


def as_phantom(x: Phantom | np.ndarray | torch.Tensor, fov_mm: float | None) -> Phantom:
    """A :class:`Phantom` from a Phantom or a label map ``(N, N)`` / ``(F, N, N)`` (validated)."""
    if isinstance(x, Phantom):
        if fov_mm is not None and not math.isclose(fov_mm, x.geometry.fov_mm):
            raise IvusSimError(f"fov_mm={fov_mm} conflicts with the phantom's field of view "
                               f"({x.geometry.fov_mm} mm); leave fov_mm unset for a Phantom")
        return x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise IvusSimError(f"expected a label map (numpy array) or a Phantom, got {type(x).__name__}")
    f = DEFAULT_FOV_MM if fov_mm is None else float(fov_mm)
    if not (f > 0 and math.isfinite(f)):
        raise IvusSimError(f"fov_mm must be a positive number of millimetres, got {fov_mm}")
    return Phantom.from_array(x, fov_mm=f)  # the one label rule: ivus_sim.tissues.validate_labels


def parse_codes(z: Any, dims: tuple[int, int], n: int) -> torch.Tensor | None:
    """User codes -> float32 ``(n, d)`` with ``d`` = d1 or d1 + d2 (z1 then z2), or None."""
    if z is None:
        return None
    try:
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise IvusSimError(f"z must be a list of numbers, got {z!r}") from e
    d1, d2 = dims
    if zt.dim() == 1:
        zt = zt.unsqueeze(0).expand(n, -1)
    if zt.dim() != 2 or zt.shape[0] != n or zt.shape[1] not in (d1, d1 + d2):
        raise IvusSimError(f"z must have {d1 + d2} values (z1: {d1}, then z2: {d2}) or {d1} (z1 only); "
                           f"got shape {tuple(zt.shape)}")
    if not torch.isfinite(zt).all():
        raise IvusSimError("z contains NaN or Inf")
    return zt.contiguous()


def floats(t: torch.Tensor) -> list[Any]:
    return t.detach().float().cpu().tolist()


class Simulator:
    """Turn tissue phantoms into IVUS images (see the module docstring).

    Build one with :meth:`default`, :meth:`physics` or :meth:`from_run`.
    """

    def __init__(self, backend: LearnedBackend | PhysicsBackend) -> None:
        self._backend = backend

    # ------------------------------------------------------------- constructors
    @classmethod
    def default(cls, device: str | torch.device | None = "auto",
                precision: Precision | str = Precision.AUTO) -> Simulator:
        """The embedded default model shipped in :mod:`ivus_sim.weights` (no download, no training).

        Args:
            device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
            precision: network arithmetic (:class:`~ivus_sim.device.Precision`; recorded in every sidecar).
        """
        dev = resolve_device(device)
        model, card, model_id = load_default(dev)
        return cls(LearnedBackend(model, model_id, DEFAULT_SOURCE, card, precision))

    @classmethod
    def physics(cls, preset: str = "20mhz", device: str | torch.device | None = "cpu", *,
                tissues: str | Path | None = None, nurd: bool | None = None) -> Simulator:
        """The stage-0 physics engine.

        Args:
            preset: transducer preset name (``"20mhz"``, ``"40mhz"``) or a YAML path.
            device: torch device.
            tissues: tissue-acoustics YAML (None: the shipped table).
            nurd: non-uniform rotational distortion on/off (None: the preset's setting).
        """
        return cls(PhysicsBackend(preset, resolve_device(device), tissues=tissues, nurd=nurd))

    @classmethod
    def from_run(cls, path: str | Path, device: str | torch.device | None = "auto",
                 precision: Precision | str = Precision.AUTO) -> Simulator:
        """A user's trained model: a training run folder, its ``model/`` folder, or a ``.safetensors`` file
        with its card beside it (arguments as :meth:`default`). A damaged file is a one-line error."""
        dev = resolve_device(device)
        model, card, model_id = load_from_path(Path(path), dev)
        return cls(LearnedBackend(model, model_id, str(Path(path)), card, precision))

    # ------------------------------------------------------------- properties
    @property
    def engine(self) -> Engine:
        return self._backend.engine

    @property
    def model_id(self) -> str:
        """Identifier of the model (content hash for learned models, preset for physics)."""
        return self._backend.model_id

    @property
    def z_dims(self) -> tuple[int, int]:
        """Sizes of the stage-1 and stage-2 latent codes (learned engine only)."""
        return self.learned_backend("latent codes").z_dims

    @property
    def model(self) -> TwoStageAAE:
        """The underlying :class:`~ivus_sim.two_stage.TwoStageAAE` (learned engine only)."""
        return self.learned_backend("a model").model

    @property
    def model_card(self) -> dict[str, Any]:
        """The model card of a learned model (training data, config, metrics, reproducing commands)."""
        return copy.deepcopy(self.learned_backend("a model card").card)

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Names of the intermediate stages ``generate(return_stages=True)`` returns."""
        if isinstance(self._backend, LearnedBackend):
            return ("mean",)
        from ivus_sim.physics import STAGES

        return tuple(STAGES)

    def describe(self) -> dict[str, Any]:
        """JSON-able description of the engine/model (goes into every sidecar)."""
        return self._backend.describe()

    def learned_backend(self, what: str) -> LearnedBackend:
        """The learned backend, or a one-line error naming ``what`` needed it."""
        if not isinstance(self._backend, LearnedBackend):
            raise IvusSimError(f"{what} needs the learned engine; the physics engine has no latent code")
        return self._backend

    # ------------------------------------------------------------- generation
    def generate(
        self,
        phantom: Phantom | np.ndarray | torch.Tensor,
        n: int = 4,
        seed: int = 0,
        z: Sequence[float] | np.ndarray | torch.Tensor | None = None,
        fov_mm: float | None = None,
        return_stages: bool = False,
        *,
        first_index: int = 0,
        frames_per_code: int = DEFAULT_FRAMES_PER_CODE,
        batch_size: int = DEFAULT_BATCH,
        return_polar: bool = False,
    ) -> GenerationResult:
        """Simulate ``n`` IVUS images of one phantom.

        Args:
            phantom: a :class:`~ivus_sim.phantom.Phantom`, or a uint8 label map ``(N, N)`` /
                pullback ``(F, N, N)`` of tissue ids (validated and finalised: FOV mask, catheter).
            n: number of images (independent draws of the latent codes and noise).
            seed: the one seed of every random draw (``0 <= seed < 2**63``).
            z: fixed latent code (learned engine): ``d1 + d2`` values (z1 then z2) or ``d1`` values
                (z1 only; z2 drawn), shared by all images and frames; or ``(n, d)`` per image.
            fov_mm: field-of-view diameter [mm] of an array input (default 10 mm); a Phantom
                carries its own.
            return_stages: also return intermediate stages (``res.stages``).
            first_index: index of the first image: image ``k`` uses the random streams of index
                ``first_index + k`` (so one image of a batch can be regenerated alone).
            frames_per_code: pullbacks: frames between independent anchor draws (smoothness).
            batch_size: frames per forward pass.
            return_polar: also return the polar display images (``res.polar``).

        Returns:
            :class:`GenerationResult` with ``images`` uint8 ``(n, N, N)`` or ``(n, F, N, N)``.
        """
        ph = as_phantom(phantom, fov_mm)
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise IvusSimError(f"n must be a positive number of images, got {n}")
        n, seed = int(n), check_seed(seed, "seed")
        if frames_per_code < 1:
            raise IvusSimError(f"frames_per_code must be >= 1, got {frames_per_code}")
        if first_index < 0:
            raise IvusSimError(f"first_index must be >= 0, got {first_index}")
        if isinstance(self._backend, LearnedBackend):
            images, stages, extras, polar = self._generate_learned(ph, n, seed, z, first_index, frames_per_code,
                                                                   max(1, batch_size), return_stages, return_polar)
        else:
            if z is not None:
                raise IvusSimError("z (a latent code) needs the learned engine; the physics engine has none")
            images, stages, extras, polar = self._generate_physics(ph, n, seed, first_index, return_stages)
        records = [self._record(ph, seed, first_index + k, frames_per_code, extras[k]) for k in range(n)]
        if ph.n_frames == 1:
            images = images[:, 0]
            stages = {k: v[:, 0] for k, v in stages.items()}
            polar = polar[:, 0] if polar is not None else None
        return GenerationResult(images=images, records=records, stages=stages if return_stages else {}, phantom=ph,
                                polar=polar if return_polar else None)

    def _generate_learned(self, ph: Phantom, n: int, seed: int, z: Any, first_index: int, frames_per_code: int,
                          batch_size: int, return_stages: bool, return_polar: bool
                          ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, Any]], np.ndarray | None]:
        be = self.learned_backend("learned generation")
        d1, d2 = be.z_dims
        fixed = parse_codes(z, (d1, d2), n)
        nf = ph.n_frames
        k = n_anchors(nf, frames_per_code)
        anchors, extras = [], []
        for i in range(n):
            anc = be.draw_anchors(k, seed, first_index + i)
            if fixed is not None:
                anc["z1"] = fixed[i, :d1].expand(k, -1)
                if fixed.shape[1] == d1 + d2:
                    anc["z2"] = fixed[i, d1:].expand(k, -1)
            anchors.append(anc)
            if nf == 1:
                zrec: dict[str, Any] = {"z1": floats(anc["z1"][0]), "z2": floats(anc["z2"][0])}
            else:
                zrec = {"z1_anchors": floats(anc["z1"]), "z2_anchors": floats(anc["z2"]),
                        "frames_per_code": frames_per_code}
            zrec["z_fixed"] = "none" if fixed is None else ("z1" if fixed.shape[1] == d1 else "z1+z2")
            extras.append(zrec)
        size = ph.geometry.size
        a, s = be.model.polar_shape
        images = np.zeros((n, nf, size, size), np.uint8)
        means = np.zeros((n, nf, size, size), np.float32) if return_stages else None
        polar = np.zeros((n, nf, a, s), np.float32) if return_polar else None
        style: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
        # frame-major order: a batch holds the n images of a few frames, which share the polar labels
        items = [(f, i) for f in range(nf) for i in range(n)]
        for lo in range(0, len(items), batch_size):
            batch = items[lo:lo + batch_size]
            fs = np.array([f for f, _ in batch])
            ims = np.array([i for _, i in batch])
            uniq, inv = np.unique(fs, return_inverse=True)
            z1 = torch.stack([path_at(anchors[i]["z1"], f, frames_per_code) for f, i in batch])
            z2 = torch.stack([path_at(anchors[i]["z2"], f, frames_per_code) for f, i in batch])
            nz = torch.stack([path_at(anchors[i]["noise"], f, frames_per_code) for f, i in batch])
            out = be.render(ph.labels[uniq], inv, z1, z2, nz, want_mean=return_stages, want_polar=return_polar)
            images[ims, fs] = out["image"]
            if means is not None:
                means[ims, fs] = out["mean"]
            if polar is not None:
                polar[ims, fs] = out["polar"]
            for name, vals in out["style"].items():
                for b, (f, i) in enumerate(batch):
                    style[i].setdefault(name, np.zeros(nf, np.float32))[f] = vals[b]
        for i in range(n):  # the scanner style render_polar decoded from z2 ("scanner_style" in the sidecar)
            extras[i]["scanner_style"] = {name: (float(v[0]) if nf == 1 else [float(x) for x in v])
                                          for name, v in style[i].items()}
        return images, ({"mean": means} if means is not None else {}), extras, polar

    def _generate_physics(self, ph: Phantom, n: int, seed: int, first_index: int, return_stages: bool
                          ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, Any]], np.ndarray]:
        be = self._backend
        assert isinstance(be, PhysicsBackend)
        fov = ph.geometry.fov_mm
        if ph.n_frames == 1:  # one batched call; image k on stream first_index + k
            lab = np.repeat(ph.labels, n, axis=0)
            img, st, params, pol = be.render(lab, seed, first_index, fov, return_stages)
            per_image: list[dict[str, Any]] = [
                {"physics_params": {**params, "first_index": first_index + k, "images": [params["images"][k]]}}
                for k in range(n)]
            return img[:, None], {k: v[:, None] for k, v in st.items()}, per_image, pol[:, None]
        imgs: list[np.ndarray] = []
        pols: list[np.ndarray] = []
        extras: list[dict[str, Any]] = []
        stages: dict[str, list[np.ndarray]] = {}
        for i in range(n):  # frozen scatterers along the pullback: every frame on stream first_index + i
            frames = [be.render(ph.labels[f:f + 1], seed, first_index + i, fov, return_stages)
                      for f in range(ph.n_frames)]
            imgs.append(np.concatenate([fr[0] for fr in frames]))
            pols.append(np.concatenate([fr[3] for fr in frames]))
            for name in frames[0][1]:
                stages.setdefault(name, []).append(np.concatenate([fr[1][name] for fr in frames]))
            p0 = frames[0][2]
            extras.append({"physics_params": {**p0, "images": [fr[2]["images"][0] for fr in frames]},
                           "scatterers": "frozen along the pullback"})
        return np.stack(imgs), {k: np.stack(v) for k, v in stages.items()}, extras, np.stack(pols)

    def _record(self, ph: Phantom, seed: int, index: int, frames_per_code: int,
                extra: dict[str, Any]) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "generator": "ivus_sim.Simulator.generate",
            "ivus_sim_version": __version__,
            **self.describe(),
            "seed": seed,
            "index": index,
            "phantom": ph.to_dict(),
            "geometry": ph.geometry.to_dict(),
            "frames": ph.n_frames,
            **extra,
        }
        if ph.n_frames > 1:
            rec["frames_per_code"] = frames_per_code
        return json.loads(json.dumps(rec, default=json_default))

    # ------------------------------------------------------------- regeneration
    def regenerate(self, record: dict[str, Any], phantom: Phantom | np.ndarray) -> np.ndarray:
        """Rebuild the image a sidecar ``record`` describes from its phantom (checked by hash).

        Returns the uint8 image ``(N, N)`` (or ``(F, N, N)``), bit-identical on the same device.
        """
        fov = float(record.get("geometry", {}).get("fov_mm", DEFAULT_FOV_MM))
        ph = phantom if isinstance(phantom, Phantom) else as_phantom(phantom, fov)
        want = record.get("phantom", {}).get("hash")
        if want is not None and ph.hash() != want:
            raise IvusSimError(f"phantom hash {ph.hash()} does not match the sidecar's {want}")
        if record.get("model_id") != self.model_id:
            raise IvusSimError(f"sidecar was made by model {record.get('model_id')!r}, this simulator is "
                               f"{self.model_id!r}")
        z = None
        fixed = record.get("z_fixed", "none")
        if fixed != "none":  # a fixed code is the same at every anchor of a pullback
            z1 = record["z1"] if "z1" in record else record["z1_anchors"][0]
            z2 = record["z2"] if "z2" in record else record["z2_anchors"][0]
            z = z1 + z2 if fixed == "z1+z2" else z1
        be = self._backend
        saved = be.precision if isinstance(be, LearnedBackend) else None
        if isinstance(be, LearnedBackend) and "precision" in record:
            be.precision = Precision(record["precision"])  # the arithmetic the image was made with
        try:
            res = self.generate(ph, n=1, seed=int(record["seed"]), z=z, first_index=int(record["index"]),
                                frames_per_code=int(record.get("frames_per_code", DEFAULT_FRAMES_PER_CODE)))
        finally:
            if isinstance(be, LearnedBackend) and saved is not None:
                be.precision = saved
        return res.images[0]

    # ------------------------------------------------------------- latent exploration
    def explore(self, phantom: Phantom | np.ndarray, grid: int = 8, dims: tuple[int, int] = (0, 1),
                seed: int = 0, *, base: Sequence[float] | None = None, fov_mm: float | None = None,
                frame: int = 0, quantile: float = 0.05, batch_size: int = DEFAULT_BATCH) -> GridResult:
        """Latent manifold sweep: a ``grid x grid`` mosaic over two latent dimensions
        (see :func:`ivus_sim.simulator.explore.explore`)."""
        from ivus_sim.simulator.explore import explore

        return explore(self, phantom, grid, dims, seed, base=base, fov_mm=fov_mm, frame=frame, quantile=quantile,
                       batch_size=batch_size)

    def interpolate(self, phantom: Phantom | np.ndarray, z_a: Sequence[float], z_b: Sequence[float],
                    steps: int = 8, seed: int = 0, *, fov_mm: float | None = None, frame: int = 0,
                    batch_size: int = DEFAULT_BATCH) -> GridResult:
        """Images along the spherical interpolation from ``z_a`` to ``z_b``
        (see :func:`ivus_sim.simulator.explore.interpolate`)."""
        from ivus_sim.simulator.explore import interpolate

        return interpolate(self, phantom, z_a, z_b, steps, seed, fov_mm=fov_mm, frame=frame, batch_size=batch_size)
