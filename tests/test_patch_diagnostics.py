"""The paired patch diagnostic (``benchmarks/patch_diagnostics.py``): its features and its classifier.

Features against direct numpy definitions; the cross-validated logistic regression reads ~0.5 on two
samples of one distribution and ~1 on two separated ones; and end to end, a generated set whose
speckle has less contrast than the real one shows a negative paired std difference.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from ivus_sim.tissues import Tissue


@pytest.fixture(scope="module")
def pdx(benchmark_module: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_module("patch_diagnostics")


def test_features_match_their_definitions(pdx: ModuleType) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (5, 16, 16))
    x[0] = 0.0
    f = pdx.features(x)
    g = x * 255.0
    assert np.allclose(f["mean"], g.mean((1, 2)))
    assert np.allclose(f["std"][1:], g[1:].std((1, 2)), rtol=1e-6)
    assert f["std"][0] < 1e-2 and f["black"][0] == 1.0
    assert np.allclose(f["p95"], np.percentile(g.reshape(5, -1), 95, axis=1))
    xc = g[2] - g[2].mean()
    assert f["acf_a1"][2] == pytest.approx((xc[1:] * xc[:-1]).mean() / (xc**2).mean(), rel=1e-4)
    assert f["acf_d3"][2] == pytest.approx((xc[:, 3:] * xc[:, :-3]).mean() / (xc**2).mean(), rel=1e-4)
    smooth = np.repeat(np.repeat(rng.uniform(0, 1, (5, 2, 2)), 8, 1), 8, 2)  # constant 8 x 8 blocks
    fs = pdx.features(smooth)
    assert np.allclose(fs["std_resid"], 0) and np.allclose(fs["std_block"], fs["std"])


def test_logistic_accuracy_is_chance_on_one_distribution_and_high_on_two(pdx: ModuleType) -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(400), np.ones(400)]
    fold = np.tile(np.arange(4), 200)
    same = rng.normal(size=(800, 3))
    assert abs(pdx.logistic_accuracy(same, y, fold) - 0.5) < 0.07
    apart = same + 3.0 * y[:, None]
    assert pdx.logistic_accuracy(apart, y, fold) > 0.95


def _frames(folder: Path, contrast: float, seed: int, n: int = 4, size: int = 96) -> None:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.clip(120 + contrast * rng.standard_normal((size, size)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"frame_{i:02d}_image.png")
        yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
        lab = np.where(np.hypot(yy, xx) < 0.2 * size, int(Tissue.LUMEN), int(Tissue.FIBROUS)).astype(np.uint8)
        Image.fromarray(lab).save(folder / f"frame_{i:02d}_label.png")


def test_a_low_contrast_fake_shows_up_as_a_negative_std_difference(pdx: ModuleType, tmp_path: Path) -> None:
    _frames(tmp_path / "real", 40.0, 0)
    _frames(tmp_path / "fake", 25.0, 1)
    _frames(tmp_path / "same", 40.0, 2)
    low = pdx.compare(tmp_path / "real", tmp_path / "fake", 0, 16, 24)
    same = pdx.compare(tmp_path / "real", tmp_path / "same", 0, 16, 24)
    assert low["by_tissue"]["fibrous"]["std"] < -5 and abs(same["by_tissue"]["fibrous"]["std"]) < 3
    assert low["feature_c2st"]["only contrast"] > 0.9 > same["feature_c2st"]["only contrast"]
