"""Realism metrics: each can pass (identical sets) and fail (shifted, blurred, noise-only sets)."""

from __future__ import annotations

import json
import re
from itertools import pairwise

import numpy as np
import pytest
import torch
from _helpers import synthetic_frames
from PIL import Image
from scipy import ndimage, stats

from ivus_sim.errors import IvusSimError
from ivus_sim.metrics.c2st import C2STConfig, assign_folds, classifier_two_sample_test, roc_auc
from ivus_sim.metrics.diversity import group_by_labels, pairwise_diversity
from ivus_sim.metrics.evaluate import EvaluateConfig, evaluate
from ivus_sim.metrics.features import (
    FeatureConfig,
    Kernel,
    feature_distances,
    frechet_distance,
    gaussian_stats,
    kernel_inception_distance,
    mmd_unbiased,
)
from ivus_sim.metrics.imageset import ImageSet, base_name, load_image_set, tissue_masks, to_polar
from ivus_sim.metrics.intensity import compare_distributions, compare_intensities
from ivus_sim.metrics.patches import PatchConfig, extract_patches
from ivus_sim.metrics.profile import radial_profile, shadow_profile
from ivus_sim.metrics.report import REPORT_HTML, REPORT_JSON, write_report
from ivus_sim.metrics.speckle import SpeckleConfig, autocorrelation, fwhm, nakagami_moments, speckle_stats

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------- tiny synthetic data
def speckle_field(shape, seed, corr=1.0):
    """Fully developed speckle: |complex Gaussian field| smoothed by a PSF of ``corr`` samples (unit mean)."""
    g = np.random.default_rng(seed)
    z = g.normal(size=shape) + 1j * g.normal(size=shape)
    if corr:
        sig = (0,) * (len(shape) - 2) + (corr, corr)
        z = ndimage.gaussian_filter(z.real, sig) + 1j * ndimage.gaussian_filter(z.imag, sig)
    a = np.abs(z)
    return a / a.mean()


def polar_set(n_frames, seed, blur=0.0, noise_only=False, shape=(96, 64)):
    """Polar frames (F, A, S) [0-255] with a tissue layout and speckle; and their labels."""
    a, s = shape
    lab = np.zeros(shape, np.uint8)
    lab[:, : s // 8] = 7
    lab[:, s // 8: s // 3] = 1
    lab[:, s // 3: s // 2] = 2
    lab[: a // 4, s // 3: s // 2] = 5
    lab[:, s // 2: s // 2 + 3] = 6
    labels = np.repeat(lab[None], n_frames, 0)
    means = np.zeros(256)
    means[[0, 1, 2, 5, 6, 7]] = [90, 15, 120, 220, 40, 5]
    mean = means[labels]
    mean[:, : a // 4, s // 2:] *= 0.3  # shadow behind calcium
    if noise_only:  # no anatomy, no point-spread function: uncorrelated Rayleigh noise of the same mean
        mean[:] = mean.mean()
    img = mean * speckle_field(labels.shape, seed, corr=0.0 if noise_only else 1.0)
    if blur:
        img = ndimage.gaussian_filter(img, (0, blur, blur))
    return np.clip(img, 0, 255), labels


def cart_frames(n, seed, size=64, shift=0.0):
    """Cartesian frames with a label map (for the folder / end-to-end tests)."""
    imgs, lab = synthetic_frames(n, seed, size, shift)
    return [im.round() for im in imgs], [lab] * n


# ---------------------------------------------------------------- image sets
def test_folder_conventions_pair_images_with_labels(tmp_path):
    imgs, labs = cart_frames(2, 0)
    real, gen, lab_dir = tmp_path / "real", tmp_path / "gen", tmp_path / "labels"
    for d in (real, gen, lab_dir):
        d.mkdir()
    for i, (im, lab) in enumerate(zip(imgs, labs, strict=True)):
        Image.fromarray(im.astype(np.uint8)).save(real / f"frame_{i:02d}_image.png")
        Image.fromarray(lab).save(real / f"frame_{i:02d}_label.png")
        Image.fromarray(im.astype(np.uint8)).save(gen / f"case{i}_s0.png")
        Image.fromarray(lab).save(lab_dir / f"case{i}.png")
    rs = load_image_set(real)
    assert rs.names == ["frame_00", "frame_01"] and rs.has_labels
    assert np.array_equal(rs.images[0], imgs[0])
    gs = load_image_set(gen, lab_dir)  # sample suffix _s0 falls back to the label of "case0"
    assert gs.names == ["case0_s0", "case1_s0"] and gs.has_labels
    # simulated frames without labels borrow the real frame's label map of the same name
    fake = tmp_path / "fake"
    fake.mkdir()
    Image.fromarray(imgs[1].astype(np.uint8)).save(fake / "frame_01.png")
    # ... also when named as `ivus-sim generate` names images made from frame_01_label.png
    Image.fromarray(imgs[0].astype(np.uint8)).save(fake / "frame_00_label_seed0_002.png")
    fs = load_image_set(fake, fallback_labels=rs)
    assert fs.names == ["frame_00_label_seed0_002", "frame_01"]
    assert np.array_equal(fs.labels[0], labs[0]) and np.array_equal(fs.labels[1], labs[1])
    assert [base_name(n) for n in fs.names] == ["frame_00", "frame_01"]


def test_bad_inputs_are_one_line_user_errors(tmp_path):
    with pytest.raises(IvusSimError, match="not a folder"):
        load_image_set(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IvusSimError, match="holds no images"):
        load_image_set(tmp_path / "empty", role="fake")
    d = tmp_path / "bad"
    d.mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(d / "a.png")
    Image.fromarray(np.full((32, 32), 77, np.uint8)).save(d / "a_label.png")
    with pytest.raises(IvusSimError, match="unknown tissue ids 77"):
        load_image_set(d)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(d / "a_label.png")
    with pytest.raises(IvusSimError, match="no lumen"):
        load_image_set(d)
    # a label map of another size (or a colour sketch) is read by the phantom reader and
    # resampled, nearest neighbour, to its image's size
    small = np.zeros((16, 16), np.uint8)
    small[4:12, 4:12] = 1
    Image.fromarray(small).save(d / "a_label.png")
    s = load_image_set(d)
    assert s.labels[0].shape == (32, 32)
    assert (s.labels[0] == 1).sum() > (s.labels[0] == 1).size * 0.15


def test_polar_frame_and_eroded_masks():
    imgs, labs = cart_frames(1, 0)
    p = to_polar(ImageSet(["a"], imgs, list(labs)))
    assert p.images.shape == (1, 360, 160) and p.labels is not None and p.labels.dtype == np.uint8
    masks = tissue_masks(p.labels)
    assert {"lumen", "fibrous", "dense_calcium", "media", "lumen_beyond_ringdown"} <= set(masks)
    for name, tid in (("lumen", 1), ("fibrous", 2)):
        assert masks[name].sum() < (p.labels == tid).sum()  # eroded
        assert np.all(p.labels[masks[name]] == tid)
    assert not masks["lumen_beyond_ringdown"][..., :32].any()


# ---------------------------------------------------------------- intensity
def test_identical_sets_give_zero_divergence():
    v = np.random.default_rng(0).rayleigh(40.0, 5000)
    r = compare_distributions(v, v.copy())
    assert r["js"] < 1e-9 and r["w1"] == 0 and r["mean_diff"] == 0


def test_js_and_w1_grow_monotonically_with_an_intensity_shift():
    g = np.random.default_rng(1)
    base = np.clip(g.rayleigh(30.0, 20000) + 40, 0, 255)
    other = np.clip(g.rayleigh(30.0, 20000) + 40, 0, 255)  # an independent draw: small but non-zero
    shifts = [0, 4, 8, 16, 32, 64]
    res = [compare_distributions(base, np.clip(other + s, 0, 255)) for s in shifts]
    js = [r["js"] for r in res]
    w1 = [r["w1"] for r in res]
    assert all(a < b for a, b in pairwise(js)), js
    assert all(a < b for a, b in pairwise(w1)), w1
    assert js[0] < 0.01 and js[-1] > 0.3
    assert abs(w1[3] - 16) < 1.5  # W1 of a pure shift is the shift
    assert abs(res[3]["quantile_diff"][2] - 16) < 2


def test_per_tissue_and_weighted_summaries():
    real = {"a": np.full(9000, 50.0), "b": np.full(1000, 100.0), "c": np.full(10, 7.0)}
    fake = {"a": np.full(500, 50.0), "b": np.full(500, 200.0)}
    r = compare_intensities(real, fake)
    assert set(r["tissues"]) == {"a", "b"} and r["missing_in_fake"] == ["c"]
    assert r["tissues"]["a"]["js"] < 1e-9 and r["tissues"]["b"]["js"] > 0.99
    assert r["w1_weighted"] == pytest.approx(0.1 * 100)  # weights = real pixels
    assert r["js_max"] == pytest.approx(0, abs=1e-9)  # tissue b differs but has < 2000 real pixels


# ---------------------------------------------------------------- speckle
@pytest.mark.parametrize("m_true", [0.7, 1.0, 2.5])
def test_nakagami_moment_estimator_agrees_with_scipy_fit(m_true):
    x = stats.nakagami.rvs(m_true, scale=2.0, size=4000, random_state=np.random.default_rng(2))
    fit = nakagami_moments(x)
    m_mle, _, scale = stats.nakagami.fit(x, floc=0)
    assert fit.m == pytest.approx(m_mle, rel=0.12)
    assert fit.omega == pytest.approx(scale**2, rel=0.05)
    assert fit.m == pytest.approx(m_true, rel=0.12)


def test_nakagami_m_orders_pre_rayleigh_rayleigh_rician():
    g = np.random.default_rng(3)
    n = 50_000
    rayleigh = np.abs(g.normal(size=n) + 1j * g.normal(size=n))
    # K-distributed (pre-Rayleigh: few scatterers): Rayleigh amplitude with gamma-distributed power
    k_dist = rayleigh * np.sqrt(g.gamma(1.5, 1 / 1.5, n))
    # Rician with a strong coherent component (specular reflector): |A + complex noise|, A = 3 sigma
    rician = np.abs(3.0 + g.normal(size=n) + 1j * g.normal(size=n))
    m_k, m_r, m_c = (nakagami_moments(x).m for x in (k_dist, rayleigh, rician))
    assert m_r == pytest.approx(1.0, abs=0.05)
    assert m_k < 0.8
    assert m_c > 2.0


def test_fwhm_of_a_gaussian_and_speckle_size_ordering():
    lags = np.arange(40)
    sigma = 5.0
    assert fwhm(np.exp(-(lags**2) / (2 * sigma**2))) == pytest.approx(2.3548 * sigma, rel=0.02)
    a = np.arange(16)
    ac = autocorrelation(np.sin(a / 2.0)[:, None] * np.ones((1, 8)))
    assert ac.shape == (32, 16) and ac[16, 8] == pytest.approx(1.0)
    # speckle correlated over more samples along angle than depth gives a wider angular FWHM
    g = np.random.default_rng(4)
    z = g.normal(size=(2, 96, 64)) + 1j * g.normal(size=(2, 96, 64))
    z = ndimage.gaussian_filter(z.real, (0, 3, 1)) + 1j * ndimage.gaussian_filter(z.imag, (0, 3, 1))
    img = 100 * np.abs(z) / np.abs(z).mean()
    mask = np.ones(img.shape, bool)
    st = speckle_stats(img, {"t": mask}, SpeckleConfig(patch=16, step=8))["t"]
    assert st["fwhm_angle_px"] > 1.8 * st["fwhm_depth_px"]
    assert st["nakagami_m"] == pytest.approx(1.0, abs=0.25)  # Rayleigh envelope
    assert st["mean_over_std"] == pytest.approx(1.91, rel=0.2)


def test_speckle_stats_skip_tissues_without_room_for_a_patch():
    img, lab = polar_set(2, 0)
    st = speckle_stats(img, tissue_masks(lab), SpeckleConfig(patch=16, step=8))
    assert st["perivascular"]["patches"] > 0 and st["perivascular"]["fwhm_depth_px"] > 0
    assert st["media"]["patches"] == 0 and st["media"]["nakagami_m"] is None
    assert st["media"]["nakagami_m_pooled"] is not None


# ---------------------------------------------------------------- profiles
def test_radial_profile_and_shadow_behind_calcium():
    img, lab = polar_set(3, 0)
    prof = radial_profile(img, 8)
    assert prof.shape == (8,) and prof[0] < 20  # catheter + lumen are dark
    sh = shadow_profile(img, lab, window=16)
    assert sh is not None and 0.2 < sh["shadow_ratio"] < 0.45  # the images carry a 0.3 shadow
    assert sh["alines"] == 3 * 24
    unshadowed = polar_set(3, 0, noise_only=True)[0]
    sh0 = shadow_profile(unshadowed, lab, window=16)
    assert sh0 is not None and sh0["shadow_ratio"] == pytest.approx(1.0, abs=0.1)
    assert shadow_profile(img, np.where(lab == 5, 2, lab)) is None  # no calcium


# ---------------------------------------------------------------- classifier two-sample test
def test_roc_auc_and_folds():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert roc_auc(np.zeros(6), np.array([0, 1, 0, 1, 0, 1])) == 0.5
    rf, ff = assign_folds(["a", "b", "c", "d"], ["a", "b", "c", "d", "x"], 2, seed=0)
    assert all(rf[n] == ff[n] for n in "abcd") and sorted(np.bincount(list(rf.values()))) == [2, 2]


def _patches(images, stream="c2st"):
    names = [f"f{i}" for i in range(len(images))]
    return extract_patches(images, names, PatchConfig(patch=16, per_frame=24, r_min=0.3), seed=0, stream=stream)


C2ST_FAST = C2STConfig(folds=4, epochs=20, channels=(8, 16, 32), n_bootstrap=200, n_most_fake=4)


@pytest.mark.slow
def test_c2st_cannot_tell_two_draws_of_the_same_simulator_apart():
    real = _patches(polar_set(8, seed=10)[0])
    fake = _patches(polar_set(8, seed=20)[0])
    r = classifier_two_sample_test(real, fake, C2ST_FAST, seed=0)
    assert abs(r.accuracy - 0.5) < 0.1 and abs(r.auc - 0.5) < 0.12
    assert r.accuracy_ci_wilson[0] < 0.5 < r.accuracy_ci_wilson[1] and not r.distinguishable
    assert r.most_fake.shape == (4, 16, 16) and len(r.to_dict()["most_fake"]) == 4


@pytest.mark.parametrize("kind", ["blur", "noise_only"])
def test_c2st_flags_blurred_and_noise_only_sets(kind):
    real = _patches(polar_set(8, seed=10)[0])
    bad = polar_set(8, seed=20, blur=1.5)[0] if kind == "blur" else polar_set(8, seed=20, noise_only=True)[0]
    r = classifier_two_sample_test(real, _patches(bad), C2ST_FAST, seed=0)
    assert r.accuracy > 0.95 and r.auc > 0.97 and r.distinguishable  # near 1
    assert r.accuracy_ci_wilson[0] > 0.9 and r.auc_ci_bootstrap[0] > 0.9


def test_c2st_needs_two_frames():
    p = _patches(polar_set(1, seed=0)[0])
    with pytest.raises(IvusSimError, match="at least 2 frames"):
        classifier_two_sample_test(p, p, C2ST_FAST)


# ---------------------------------------------------------------- feature distances
def test_frechet_distance_matches_closed_form_and_monai():
    g = np.random.default_rng(5)
    mu1, mu2 = g.normal(size=4), g.normal(size=4)
    v1, v2 = g.uniform(0.5, 2, 4), g.uniform(0.5, 2, 4)
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)  # commuting covariances
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(closed, rel=1e-6)
    # general covariances: agree with MONAI's implementation
    from monai.metrics.fid import compute_frechet_distance

    a, b = g.normal(size=(4, 4)), g.normal(size=(4, 4))
    s1, s2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    ref = float(compute_frechet_distance(*(torch.from_numpy(x) for x in (mu1, s1, mu2, s2))))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
    # from samples: identical sets ~0, Gaussian samples converge to the closed form
    x = g.normal(size=(20000, 3)) * np.sqrt(v1[:3]) + mu1[:3]
    y = g.normal(size=(20000, 3)) * np.sqrt(v2[:3]) + mu2[:3]
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(x)) < 1e-8
    closed3 = np.sum((mu1[:3] - mu2[:3]) ** 2) + np.sum((np.sqrt(v1[:3]) - np.sqrt(v2[:3])) ** 2)
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(y)) == pytest.approx(closed3, rel=0.05, abs=0.01)


def test_mmd_matches_monai_and_kid_orders_shifts():
    from monai.metrics.mmd import compute_mmd

    g = np.random.default_rng(6)
    x, y = g.normal(size=(50, 5)), g.normal(size=(50, 5)) + 0.3
    ref = float(compute_mmd(torch.from_numpy(x), torch.from_numpy(y), None))
    assert mmd_unbiased(x, y, Kernel.LINEAR) == pytest.approx(ref, rel=1e-9)
    z = g.normal(size=(400, 5))
    same = kernel_inception_distance(z[:200], z[200:], n_subsets=20, seed=0)[0]
    near = kernel_inception_distance(z[:200], z[200:] + 0.3, n_subsets=20, seed=0)[0]
    far = kernel_inception_distance(z[:200], z[200:] + 1.0, n_subsets=20, seed=0)[0]
    assert abs(same) < 0.05 < near < far


def test_feature_distances_real_vs_real_floor_and_a_bad_simulator():
    real = _patches(polar_set(8, seed=10)[0], "features")
    good = _patches(polar_set(8, seed=20)[0], "features")
    bad = _patches(polar_set(8, seed=20, blur=1.5)[0], "features")
    cfg = FeatureConfig(channels=(16, 16), epochs=10, kid_subsets=10)
    rg = feature_distances(real, good, cfg, seed=0)
    rb = feature_distances(real, bad, cfg, seed=0)
    assert rg["real_vs_real"]["frechet"] > 0 and rg["dims"] == 32
    assert rb["fake_vs_real"]["frechet"] > 3 * rg["fake_vs_real"]["frechet"]
    assert rb["frechet_ratio"] > 3 and rg["frechet_ratio"] < 2.5
    assert rb["fake_vs_real"]["kid"] > rg["fake_vs_real"]["kid"]


# ---------------------------------------------------------------- diversity
def test_diversity_zero_for_identical_samples_positive_for_independent_speckle():
    img = polar_set(1, seed=0)[0][0]
    same = pairwise_diversity([np.stack([img, img, img])])
    assert same["mean_l1"] == 0 and same["mean_1_minus_ssim"] == pytest.approx(0, abs=1e-9)
    assert same["pairs"] == 3
    indep = pairwise_diversity([polar_set(3, seed=1)[0]])
    assert indep["mean_l1"] > 0.05 and indep["mean_1_minus_ssim"] > 0.3
    a, b = np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)
    assert group_by_labels([a, b, a, None]) == [[0, 2], [1]]
    assert pairwise_diversity([img[None]])["mean_l1"] is None


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
def test_evaluate_and_report_end_to_end(tmp_path):
    ri, rl = cart_frames(4, 0)
    fi, fl = cart_frames(4, 1, shift=30)
    real = ImageSet([f"f{i}" for i in range(4)], ri, list(rl))
    fake = ImageSet([f"f{i}" for i in range(4)], fi, list(fl))
    cfg = EvaluateConfig(patches=PatchConfig(patch=16, per_frame=8), c2st=C2STConfig(folds=2, epochs=2, n_bootstrap=20),
                         features=FeatureConfig(channels=(8, 8), epochs=1, kid_subsets=5))
    from ivus_sim.metrics.calibration import load_reference_stats

    ev = evaluate(fake, real, load_reference_stats(), cfg, progress=False)
    r = ev.results
    assert r["intensity"]["tissues"]["fibrous"]["mean_diff"] == pytest.approx(30, abs=3)
    assert r["summary"]["c2st_accuracy"] is not None and r["summary"]["frechet_real_vs_real"] is not None
    assert r["diversity"]["groups"] == 1 and r["diversity"]["pairs"] == 6
    assert r["calibration"]["fake_vs_reference"]["tissue_js_weighted"] > 0
    jp, hp = write_report(tmp_path / "rep", ev)
    data = json.loads(jp.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert data["config"]["seed"] == 0 and data["inputs"]["fake_images"]["f0"]
    page = hp.read_text()
    assert page.count("data:image/png;base64,") >= 5
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "http" not in text and "<script" not in text  # self-contained: no CDN, no scripts
    with pytest.raises(IvusSimError, match="exists"):
        write_report(tmp_path / "rep", ev)
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {REPORT_JSON, REPORT_HTML}


def test_evaluate_without_anything_to_compare_with():
    imgs, labs = cart_frames(2, 0)
    with pytest.raises(IvusSimError, match="nothing to compare"):
        evaluate(ImageSet(["a", "b"], imgs, list(labs)), None, None, progress=False)


def test_image_sets_read_frames_through_the_one_reader(tmp_path):
    """16-bit frames read as their 8-bit counterparts (full-scale rule, not /257 only above 255); 1 x 1 refused."""
    from ivus_sim.metrics.imageset import load_gray

    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(u8).save(tmp_path / "a8.png")
    Image.fromarray(u8.astype(np.uint16) * 257).save(tmp_path / "a16.png")
    dim = (u8 // 2).astype(np.uint16) * 257  # a dark 16-bit frame reads dark, not stretched to its max
    Image.fromarray(dim).save(tmp_path / "d16.png")
    assert np.array_equal(load_gray(tmp_path / "a8.png"), u8.astype(np.float64))
    np.testing.assert_allclose(load_gray(tmp_path / "a16.png"), u8.astype(np.float64), atol=1e-9)
    np.testing.assert_allclose(load_gray(tmp_path / "d16.png"), (u8 // 2).astype(np.float64), atol=1e-9)
    low = np.full((32, 32), 200, np.uint16)  # 16-bit data whose max is below 255: still 16-bit scale
    Image.fromarray(low).save(tmp_path / "low16.png")
    np.testing.assert_allclose(load_gray(tmp_path / "low16.png"), 200 / 257, atol=1e-9)
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tiny / "x.png")
    with pytest.raises(IvusSimError, match="at least 16"):
        load_image_set(tiny)
