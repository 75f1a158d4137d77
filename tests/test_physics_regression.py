"""Regression: a fixed seed reproduces the stored reference output (64 A-lines) within tolerance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ivus_sim.physics import PhysicsSimulator
from ivus_sim.physics.simulator import ENGINE_VERSION

DATA = Path(__file__).parent / "data"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _load() -> dict:
    with np.load(DATA / "physics_reference_64.npz") as z:
        return {k: z[k] for k in z.files}


def test_reference_output_is_reproduced():
    ref = _load()
    assert int(ref["engine_version"]) == ENGINE_VERSION, "engine changed: regenerate the reference on purpose"
    params = json.loads(str(ref["params"]))
    sim = PhysicsSimulator.from_params(params)
    res = sim.regenerate(ref["labels"], params)
    np.testing.assert_allclose(res.polar, ref["polar"], atol=2e-3)
    diff = np.abs(res.image.astype(int) - ref["image"].astype(int))
    assert (diff <= 1).mean() > 0.995 and diff.max() <= 3


def test_reference_case_is_the_documented_phantom():
    sys.path.insert(0, str(DATA))
    try:
        from make_physics_reference import N_ANGLES, SEED, reference_labels
    finally:
        sys.path.remove(str(DATA))
    ref = _load()
    params = json.loads(str(ref["params"]))
    assert np.array_equal(reference_labels(), ref["labels"])
    assert params["seed"] == SEED and params["polar_grid"]["n_angles"] == N_ANGLES
    # the reference shows the physics: the calcium is bright and shadows what lies behind it
    img = ref["image"][0].astype(float)
    assert img.max() > 150
