"""The physics backend: the stage-0 pseudo B-mode engine (:class:`ivus_sim.physics.PhysicsSimulator`)
behind the generation API. ``ivus-sim simulate`` and ``ivus-sim generate --engine physics`` both
run through here, so the same phantom and seed give the same pixels.

Stream convention (one for every command): image ``i`` of a phantom (``i`` counts from 0 for each
phantom, so a phantom's images do not depend on which other phantoms share the folder) draws
from the engine's streams ``(seed, "physics", i, <step>)``. Along a pullback every frame of
image ``i`` reuses those streams: the scatterer field is frozen (the limit of fully correlated
neighbouring frames), so the speckle changes only where the tissue changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ivus_sim.engines import Engine

__all__ = ["PhysicsBackend", "preset_key"]


def preset_key(preset: str, tissues: str | Path | None = None) -> str:
    """A cheap identity of a physics configuration (preset name, or YAML path + content hash; tissue table)."""

    def one(x: str | Path) -> str:
        p = Path(x)
        if p.is_file():
            return f"{p.resolve()}@{hashlib.sha256(p.read_bytes()).hexdigest()[:12]}"
        return str(x)

    return one(preset) + ("" if tissues is None else "+tissues:" + one(tissues))


class PhysicsBackend:
    """The stage-0 engine with a transducer preset and a tissue-acoustics table.

    Args:
        preset: preset name (``"20mhz"``) or YAML path.
        device: torch device of the engine.
        tissues: tissue-acoustics YAML (None: the shipped table).
        nurd: non-uniform rotational distortion on/off (None: the preset's setting).
    """

    engine = Engine.PHYSICS

    def __init__(self, preset: str, device: torch.device, tissues: str | Path | None = None,
                 nurd: bool | None = None) -> None:
        from ivus_sim.config import load_preset, load_tissue_acoustics
        from ivus_sim.physics import PhysicsSimulator

        self.preset_name = str(preset)
        self.preset = load_preset(preset)
        self.tissues = None if tissues is None else str(tissues)
        self.nurd = nurd
        self.device = device
        self.engine_impl = PhysicsSimulator(preset=self.preset, acoustics=load_tissue_acoustics(tissues),
                                            device=str(device))
        self.model_id = f"physics-{Path(self.preset_name).stem}"

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"engine": self.engine.value, "model_id": self.model_id, "preset": self.preset_name}
        if self.tissues is not None:
            d["tissues"] = self.tissues
        if self.nurd is not None:
            d["nurd"] = self.nurd
        return d

    def render(self, labels: np.ndarray, seed: int, first_index: int, fov_mm: float, return_stages: bool
               ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any], np.ndarray]:
        """Labels ``(B, N, N)``, image ``k`` on stream index ``first_index + k``.

        Returns:
            ``(images uint8 (B, N, N), stages, params, polar float32 (B, A, S))``.
        """
        res = self.engine_impl.simulate(labels, seed=seed, fov_mm=fov_mm, return_stages=return_stages,
                                        nurd=self.nurd, first_index=first_index)
        stages = {k: np.asarray(v, dtype=np.float32) for k, v in res.stages.items()}
        return np.asarray(res.image, dtype=np.uint8), stages, res.params, np.asarray(res.polar, np.float32)
