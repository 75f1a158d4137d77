"""The library port of the calibration measurement must agree with the reference script."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ivus_sim.metrics.calibration import (
    autocorr_fwhm,
    compare_stats,
    js_divergence,
    load_reference_stats,
    polar_stats,
)

REF_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "calibration" / "measure.py"


def _frames(n=3, size=200, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2) / (size / 2)
    imgs, labs = [], []
    for _ in range(n):
        lab = np.zeros((size, size), np.uint8)
        lab[r < 0.45] = 6
        lab[r < 0.4] = 2
        lab[r < 0.3] = 1
        lab[(r < 0.4) & (xx > size * 0.6) & (r > 0.3)] = 5
        lab[r < 0.115] = 7
        lab[r > 0.99] = 255
        base = np.array([40, 30, 60, 20, 90, 180, 80, 10] + [0] * 248, float)[lab]
        img = np.clip(base * rng.rayleigh(1.0, lab.shape) / 1.25, 0, 255).astype(np.uint8)
        imgs.append(img)
        labs.append(lab)
    return imgs, labs


@pytest.mark.skipif(not REF_SCRIPT.exists(), reason="shared/calibration/measure.py not beside the checkout")
def test_matches_reference_script(tmp_path):
    spec = importlib.util.spec_from_file_location("measure", REF_SCRIPT)
    measure = importlib.util.module_from_spec(spec)
    sys.modules["measure"] = measure
    spec.loader.exec_module(measure)
    imgs, labs = _frames()
    for i, (im, lb) in enumerate(zip(imgs, labs)):
        Image.fromarray(im).save(tmp_path / f"frame_{i:02d}_image.png")
        Image.fromarray(lb).save(tmp_path / f"frame_{i:02d}_label.png")
    ref = measure.stats(tmp_path, measure.frames(tmp_path, None))
    ours = polar_stats(imgs, labs)
    assert set(ours["tissues"]) == set(ref["tissues"])
    for name, t in ref["tissues"].items():
        o = ours["tissues"][name]
        assert abs(o["pixels"] - t["pixels"]) <= 0.01 * t["pixels"] + 5
        assert o["mean"] == pytest.approx(t["mean"], abs=0.5)
        assert o["std"] == pytest.approx(t["std"], abs=0.5)
        assert js_divergence(o["hist32"], t["hist32"]) < 1e-3
    np.testing.assert_allclose(ours["radial_profile_10"], ref["radial_profile_10"], atol=0.5)
    assert ours["speckle_perivascular"]["fwhm_theta_px_of_360"] == ref["speckle_perivascular"]["fwhm_theta_px_of_360"]


def test_js_divergence_bounds():
    assert js_divergence([1, 0], [1, 0]) == pytest.approx(0, abs=1e-9)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1, abs=1e-6)
    assert 0 < js_divergence([0.5, 0.5], [0.9, 0.1]) < 1


def test_autocorr_fwhm_grows_with_correlation_length():
    rng = np.random.default_rng(1)
    white = rng.normal(size=(32, 32))
    from scipy.ndimage import gaussian_filter1d

    smooth_theta = gaussian_filter1d(rng.normal(size=(32, 32)), 3, axis=0)
    wt, wr = autocorr_fwhm(white)
    st, sr = autocorr_fwhm(smooth_theta)
    assert wt == 1 and wr == 1
    assert st > 3 and sr == 1


def test_compare_self_is_zero_and_shift_is_seen():
    ref = load_reference_stats()
    imgs, labs = _frames()
    s = polar_stats(imgs, labs)
    c0 = compare_stats(s, s)
    assert c0["tissue_js_weighted"] == 0 and c0["radial_profile_l1"] == 0
    brighter = polar_stats([np.clip(i.astype(int) + 40, 0, 255) for i in imgs], labs)
    c1 = compare_stats(brighter, s)
    assert c1["tissue_js_weighted"] > 0.05 and c1["tissues"]["fibrous"]["mean_diff"] > 30
    assert json.dumps(compare_stats(s, ref))  # JSON-able
