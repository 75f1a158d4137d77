"""Regenerate ``physics_reference_64.npz``: the stored regression output of the physics engine.

Run only after an *intended* change of the engine's output (bump ``ENGINE_VERSION``):

    python tests/data/make_physics_reference.py

The case: a 64 x 64 phantom (lumen, fibrous plaque, a calcium arc, a guidewire, perivascular
tissue), 64 A-lines, seed 7, with the preset and tissue table stored *in the file* (so later
calibration of the shipped YAML files does not change the reference).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ivus_sim.geometry import Geometry, radius_map
from ivus_sim.phantom.phantom import finalise_labels
from ivus_sim.physics import PhysicsSimulator
from ivus_sim.physics.simulator import ENGINE_VERSION
from ivus_sim.tissues import Tissue

HERE = Path(__file__).parent
PATH = HERE / "physics_reference_64.npz"
SEED = 7
N_ANGLES = 64


def reference_labels(n: int = 64) -> np.ndarray:
    r_mm = radius_map(n) * 5.0
    c = (n - 1) / 2
    yy, xx = np.mgrid[:n, :n]
    th = np.degrees(np.arctan2(yy - c, xx - c)) % 360
    lab = np.full((n, n), Tissue.PERIVASCULAR, np.uint8)
    lab[r_mm < 3.0] = Tissue.MEDIA
    lab[r_mm < 2.8] = Tissue.FIBROUS
    lab[r_mm < 1.6] = Tissue.LUMEN
    lab[(r_mm >= 1.9) & (r_mm < 2.4) & (th < 80)] = Tissue.DENSE_CALCIUM
    lab[np.hypot(yy - (c + 0.0), xx - (c - 12.0)) < 1.6] = Tissue.GUIDEWIRE
    return finalise_labels(lab[None], Geometry(n, 10.0))


def main() -> None:
    sim = PhysicsSimulator(n_angles=N_ANGLES)
    lab = reference_labels()
    res = sim.simulate(lab, seed=SEED)
    np.savez_compressed(PATH, labels=lab, image=res.image, polar=res.polar,
                        params=np.array(json.dumps(res.params)), engine_version=np.array(ENGINE_VERSION))
    print(f"wrote {PATH} ({PATH.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
