"""Behaviour of the stage-0 physics engine (speckle statistics, shadows, attenuation, determinism)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from ivus_sim.config import load_preset, load_tissue_acoustics
from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Geometry, radius_map
from ivus_sim.phantom.phantom import finalise_labels
from ivus_sim.physics import STAGES, PhysicsSimulator
from ivus_sim.physics.envelope import envelope
from ivus_sim.physics.grid import PolarGrid
from ivus_sim.physics.psf import Psf
from ivus_sim.physics.scatterers import sample_scatterers
from ivus_sim.physics.tissue_table import TissueTable
from ivus_sim.tissues import Tissue

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _disc_phantom(n: int = 64, lumen_mm: float = 1.2, fov_mm: float = 10.0) -> np.ndarray:
    """Lumen disc around the catheter, perivascular tissue elsewhere."""
    r_mm = radius_map(n) * fov_mm / 2
    lab = np.full((n, n), Tissue.PERIVASCULAR, np.uint8)
    lab[r_mm < lumen_mm] = Tissue.LUMEN
    return finalise_labels(lab[None], Geometry(n, fov_mm))


def _homogeneous_acoustics(density: float = 5000.0, attenuation: float = 0.0):
    ac = load_tissue_acoustics()
    t = dict(ac.tissues)
    for name in ("perivascular", "lumen"):
        t[name] = dataclasses.replace(t[name], texture_db=0.0, scatterer_density_per_mm2=density,
                                      attenuation_db_per_mhz_cm=attenuation, specular=False, backscatter_db=0.0,
                                      surface_db=0.0)
    return dataclasses.replace(ac, tissues=t)


def _polar_envelope(density: float, seed: int = 0) -> np.ndarray:
    """Envelope (before TGC/log) of a homogeneous, unattenuated tissue on the polar RF grid."""
    preset = load_preset("20mhz")
    grid = PolarGrid.from_preset(preset, 10.0, n_angles=256)
    table = TissueTable.build(_homogeneous_acoustics(density), preset)
    psf = Psf.build(preset, grid)
    labels = torch.zeros((1, grid.n_angles, grid.n_samples), dtype=torch.long)
    gens = [torch.Generator().manual_seed(seed)]
    x = sample_scatterers(labels, table, grid, gens)
    env = envelope(psf.analytic_rf(psf.lateral_filter(x)))[0].numpy()
    depth = np.arange(grid.n_samples) * grid.dz_mm
    return env[:, (depth > 1.5) & (depth < 4.5)]


def test_fully_developed_speckle_is_rayleigh():
    env = _polar_envelope(density=5000.0)
    ratio = env.mean() / env.std()
    assert abs(ratio - 1.91) < 0.06, ratio
    # Rayleigh: mean^2 / E[e^2] = pi / 4
    assert abs(env.mean() ** 2 / (env**2).mean() - np.pi / 4) < 0.02
    # unit-energy PSF: mean envelope power equals the backscattered power (0 dB)
    assert abs((env**2).mean() - 1.0) < 0.1


def test_sparse_scatterers_give_pre_rayleigh_texture():
    dense = _polar_envelope(density=5000.0)
    sparse = _polar_envelope(density=20.0)
    r_dense = dense.mean() / dense.std()
    r_sparse = sparse.mean() / sparse.std()
    assert r_sparse < r_dense - 0.3, (r_sparse, r_dense)


def _sim(**kw) -> PhysicsSimulator:
    return PhysicsSimulator(n_angles=kw.pop("n_angles", 128), **kw)


def test_output_shapes_and_types():
    lab = np.concatenate([_disc_phantom(48), _disc_phantom(48)])
    res = _sim().simulate(lab, seed=1, return_stages=True)
    assert res.image.shape == (2, 48, 48) and res.image.dtype == np.uint8
    assert res.polar.dtype == np.float32 and res.polar.shape[:2] == (2, 128)
    assert 0.0 <= res.polar.min() and res.polar.max() <= 1.0
    assert tuple(res.stages) == STAGES
    for v in res.stages.values():
        assert v.shape == (2, 48, 48)
    outside = lab[0] == Tissue.OUTSIDE
    assert (res.image[:, outside] == 0).all()
    cath = lab[0] == Tissue.CATHETER
    assert res.image[0][cath].mean() < 5  # the catheter core is blanked
    json.dumps(res.params)  # JSON-able


def test_same_seed_is_bit_identical_and_seeds_differ():
    lab = _disc_phantom(48)
    sim = _sim()
    a, b, c = sim.simulate(lab, seed=3), sim.simulate(lab, seed=3), sim.simulate(lab, seed=4)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.polar, b.polar)
    assert not np.array_equal(a.image, c.image)


def test_params_regenerate_bit_for_bit():
    lab = np.concatenate([_disc_phantom(48), _disc_phantom(48, lumen_mm=2.0)])
    res = _sim().simulate(lab, seed=11, nurd=True)
    params = json.loads(json.dumps(res.params))
    again = PhysicsSimulator.from_params(params).regenerate(lab, params)
    assert np.array_equal(again.image, res.image)
    assert np.array_equal(again.polar, res.polar)


def test_batch_composition_does_not_change_an_image():
    a, b = _disc_phantom(48), _disc_phantom(48, lumen_mm=2.0)
    sim = _sim()
    pair = sim.simulate(np.concatenate([a, b]), seed=5)
    alone = sim.simulate(b, seed=5, first_index=1)
    assert np.array_equal(pair.image[1], alone.image[0])
    np.testing.assert_allclose(pair.polar[1], alone.polar[0], atol=1e-5)


def _calcium_arc_phantom(n: int = 64) -> np.ndarray:
    r_mm = radius_map(n) * 5.0
    c = (n - 1) / 2
    yy, xx = np.mgrid[:n, :n]
    th = np.degrees(np.arctan2(yy - c, xx - c)) % 360
    lab = np.full((n, n), Tissue.PERIVASCULAR, np.uint8)
    lab[r_mm < 1.2] = Tissue.LUMEN
    lab[(r_mm >= 1.8) & (r_mm < 2.3) & (th < 70)] = Tissue.DENSE_CALCIUM
    return finalise_labels(lab[None], Geometry(n, 10.0))


def test_shadow_behind_calcium():
    lab = _calcium_arc_phantom(64)
    n = 64
    r_mm = radius_map(n) * 5.0
    c = (n - 1) / 2
    yy, xx = np.mgrid[:n, :n]
    th = np.degrees(np.arctan2(yy - c, xx - c)) % 360
    ring = (r_mm > 2.8) & (r_mm < 4.5)
    behind = ring & (th > 15) & (th < 55)
    elsewhere = ring & (th > 195) & (th < 235)
    img = _sim().simulate(np.repeat(lab, 4, 0), seed=0).image.astype(float)
    # behind the arc only the receiver noise is left (~18 grey levels); the far-field tissue beside it
    # is ~40-50 (the real far field, radial bins 7-9 of the calibration figures, is 24-50)
    assert img[:, behind].mean() < 0.5 * img[:, elsewhere].mean()
    assert img[:, behind].mean() < img[:, elsewhere].mean() - 15
    # the calcium itself is bright
    calc = lab[0] == Tissue.DENSE_CALCIUM
    assert img[:, calc].mean() > img[:, elsewhere].mean() + 25
    # the deterministic mean map shows the same shadow
    e = _sim().echogenicity(lab)[0]
    assert e[behind].mean() < e[elsewhere].mean() - 0.1


def test_attenuation_lowers_mean_intensity_with_depth():
    lab = _disc_phantom(64)
    r_mm = radius_map(64) * 5.0
    inner, outer = (r_mm > 1.5) & (r_mm < 2.5), (r_mm > 3.8) & (r_mm < 4.8)
    preset = dataclasses.replace(load_preset("20mhz"), processing=dataclasses.replace(
        load_preset("20mhz").processing, tgc_db_per_cm=0.0))
    preset = dataclasses.replace(preset, beam=dataclasses.replace(preset.beam, diffraction_exponent=0.0))
    drops = []
    for att in (0.0, 1.5):
        sim = PhysicsSimulator(preset, _homogeneous_acoustics(attenuation=att), n_angles=128)
        img = sim.simulate(np.repeat(lab, 4, 0), seed=2).image.astype(float)
        drops.append(img[:, inner].mean() - img[:, outer].mean())
    assert abs(drops[0]) < 8  # no attenuation, no TGC, no focal gain: flat on average
    assert drops[1] > drops[0] + 20  # 1.5 dB/(MHz cm) at 20 MHz over ~2.3 mm: ~28 dB two-way


def test_echogenicity_is_deterministic_mean_of_display():
    lab = _disc_phantom(64)
    sim = PhysicsSimulator(acoustics=_homogeneous_acoustics(), n_angles=128)
    e1, e2 = sim.echogenicity(lab), sim.echogenicity(lab)
    assert np.array_equal(e1, e2) and e1.shape == (1, 64, 64) and e1.dtype == np.float32
    assert 0 <= e1.min() and e1.max() <= 1
    imgs = sim.simulate(np.repeat(lab, 8, 0), seed=0).image / 255.0
    r_mm = radius_map(64) * 5.0
    ring = (r_mm > 2.0) & (r_mm < 3.5)
    assert abs(imgs[:, ring].mean() - e1[0][ring].mean()) < 0.04


def test_ringdown_is_bright_near_the_catheter():
    lab = _disc_phantom(64, lumen_mm=2.5)
    r_mm = radius_map(64) * 5.0
    near, far = (r_mm > 0.65) & (r_mm < 0.9), (r_mm > 1.4) & (r_mm < 2.2)
    img = _sim().simulate(lab, seed=0).image.astype(float)[0]
    assert img[near].mean() > img[far].mean() + 40


def _quiet(preset_name: str):
    """A preset with the receiver noise switched off and common display settings."""
    p = load_preset(preset_name)
    proc = dataclasses.replace(p.processing, noise_db=-200.0, tgc_db_per_cm=0.0, gain_db=0.0, dynamic_range_db=60.0)
    return dataclasses.replace(p, processing=proc)


def test_blood_speckle_stronger_at_40mhz():
    n = 64
    r_mm = radius_map(n) * 5.0
    lab = np.full((n, n), Tissue.PERIVASCULAR, np.uint8)
    lab[r_mm < 3.2] = Tissue.FIBROUS
    lab[r_mm < 2.4] = Tissue.LUMEN
    lab = finalise_labels(lab[None], Geometry(n, 10.0))
    blood, wall = (r_mm > 1.4) & (r_mm < 2.2), (r_mm > 2.6) & (r_mm < 3.0)
    contrast = {}
    for name in ("20mhz", "40mhz"):
        e = _sim(preset=_quiet(name)).echogenicity(lab)[0]
        contrast[name] = e[wall].mean() - e[blood].mean()  # display units; x 60 dB = dB
    # Rayleigh scatterers (f^4) gain ~7.5 dB over tissue (f^1.5) from 20 to 40 MHz
    assert contrast["40mhz"] < contrast["20mhz"] - 5 / 60
    # and with each preset's own settings the 40 MHz lumen shows speckle where 20 MHz shows a dark lumen
    m20 = _sim(preset=load_preset("20mhz")).simulate(lab, seed=0).image[0][blood].mean()
    m40 = _sim(preset=load_preset("40mhz")).simulate(lab, seed=0).image[0][blood].mean()
    assert m40 > m20 + 15


def test_nurd_warps_angles_and_is_recorded():
    lab = _calcium_arc_phantom(48)
    sim = _sim()
    plain, warped = sim.simulate(lab, seed=0), sim.simulate(lab, seed=0, nurd=True)
    assert plain.params["images"][0]["nurd"] is None
    coeffs = warped.params["images"][0]["nurd"]
    assert len(coeffs["amplitudes_deg"]) == sim.preset.nurd.harmonics
    assert not np.array_equal(plain.image, warped.image)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((3, 4, 5), np.uint8), "square"),
    (np.full((16, 16), 42, np.uint8), "unknown tissue ids"),
    (np.full((16, 16), 0.5, np.float32), "integer"),
    (np.full((16, 16), np.nan, np.float32), "NaN"),
    (np.zeros((16, 16), bool), "integer"),
    (np.zeros((4, 4), np.uint8), "at least 8"),
])
def test_bad_labels_raise_clear_errors(bad, match):
    with pytest.raises(IvusSimError, match=match):
        _sim().simulate(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_statistically():
    lab = np.repeat(_disc_phantom(64), 4, 0)
    cpu = _sim().simulate(lab, seed=0).image.astype(float)
    gpu = _sim(device="cuda").simulate(lab, seed=0).image.astype(float)
    assert gpu.shape == cpu.shape
    assert abs(gpu.mean() - cpu.mean()) < 3
