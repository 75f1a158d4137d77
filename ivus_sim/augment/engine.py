"""Which simulator renders the augmentation images (one interface: :class:`ivus_sim.Simulator`).

* ``Engine.LEARNED`` (default): the embedded default learned model, ``Simulator.default()``;
* ``Engine.PHYSICS``: the stage-0 physics engine, ``Simulator.physics(preset=...)``;
* a trained run folder or checkpoint (``--model``): ``Simulator.from_run(path)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.engines import Engine  # the one Engine enum (re-exported here for augment users)
from ivus_sim.errors import IvusSimError

__all__ = ["Engine", "EngineSpec", "render", "render_scanner"]


@dataclass(frozen=True)
class EngineSpec:
    """A picklable description of the engine (rebuilt in every worker process).

    Args:
        engine: physics (stage 0) or learned.
        preset: transducer preset of the physics engine (``20mhz``, ``40mhz`` or a YAML path).
        tissues: tissue-acoustics YAML of the physics engine (``None``: the shipped table). Only
            with ``engine=PHYSICS`` and without scanner randomisation (a randomised scanner starts
            from the shipped table). ``ivus-sim augment --tissues``.
        model: a trained run folder/checkpoint for ``Simulator.from_run``; ``None`` for the
            embedded default model. Only with ``engine=LEARNED``.
        device: torch device of the simulator (``cpu`` by default: augmentation runs one
            single-threaded simulator per core).
    """

    engine: Engine = Engine.LEARNED
    preset: str = "20mhz"
    model: Path | None = None
    device: str = "cpu"
    tissues: Path | None = None

    def __post_init__(self) -> None:
        if self.model is not None and self.engine is Engine.PHYSICS:
            raise IvusSimError("--model and --engine physics exclude each other (a model is a learned engine)")
        if self.tissues is not None and self.engine is not Engine.PHYSICS:
            raise IvusSimError("a tissue table is a physics-engine setting (the learned engine has none)")
        if self.tissues is not None and not Path(self.tissues).is_file():
            raise IvusSimError(f"tissue table {self.tissues}: no such file")
        if self.model is not None and not Path(self.model).exists():
            raise IvusSimError(f"--model {self.model}: no such file or folder")

    def check(self) -> Any | None:
        """Fail early (one line) on a model or tissue-table file that cannot be read, before anything is written.

        Returns:
            The simulator built while checking (``--model``: the check *is* loading the model), to be
            reused for the run so the model is loaded once (forked workers inherit it); ``None`` when
            there is nothing to check or the check builds nothing (physics engine: its tissue table
            is parsed; embedded default model).
        """
        if self.engine is Engine.LEARNED and self.model is not None:
            return self.build()  # Simulator.from_run: a truncated/corrupt file is a one-line IvusSimError
        if self.tissues is not None:
            from ivus_sim.config import load_tissue_acoustics

            load_tissue_acoustics(self.tissues)  # a malformed table is a one-line IvusSimError
        return None

    def build(self) -> Any:
        """The :class:`ivus_sim.Simulator` this spec describes."""
        from ivus_sim import Simulator

        if self.engine is Engine.PHYSICS:
            return Simulator.physics(preset=self.preset, device=self.device, tissues=self.tissues)
        if self.model is not None:
            return Simulator.from_run(self.model, device=self.device)
        return Simulator.default(device=self.device)

    def describe(self) -> str:
        """Short label for manifests: ``physics:20mhz``, ``learned:default`` or ``model:PATH``."""
        if self.engine is Engine.PHYSICS:
            return f"physics:{self.preset}" + (f"+{Path(self.tissues).name}" if self.tissues is not None else "")
        return f"model:{self.model}" if self.model is not None else "learned:default"

    def to_dict(self) -> dict[str, Any]:
        out = {"engine": self.engine.value, "preset": self.preset if self.engine is Engine.PHYSICS else None,
               "model": str(Path(self.model).resolve()) if self.model is not None else None, "device": self.device}
        if self.tissues is not None:  # absent key = the shipped table (manifests written before stay valid)
            out["tissues"] = str(Path(self.tissues).resolve())
        return out


def render(simulator: Any, labels: np.ndarray, seed: int, fov_mm: float) -> tuple[np.ndarray, dict[str, Any]]:
    """One image of a tissue label map.

    Args:
        simulator: a :class:`ivus_sim.Simulator`.
        labels: ``(N, N)`` uint8 tissue ids.
        seed: the image seed.
        fov_mm: field-of-view diameter [mm] of the label map.

    Returns:
        ``(image (N, N) uint8, the simulator's sidecar record)``.
    """
    res = simulator.generate(labels, n=1, seed=int(seed), fov_mm=float(fov_mm))
    image = np.asarray(res.images)[0]
    if image.dtype != np.uint8 or image.shape != labels.shape:
        raise RuntimeError(f"simulator returned {image.dtype} {image.shape}; expected uint8 {labels.shape}")
    return image, dict(res.records[0])


def render_scanner(spec: EngineSpec, simulator: Any, scanner: dict[str, Any], labels: np.ndarray, seed: int,
                   fov_mm: float, run_seed: int, index: int) -> tuple[np.ndarray, dict[str, Any]]:
    """One image of a label map through a randomised scanner (:mod:`ivus_sim.augment.randomise`).

    Physics engine: a :class:`~ivus_sim.physics.PhysicsSimulator` built from the scanner's preset
    and acoustics (image streams ``(seed, "physics", 0)``, as :func:`render`). Learned engine: the
    latent code is drawn from the model's prior with ``torch_generator(seed, "augment-z")`` and
    scaled by ``z_scale``, the image rendered with that code, then the scanner's display chain
    (:func:`~ivus_sim.augment.randomise.learned_display`) applied.

    Returns:
        ``(image (N, N) uint8, record)``.
    """
    from ivus_sim.augment.randomise import learned_display, physics_setup

    if spec.engine is Engine.PHYSICS:
        from ivus_sim.physics import PhysicsSimulator

        preset, acoustics = physics_setup(scanner)
        res = PhysicsSimulator(preset=preset, acoustics=acoustics, device=spec.device).simulate(
            labels, seed=int(seed), fov_mm=float(fov_mm))
        image = np.asarray(res.image)[0]
        return image, {"engine": "physics", "randomised": True, "physics_params": res.params}
    import torch

    from ivus_sim.seeding import torch_generator

    d1, d2 = simulator.z_dims
    model = simulator.model
    z = model.prior.sample(1, d1 + d2, generator=torch_generator(seed, "augment-z")) * float(scanner["z_scale"])
    res = simulator.generate(labels, n=1, seed=int(seed), z=z.to(torch.float32), fov_mm=float(fov_mm))
    raw = np.asarray(res.images)[0]
    image, nurd = learned_display(raw, scanner, run_seed, index, fov_mm)
    return image, {**dict(res.records[0]), "display_nurd": nurd}


def displayed_nurd(record: dict[str, Any]) -> dict[str, Any] | None:
    """The NURD warp an image was displayed with (``None``: no NURD), from its simulator record.

    Physics engine: ``physics_params.images[0].nurd``; learned engine with a randomised
    scanner: ``display_nurd``. The case's label map is warped with it
    (:func:`ivus_sim.physics.nurd.warp_cartesian`), so labels match what a reader would trace.
    """
    if record.get("display_nurd") is not None:
        return dict(record["display_nurd"])
    images = (record.get("physics_params") or {}).get("images") or [{}]
    nurd = images[0].get("nurd")
    return dict(nurd) if nurd is not None else None
