"""Physics-informed stage 2: the speckle layer's statistics, its learned PSF, gradients, seeding, shadows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ivus_sim.metrics.calibration import autocorr_fwhm
from ivus_sim.stage2.calibration_losses import CALIBRATION_LOSS_NAMES, CalibrationLosses
from ivus_sim.stage2.decoder import PhysicsStage2Decoder
from ivus_sim.stage2.formation import STYLE_KEYS, ScannerParams, form_image
from ivus_sim.two_stage import ModelConfig, Stage2Kind, TwoStageAAE

A, S, R = 256, 128, 5.0
STEP = 2 * math.pi / A


def _noise(b: int, seed: int = 0, a: int = A, s: int = S) -> torch.Tensor:
    return torch.randn(b, 7, a, s, generator=torch.Generator().manual_seed(seed))


def _style(b: int, **over: float) -> dict[str, torch.Tensor]:
    st = {k: v.detach() for k, v in ScannerParams(8)(torch.zeros(b, 8)).items()}
    for k, v in over.items():
        st[k] = torch.full((b,), float(v))
    return st


def test_uniform_region_gives_rayleigh_envelope() -> None:
    """Before compression a uniform-amplitude region is fully developed speckle: mean/std 1.91, Rayleigh."""
    mean = torch.full((4, A, S), 0.6)
    _, env = form_image(mean, _noise(4), _style(4, noise_db=-200.0), R, STEP, return_envelope=True)
    e = env[:, :, 40:110].flatten().double()
    assert abs(float(e.mean() / e.std()) - math.sqrt(math.pi / (4 - math.pi))) < 0.06
    # KS against a Rayleigh of the same mean power, on a decorrelated subsample (every 8th A-line and sample)
    sub = env[:, ::8, 40:110:8].flatten().numpy()
    scale = float(np.sqrt((sub**2).mean() / 2))
    assert stats.kstest(sub, "rayleigh", args=(0, scale)).statistic < 0.05
    # heterogeneous scatterer power (low density) gives pre-Rayleigh texture: mean/std clearly below 1.91
    _, env2 = form_image(mean, _noise(4), _style(4, noise_db=-200.0), R, STEP,
                         sigma_n=torch.full_like(mean, 2.0), return_envelope=True)
    e2 = env2[:, :, 40:110].flatten().double()
    assert float(e2.mean() / e2.std()) < 1.6


def test_mean_display_is_preserved() -> None:
    """The formation inverts the log compression: the mean display of the speckle equals the stage-1 mean."""
    for m in (0.3, 0.5, 0.7):
        disp = form_image(torch.full((4, A, S), m), _noise(4, 1), _style(4), R, STEP)
        assert isinstance(disp, torch.Tensor)
        assert abs(float(disp[:, :, 30:120].clamp(0, 1).mean()) - m) < 0.02


def _lateral_fwhm(disp: torch.Tensor) -> float:
    img = disp.clamp(0, 1).numpy() * 255
    widths = [autocorr_fwhm(img[b, t:t + 32, 60:92])[0] for b in range(img.shape[0]) for t in range(0, A - 32, 32)]
    return float(np.median(widths))


def test_grain_size_follows_the_learned_psf() -> None:
    """A smaller aperture (wider beam) gives a larger lateral speckle; a lower centre frequency a larger axial one."""
    mean = torch.full((2, A, S), 0.6)
    narrow = form_image(mean, _noise(2, 2), _style(2, aperture_mm=0.9), R, STEP)
    wide = form_image(mean, _noise(2, 2), _style(2, aperture_mm=0.3), R, STEP)
    assert isinstance(narrow, torch.Tensor) and isinstance(wide, torch.Tensor)
    assert _lateral_fwhm(wide) > _lateral_fwhm(narrow)

    def axial_corr(d: torch.Tensor) -> float:
        x = d[:, :, 40:110] - d[:, :, 40:110].mean()
        return float((x[..., 1:] * x[..., :-1]).mean() / (x * x).mean())

    hi = form_image(mean, _noise(2, 3), _style(2, centre_frequency_mhz=40.0), R, STEP)
    lo = form_image(mean, _noise(2, 3), _style(2, centre_frequency_mhz=10.0), R, STEP)
    assert isinstance(hi, torch.Tensor) and isinstance(lo, torch.Tensor)
    assert axial_corr(lo) > axial_corr(hi) + 0.1


def test_gradients_reach_psf_gain_and_parameter_net() -> None:
    torch.manual_seed(0)
    dec = PhysicsStage2Decoder(z_dim=8, n_angles=64, radius_mm=R, n_noise=1, refine_channels=(8, 16))
    lab = torch.zeros(2, 64, 32, dtype=torch.long)
    lab[:, :, 10:20] = 5
    mean = torch.rand(2, 1, 64, 32) * 0.5 + 0.2
    out = dec(mean, lab, torch.randn(2, 8), torch.randn(2, 7, 64, 32))
    img = out["image"]
    assert isinstance(img, torch.Tensor)
    # a loss that depends on contrast and grain
    (img.std() + (img[:, :, 1:] - img[:, :, :-1]).abs().mean()).backward()
    sc = dec.scanner
    for p in (sc.gain_db, sc.log_dynamic_range, sc.log_aperture, sc.log_centre_frequency, sc.log_bandwidth,
              sc.noise_db, sc.sensitivity, dec.params.head.conv.weight, dec.refine.out.conv.weight):
        assert p.grad is not None and float(p.grad.abs().sum()) > 0


def test_style_comes_from_z2_and_moves_the_image() -> None:
    sc = ScannerParams(8)
    z = torch.zeros(3, 8)
    z[1, 0], z[2, 2] = 2.0, 2.0
    st = sc(z)
    assert set(st) == set(STYLE_KEYS) and all(v.shape == (3,) for v in st.values())
    assert float(st["gain_db"][1]) == pytest.approx(float(st["gain_db"][0]) + 2.0)
    assert float(st["aperture_mm"][2]) > float(st["aperture_mm"][0])
    assert float(st["beam_sigma_focus_mm"][2]) < float(st["beam_sigma_focus_mm"][0])


def _model() -> TwoStageAAE:
    torch.manual_seed(0)
    cfg = ModelConfig(n_angles=64, n_samples=32, stage1_channels=(8, 16), stage1_downsample=1,
                      encoder_channels=(8, 16), refine_channels=(8, 16), n_noise=1)
    return TwoStageAAE(cfg, training_parts=False).eval()


def test_same_seed_same_image_and_no_monai_needed() -> None:
    m = _model()
    assert m.config.stage2_kind is Stage2Kind.PHYSICS and not hasattr(m, "patch_d")
    lab = torch.zeros(2, 64, 32, dtype=torch.uint8)
    lab[:, 20:30, 8:14] = 5

    def run(seed: int) -> dict:
        g = torch.Generator().manual_seed(seed)
        z1, z2 = m.sample_prior(2, 8, g), m.sample_prior(2, 8, g)
        with torch.no_grad():
            return m.render_polar(lab, z1, z2, m.noise(2, g))

    a, b, c = run(5), run(5), run(6)
    assert torch.equal(a["image"], b["image"]) and not torch.equal(a["image"], c["image"])
    assert set(a["style"]) == set(STYLE_KEYS)


def test_rotation_equivariant_no_seam() -> None:
    """Rolling labels, mean and noise by a multiple of 16 A-lines rolls the output (circular everywhere)."""
    torch.manual_seed(1)
    dec = PhysicsStage2Decoder(z_dim=8, n_angles=64, radius_mm=R, n_noise=1, refine_channels=(8, 16, 16))
    torch.nn.init.normal_(dec.refine.out.conv.weight, std=0.1)
    lab = torch.randint(0, 7, (1, 64, 32))
    mean, z, noise = torch.rand(1, 1, 64, 32), torch.randn(1, 8), torch.randn(1, 7, 64, 32)
    with torch.no_grad():
        y = dec(mean, lab, z, noise)["image"]
        y2 = dec(torch.roll(mean, 16, -2), torch.roll(lab, 16, -2), z, torch.roll(noise, 16, -2))["image"]
    assert isinstance(y, torch.Tensor) and isinstance(y2, torch.Tensor)
    assert float((torch.roll(y, 16, -2) - y2).abs().max()) < 1e-4


def test_mean_lock_keeps_stage_ones_brightness() -> None:
    """mean_lock: the k x k local mean of the displayed (clamped) image equals the input mean's, also in
    dark regions where speckle clips at black; without it the formation and refinement shift it."""
    from ivus_sim.stage2.decoder import local_box_mean

    torch.manual_seed(2)
    lab = torch.randint(0, 6, (2, 64, 32))  # no blank (catheter / outside) pixels
    mean = torch.rand(2, 1, 64, 32) * 0.3 + 0.35
    mean[:, :, 20:44, 12:] = 0.06  # a shadow: dark enough for speckle to clip at 0
    z, noise = torch.randn(2, 8), torch.randn(2, 7, 64, 32)
    shifts = {}
    for k in (0, 8):
        torch.manual_seed(3)
        dec = PhysicsStage2Decoder(z_dim=8, n_angles=64, radius_mm=R, n_noise=1, refine_channels=(8, 16),
                                   mean_lock=k)
        torch.nn.init.normal_(dec.refine.out.conv.weight, std=0.3)
        torch.nn.init.constant_(dec.refine.out.conv.bias, 0.05)  # a brightness offset the refinement wants
        with torch.no_grad():
            img = dec(mean, lab, z, noise)["image"]
        assert isinstance(img, torch.Tensor)
        shifts[k] = float((local_box_mean(img - mean, 8)[:, :, 8:-8, 4:-4]).abs().mean())
        if k:
            assert float(img.std()) > 0.05  # still speckled, not flattened to the mean
            assert abs(float(img[:, :, 24:40, 16:28].mean()) - 0.06) < 0.01  # the shadow stays as dark as asked
    assert shifts[8] < 0.015 < 0.1 < shifts[0], shifts


def test_shadow_in_the_mean_survives_formation() -> None:
    """Stage 1 puts the shadow into the mean; stage 2 keeps the region behind calcium dark."""
    mean = torch.full((2, A, S), 0.55)
    mean[:, 100:140, 40:50] = 0.9  # calcium: bright
    mean[:, 100:140, 50:] = 0.1  # acoustic shadow behind it
    disp = form_image(mean, _noise(2, 4), _style(2), R, STEP)
    assert isinstance(disp, torch.Tensor)
    d = disp.clamp(0, 1)
    behind, beside = float(d[:, 105:135, 60:120].mean()), float(d[:, 20:80, 60:120].mean())
    assert behind < beside - 0.25


def test_embedded_default_shadows_behind_calcium() -> None:
    """The shipped learned default draws a shadow behind calcium (stage 1 learned it from its teacher)."""
    from ivus_sim.geometry import Interp, cart_to_polar
    from ivus_sim.modelio import load_default_model

    model, _, _ = load_default_model("cpu")
    n = 256
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    r, th = np.hypot(yy, xx) / (n / 2), np.arctan2(yy, xx)
    lab = np.zeros((n, n), np.uint8)
    lab[r < 0.45] = 1
    lab[(r >= 0.45) & (r < 0.55)] = 2  # fibrous wall
    calc = (r >= 0.45) & (r < 0.55) & (np.abs(th) < 0.5)
    lab[calc] = 5
    lab[r >= 1] = 255
    lab[r < 0.115] = 7
    a, s = model.polar_shape
    lab_p = torch.as_tensor(np.asarray(cart_to_polar(torch.as_tensor(lab[None]), a, s, Interp.NEAREST)))
    g = torch.Generator().manual_seed(0)
    z1, z2 = model.sample_prior(4, model.z_dims[0], g), model.sample_prior(4, model.z_dims[1], g)
    with torch.no_grad():
        img = model.render_polar(lab_p.expand(4, -1, -1).contiguous(), z1, z2, model.noise(4, g))["image"][:, 0]
    depth = slice(int(0.6 * s), int(0.8 * s))
    ang = (torch.arange(a) * 2 * math.pi / a)
    ang = torch.where(ang > math.pi, ang - 2 * math.pi, ang)
    behind = img[:, ang.abs() < 0.35][:, :, depth].mean()
    elsewhere = img[:, ang.abs() > 1.2][:, :, depth].mean()
    assert float(behind) < float(elsewhere) - 0.08


def test_calibration_losses_prefer_real_like_images() -> None:
    cal = CalibrationLosses(n_angles=256)
    lab = torch.zeros(4, 128, 128, dtype=torch.long)  # perivascular everywhere
    lab[:, :, :20] = 1
    style = _style(4, aperture_mm=0.3)
    real_like = form_image(torch.full((4, 128, 128), 67 / 255 + 0.05), _noise(4, 5, 128, 128), style, R, STEP)
    assert isinstance(real_like, torch.Tensor)
    real_like = real_like.clamp(0, 1)[:, None].requires_grad_(True)
    flat = torch.full_like(real_like, 0.8)
    good, bad = cal(real_like, lab), cal(flat, lab)
    assert set(good) == set(CALIBRATION_LOSS_NAMES)
    assert good["cal_hist"] < bad["cal_hist"] and good["cal_profile"] < bad["cal_profile"]
    sum(good.values()).backward()
    assert real_like.grad is not None and float(real_like.grad.abs().sum()) > 0


def test_legacy_config_without_kind_is_spade() -> None:
    cfg = ModelConfig.from_dict({"n_angles": 64, "n_samples": 32})
    assert cfg.stage2_kind is Stage2Kind.SPADE
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()


def test_clipped_inversion_accounts_for_black() -> None:
    """A mean of displays clipped at black comes from less power than the unclipped formula says."""
    from ivus_sim.physics.compression import clipped_display_to_power_db, display_to_power_db

    m = torch.tensor([0.02, 0.07, 0.3, 0.6])
    clipped, plain = clipped_display_to_power_db(m, -13.8, 46.0), display_to_power_db(m, -13.8, 46.0)
    assert torch.allclose(clipped[2:], plain[2:], atol=0.15)  # (almost) no clipping: the same
    assert bool((clipped[:2] < plain[:2] - 1.0).all())
    # round trip: the clipped mean display of formed speckle equals the requested mean, also when dark
    for target in (0.05, 0.1):
        disp = form_image(torch.full((4, A, S), target), _noise(4, 7), _style(4, noise_db=-200.0), R, STEP)
        assert isinstance(disp, torch.Tensor)
        assert abs(float(disp[:, :, 30:120].clamp(0, 1).mean()) - target) < 0.01


def test_gradients_stay_finite_in_black_regions() -> None:
    """A mean of 0 (shadow, catheter) makes the scatterer power underflow; the gradients must stay finite."""
    mean = torch.zeros(1, 64, 32)
    mean[:, :, 16:] = 0.5
    mean.requires_grad_(True)
    st = {k: v for k, v in ScannerParams(8)(torch.zeros(1, 8)).items()}
    disp = form_image(mean, _noise(1, 8, 64, 32), st, R, STEP)
    assert isinstance(disp, torch.Tensor)
    disp.clamp(0, 1).sum().backward()
    assert mean.grad is not None and bool(torch.isfinite(mean.grad).all())


@pytest.mark.parametrize("k", [1, 5, 8, 16])
def test_local_box_mean_matches_a_reference_box_filter(k):
    """The separable box mean equals scipy's k x k uniform filter, periodic along the angles and
    edge-replicated along depth, in float32 and (within one bf16 rounding) in bf16."""
    from scipy.ndimage import uniform_filter

    from ivus_sim.stage2.decoder import local_box_mean

    x = torch.rand(2, 3, 40, 24, generator=torch.Generator().manual_seed(k))
    ref = uniform_filter(x.double().numpy(), size=(1, 1, k, k), mode=("nearest", "nearest", "wrap", "nearest"))
    np.testing.assert_allclose(local_box_mean(x, k).numpy(), ref, atol=2e-6)
    xb = x.bfloat16()
    ref_b = uniform_filter(xb.double().numpy(), size=(1, 1, k, k), mode=("nearest", "nearest", "wrap", "nearest"))
    out_b = local_box_mean(xb, k)
    assert out_b.dtype == torch.bfloat16
    np.testing.assert_allclose(out_b.double().numpy(), ref_b, atol=2 ** -8)


# ---------------------------------------------------------------- oversampled formation (formation_oversample)
def _fine_noise_layout(coarse: torch.Tensor, r: int) -> torch.Tensor:
    """The fine-grid channels (scatterer re/im, receiver re/im) that ``form_image(oversample=r)`` builds
    from the model-grid noise, interleaved along depth: ``(B, 6, A, S r)`` in the r = 1 layout."""
    from ivus_sim.stage2.formation import FORMATION_NOISE_CHANNELS

    b, _, a, s = coarse.shape
    fine = torch.zeros(b, 6, a, s * r)
    for k in range(r):
        src = (0, 1, 4, 5) if k == 0 else tuple(FORMATION_NOISE_CHANNELS + 4 * (k - 1) + j for j in range(4))
        for dst, c in zip((0, 1, 4, 5), src, strict=True):
            fine[:, dst, :, k::r] = coarse[:, c]
    return fine


@pytest.mark.parametrize("r", [2, 4])
def test_oversampled_formation_is_the_fine_grid_box_decimated(r: int) -> None:
    """Reference: forming on a grid r times finer (r = 1 code path) and averaging the envelope over each
    r samples (the engine's ``decimate_depth``) gives the oversampled envelope, sample for sample."""
    from ivus_sim.physics.scan import decimate_depth
    from ivus_sim.stage2.formation import formation_noise_channels

    assert formation_noise_channels(r) == 6 + 4 * (r - 1)
    b, a, s = 2, 64, 32
    mean = torch.full((b, a, s), 0.5)
    mean[:, :, 20:] = 0.7  # a boundary on a model-sample edge
    coarse = torch.randn(b, formation_noise_channels(r), a, s, generator=torch.Generator().manual_seed(11))
    st = _style(b, centre_frequency_mhz=40.0, fractional_bandwidth=0.7, noise_db=-35.0)
    _, env = form_image(mean, coarse, st, R, 2 * math.pi / a, return_envelope=True, oversample=r)
    _, env_fine = form_image(mean.repeat_interleave(r, -1), _fine_noise_layout(coarse, r), st, R,
                             2 * math.pi / a, return_envelope=True)
    ref = decimate_depth(env_fine, r)
    # the two differ only by the axial FFT's length (zero padding; the sampled Gaussian transfer's
    # inverse DFT differs at the 1e-3 level)
    assert torch.allclose(env, ref, rtol=5e-3, atol=1e-6)
    assert not torch.allclose(env, decimate_depth(env_fine.roll(1, -1), r), rtol=5e-2)  # the test can fail


def test_oversampling_gives_fine_grain_with_reduced_contrast() -> None:
    """A pulse shorter than a model sample: on the model grid the speckle is white at full Rayleigh
    contrast; oversampled, its envelope is averaged (contrast down, mean/std up) while the grain stays
    finer than a 20 MHz pulse's. A long (20 MHz) pulse is resolved either way: oversampling barely moves it."""
    def stats_of(f: float, bw: float, r: int) -> tuple[float, float]:
        from ivus_sim.stage2.formation import formation_noise_channels

        n = torch.randn(4, formation_noise_channels(r), A, S, generator=torch.Generator().manual_seed(3))
        st = _style(4, centre_frequency_mhz=f, fractional_bandwidth=bw, noise_db=-200.0)
        disp, env = form_image(torch.full((4, A, S), 0.6), n, st, R, STEP, return_envelope=True, oversample=r)
        d = disp[:, :, 40:110] - disp[:, :, 40:110].mean()
        e = env[:, :, 40:110]
        return float(e.mean() / e.std()), float((d[..., 1:] * d[..., :-1]).mean() / (d * d).mean())

    (snr1, acf1), (snr2, acf2) = stats_of(40.0, 0.7, 1), stats_of(40.0, 0.7, 2)
    rayleigh = math.sqrt(math.pi / (4 - math.pi))
    assert abs(snr1 - rayleigh) < 0.06 and abs(acf1) < 0.05  # white, fully developed
    assert snr2 > rayleigh + 0.3  # averaged: lower contrast (about 2.5 for two nearly independent samples)
    (snr20_1, acf20_1), (snr20_2, acf20_2) = stats_of(20.0, 0.3, 1), stats_of(20.0, 0.3, 2)
    assert acf2 < acf20_2 - 0.3  # still much finer than a 20 MHz grain
    assert abs(snr20_2 - snr20_1) < 0.1 and abs(acf20_2 - acf20_1) < 0.15


def test_model_with_oversampled_formation_draws_more_noise_and_reproduces() -> None:
    torch.manual_seed(0)
    base = dict(n_angles=64, n_samples=32, stage1_channels=(8, 16), stage1_downsample=1,
                encoder_channels=(8, 16), refine_channels=(8, 16), n_noise=1)
    m = TwoStageAAE(ModelConfig(**base, formation_oversample=2), training_parts=False).eval()
    assert m.noise_channels == 6 + 4 + 1
    assert ModelConfig.from_dict(m.config.to_dict()) == m.config
    with pytest.raises(Exception, match="formation_oversample"):
        ModelConfig(**base, formation_oversample=3)
    with pytest.raises(Exception, match="stage2_kind: physics"):  # the legacy stage 2 forms no speckle
        ModelConfig(**base, formation_oversample=2, stage2_kind=Stage2Kind.SPADE)
    lab = torch.zeros(2, 64, 32, dtype=torch.uint8)
    lab[:, :, 8:20] = 1
    lab[:, :, 20:] = 2

    def draw() -> torch.Tensor:
        g = torch.Generator().manual_seed(5)
        z1, z2 = m.sample_prior(2, m.z_dims[0], g), m.sample_prior(2, m.z_dims[1], g)
        with torch.no_grad():
            out = m.render_polar(lab, z1, z2, m.noise(2, g))["image"]
        assert isinstance(out, torch.Tensor)
        return out

    a, b = draw(), draw()
    assert a.shape == (2, 1, 64, 32) and torch.equal(a, b)
    # the refinement's own noise channel is the last one, after the formation's 10
    n = m.noise(2, torch.Generator().manual_seed(1))
    n2 = n.clone()
    n2[:, 8] += 1.0  # a fine-sample scatterer channel: changes the speckle
    g = torch.Generator().manual_seed(5)
    z1, z2 = m.sample_prior(2, m.z_dims[0], g), m.sample_prior(2, m.z_dims[1], g)
    with torch.no_grad():
        i1 = m.render_polar(lab, z1, z2, n)["image"]
        i2 = m.render_polar(lab, z1, z2, n2)["image"]
    assert isinstance(i1, torch.Tensor) and isinstance(i2, torch.Tensor)
    assert float((i1 - i2).abs().mean()) > 1e-3
