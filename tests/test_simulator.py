"""Tests of the generation API (:class:`ivus_sim.simulator.Simulator`).

Mechanics (seeding, geometry, pullback smoothness, regeneration, exploration) run on a tiny,
randomly initialised two-stage model saved the way a training run saves it, and on the physics
engine; the realism checks (diversity floor, calcium shadow) run on the embedded default model
and skip, saying why, when this installation ships no weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import fov_mask, radius_map
from ivus_sim.modelio import has_default_model
from ivus_sim.phantom import Phantom
from ivus_sim.phantom.random import random_phantom
from ivus_sim.seeding import torch_generator
from ivus_sim.simulator import Simulator, slerp, smooth_path, to_uint8
from ivus_sim.tissues import Tissue

NO_DEFAULT = "no embedded default model shipped in ivus_sim/weights yet (train it: see docs/generate.md)"


def tiny_model_dir(root: Path) -> Path:
    """A randomly initialised, tiny TwoStageAAE saved as a run's ``model/`` folder."""
    from ivus_sim.modelio import save_model
    from ivus_sim.two_stage import ModelConfig, TwoStageAAE

    torch.manual_seed(0)
    cfg = ModelConfig(n_angles=32, n_samples=16, stage1_channels=(8, 16, 16), encoder_channels=(8, 16, 16),
                      stage2_channels=8, stage2_blocks=1, latent_hidden=16, patch_channels=8, patch_layers=2,
                      spade_hidden=8)
    save_model(TwoStageAAE(cfg), root / "model", {"note": "untrained test model"})
    return root


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> Simulator:
    return Simulator.from_run(tiny_model_dir(tmp_path_factory.mktemp("run")), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def physics() -> Simulator:
    return Simulator.physics("20mhz", device="cpu")


@pytest.fixture(scope="module")
def default() -> Simulator:
    if not has_default_model():
        pytest.skip(NO_DEFAULT)
    return Simulator.default(device="cpu")


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return random_phantom(0, size=48)


def calcium_arc_phantom(size: int = 64) -> Phantom:
    """Perivascular tissue, a 1.2 mm lumen, a 70-degree calcium arc at 1.8-2.3 mm (as in tests/test_physics.py)."""
    r_mm = radius_map(size) * 5.0
    lab = np.full((size, size), Tissue.PERIVASCULAR, np.uint8)
    lab[r_mm < 1.2] = Tissue.LUMEN
    lab[(r_mm >= 1.8) & (r_mm < 2.3) & (angle_deg(size) < 70)] = Tissue.DENSE_CALCIUM
    return Phantom.from_array(lab)


def angle_deg(size: int) -> np.ndarray:
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    return np.degrees(np.arctan2(yy - c, xx - c)) % 360


def shadow_contrast(images: np.ndarray, size: int = 64) -> tuple[float, float]:
    """The physics test's measurement: (mean elsewhere - mean behind the arc, calcium - elsewhere) [grey levels].

    Behind = 2.8-4.5 mm deep at 15-55 degrees (in the arc's shadow); elsewhere = the same depths at 195-235 degrees.
    """
    r_mm, th = radius_map(size) * 5.0, angle_deg(size)
    ring = (r_mm > 2.8) & (r_mm < 4.5)
    behind, elsewhere = ring & (th > 15) & (th < 55), ring & (th > 195) & (th < 235)
    calc = calcium_arc_phantom(size).labels[0] == Tissue.DENSE_CALCIUM
    x = images.astype(float)
    return float(x[:, elsewhere].mean() - x[:, behind].mean()), float(x[:, calc].mean() - x[:, elsewhere].mean())


def mean_pairwise_difference(images: np.ndarray) -> float:
    """Mean absolute grey-level difference over all pairs of images (inside the FOV)."""
    m = fov_mask(images.shape[-1])
    x = images.astype(np.float64)
    d = [np.abs(x[i] - x[j])[..., m].mean() for i in range(len(x)) for j in range(i + 1, len(x))]
    return float(np.mean(d))


# ----------------------------------------------------------------------------- reproducibility
@pytest.fixture(scope="module")
def batches(learned: Simulator, physics: Simulator, phantom: Phantom) -> dict[str, tuple[Simulator, object]]:
    """One 3-image batch (seed 5) per engine, shared by the reproducibility tests (physics is slow)."""
    return {"learned": (learned, learned.generate(phantom, n=3, seed=5)),
            "physics": (physics, physics.generate(phantom, n=3, seed=5))}


@pytest.mark.parametrize("engine", ["learned", "physics"])
def test_same_seed_same_images_and_images_independent_of_batch(engine: str, batches: dict, phantom: Phantom
                                                               ) -> None:
    sim, res = batches[engine]
    alone = sim.generate(phantom, n=1, seed=5, first_index=2)  # image 2 of the batch, made alone
    assert np.array_equal(alone.images[0], res.images[2])
    if engine == "learned":
        assert np.array_equal(sim.generate(phantom, n=3, seed=5).images, res.images)


@pytest.mark.parametrize("engine", ["learned", "physics"])
def test_different_seeds_give_different_images(engine: str, batches: dict, phantom: Phantom) -> None:
    sim, res = batches[engine]
    other = sim.generate(phantom, n=1, seed=6).images[0]
    assert not np.array_equal(other, res.images[0])
    # diversity within one call: mean pairwise difference of 3 draws above 2 grey levels
    assert mean_pairwise_difference(res.images) > 2.0


@pytest.mark.parametrize("engine", ["learned", "physics"])
def test_sidecar_record_regenerates_the_image(engine: str, batches: dict, phantom: Phantom) -> None:
    sim, res = batches[engine]
    rec = res.records[1]
    assert rec["phantom"]["hash"] == phantom.hash() and rec["seed"] == 5 and rec["index"] == 1
    assert rec["engine"] == engine and rec["model_id"] == sim.model_id
    assert rec["geometry"]["size"] == 48 and rec["geometry"]["fov_mm"] == 10.0
    assert np.array_equal(sim.regenerate(rec, phantom), res.images[1])
    other = random_phantom(1, size=48)
    with pytest.raises(IvusSimError, match="hash"):
        sim.regenerate(rec, other)


def test_fixed_z_is_recorded_and_regenerates(learned: Simulator, phantom: Phantom) -> None:
    d1, d2 = learned.z_dims
    z = np.linspace(-1, 1, d1 + d2).tolist()
    res = learned.generate(phantom, n=2, seed=3, z=z)
    assert np.allclose(res.records[0]["z1"] + res.records[0]["z2"], z, atol=1e-6)
    assert res.records[0]["z_fixed"] == "z1+z2"
    assert not np.array_equal(res.images[0], res.images[1])  # noise still differs per image
    assert np.array_equal(learned.regenerate(res.records[1], phantom), res.images[1])
    only_z1 = learned.generate(phantom, n=1, seed=3, z=z[:d1])
    assert np.allclose(only_z1.records[0]["z1"], z[:d1], atol=1e-6)
    with pytest.raises(IvusSimError, match=f"{d1 + d2} values"):
        learned.generate(phantom, n=1, z=[0.1, 0.2, 0.3])


# ----------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("engine", ["learned", "physics"])
@pytest.mark.parametrize("size", [40, 64])
def test_output_geometry_equals_input_and_fov_is_respected(engine: str, size: int,
                                                           request: pytest.FixtureRequest) -> None:
    sim: Simulator = request.getfixturevalue(engine)
    ph = random_phantom(2, size=size, fov_mm=8.0)
    n = 2 if engine == "learned" else 1
    res = sim.generate(ph, n=n, seed=0, return_stages=True)
    assert res.images.shape == (n, size, size) and res.images.dtype == np.uint8
    assert res.records[0]["geometry"]["fov_mm"] == 8.0
    outside = ~fov_mask(size)
    assert (res.images[:, outside] == 0).all()
    assert res.stages and all(v.shape == (n, size, size) for v in res.stages.values())


def test_pullback_geometry_and_smoothness(learned: Simulator) -> None:
    """Neighbouring pullback frames are much closer than independent draws (no flicker)."""
    labels = np.repeat(random_phantom(3, size=40).labels, 9, axis=0)
    smooth = learned.generate(labels, n=2, seed=1).images
    assert smooth.shape == (2, 9, 40, 40)
    indep = learned.generate(labels, n=2, seed=1, frames_per_code=1).images  # every frame an independent draw
    d_smooth = np.abs(np.diff(smooth.astype(float), axis=1)).mean()
    d_indep = np.abs(np.diff(indep.astype(float), axis=1)).mean()
    assert d_indep > 2.0 and d_smooth < 0.35 * d_indep
    # frame 0 of a pullback is the single-frame image of the same seed and index
    single = learned.generate(labels[0], n=2, seed=1).images
    assert np.array_equal(single, smooth[:, 0])
    fixed = learned.generate(labels[:3], n=1, seed=1, z=[0.2] * sum(learned.z_dims))
    assert "z1_anchors" in fixed.records[0]
    assert np.array_equal(learned.regenerate(fixed.records[0], labels[:3]), fixed.images[0])


def test_batched_renderer_equals_the_models_generate(learned: Simulator, phantom: Phantom) -> None:
    """The simulator's cached-condition renderer gives exactly what TwoStageAAE.generate gives."""
    d1, d2 = learned.z_dims
    z = torch.linspace(-1, 1, d1 + d2)
    ours = learned.generate(phantom, n=1, seed=4, z=z.tolist()).images[0]
    g = torch_generator(4, "generate", "noise", 0, 0)  # the noise stream of image 0, anchor 0
    ref = learned.model.generate(phantom.labels, z1=z[:d1], z2=z[d1:], generator=g)
    assert np.array_equal(ours, to_uint8(ref["image"][0, 0]))


def test_generation_runs_the_models_render_polar_and_records_its_style(learned: Simulator, phantom: Phantom,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One learned forward pass: Simulator.generate calls TwoStageAAE.render_polar (no re-implementation),
    converting each distinct label frame to polar once, and records render_polar's style as scanner_style."""
    model = learned.model
    calls: list[tuple[int, ...]] = []
    original = type(model).render_polar

    def spy(self, lab_p, z1, z2, noise):  # type: ignore[no-untyped-def]
        calls.append(tuple(lab_p.shape))
        out = original(self, lab_p, z1, z2, noise)
        out["style"] = {"gain_db": z2[:, 0] * 0 + 3.5}
        return out

    monkeypatch.setattr(type(model), "render_polar", spy)
    res = learned.generate(phantom, n=3, seed=0, batch_size=8)
    assert calls == [(3, *model.polar_shape)]
    assert res.records[2]["scanner_style"] == {"gain_db": 3.5}
    pull = learned.generate(np.repeat(phantom.labels, 2, axis=0), n=1, seed=0)
    assert pull.records[0]["scanner_style"] == {"gain_db": [3.5, 3.5]}  # one value per frame


def test_truncated_model_file_is_a_one_line_error(tmp_path: Path) -> None:
    run = tiny_model_dir(tmp_path / "run")
    w = run / "model" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(IvusSimError) as e:
        Simulator.from_run(run, device="cpu")
    assert "\n" not in str(e.value) and "model" in str(e.value)


def test_bf16_is_deterministic_close_to_fp32_and_recorded(learned: Simulator, phantom: Phantom) -> None:
    fast = Simulator.from_run(Path(learned.describe()["model_source"]), device="cpu", precision="bf16")
    a = fast.generate(phantom, n=2, seed=0)
    assert a.records[0]["precision"] == "bf16"
    assert np.array_equal(a.images, fast.generate(phantom, n=2, seed=0).images)
    ref = learned.generate(phantom, n=2, seed=0).images.astype(float)
    assert np.abs(a.images - ref).mean() < 1.5  # grey levels
    assert np.array_equal(learned.regenerate(a.records[1], phantom), a.images[1])  # uses the recorded precision
    with pytest.raises(IvusSimError, match="precision"):
        Simulator.from_run(Path(learned.describe()["model_source"]), precision="fp8")


def test_slerp_path_hits_anchors_and_keeps_the_norm() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4000, generator=g)
    path = smooth_path(a, 17, 8)
    assert torch.equal(path[0], a[0]) and torch.equal(path[8], a[1]) and torch.equal(path[16], a[2])
    norms = path.norm(dim=1) / np.sqrt(4000)
    assert float(norms.min()) > 0.95 and float(norms.max()) < 1.05  # variance preserved between anchors
    mid = slerp(a[0], a[1], 0.5)
    assert torch.allclose(mid, (a[0] + a[1]) / (2 * np.cos(np.pi / 4)), atol=0.05)


# ----------------------------------------------------------------------------- exploration
def test_explore_grid_and_interpolation(learned: Simulator, phantom: Phantom) -> None:
    d1, d2 = learned.z_dims
    res = learned.explore(phantom, grid=3, dims=(0, d1), seed=2)
    assert res.images.shape == (3, 3, 48, 48) and res.codes.shape == (3, 3, d1 + d2)
    assert res.codes[0, 0, 0] < res.codes[2, 0, 0] and res.codes[0, 0, d1] < res.codes[0, 2, d1]
    assert not np.array_equal(res.images[0, 0], res.images[2, 2])
    assert res.mosaic(gap=2).shape == (3 * 48 + 4, 3 * 48 + 4)
    za, zb = [0.5] * (d1 + d2), [-0.5] * (d1 + d2)
    it = learned.interpolate(phantom, za, zb, steps=4, seed=2)
    assert it.images.shape == (1, 4, 48, 48)
    # the endpoints are exactly the images generated with those codes (same seed: same noise)
    assert np.array_equal(it.images[0, 0], learned.generate(phantom, n=1, seed=2, z=za).images[0])
    assert np.array_equal(it.images[0, -1], learned.generate(phantom, n=1, seed=2, z=zb).images[0])
    with pytest.raises(IvusSimError, match="dims"):
        learned.explore(phantom, grid=3, dims=(0, 0))


# ----------------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors(learned: Simulator, physics: Simulator, phantom: Phantom) -> None:
    good = phantom.labels[0]
    cases = [
        (dict(phantom=good[:, :40]), "square"),
        (dict(phantom=good[None, None]), r"\(N, N\) label map or \(F, N, N\)"),
        (dict(phantom=np.where(good == Tissue.LUMEN, 42, good).astype(np.uint8)), "unknown tissue ids 42"),
        (dict(phantom=np.where(good == Tissue.LUMEN, Tissue.FIBROUS, good).astype(np.uint8)), "no lumen"),
        (dict(phantom=good.astype(float) + 0.5), "non-integer"),
        (dict(phantom=good, n=0), "n must be"),
        (dict(phantom=good, seed=-1), "seed"),
        (dict(phantom=good, z=[float("nan")] * sum(learned.z_dims)), "NaN"),
        (dict(phantom=good, fov_mm=-3.0), "fov_mm"),
        (dict(phantom="a string"), "label map"),
    ]
    for kwargs, match in cases:
        with pytest.raises(IvusSimError, match=match):
            learned.generate(**kwargs)
    with pytest.raises(IvusSimError, match="learned engine"):
        physics.generate(good, n=1, z=[0.0])
    with pytest.raises(IvusSimError, match="learned engine"):
        physics.explore(good)


def test_default_without_weights_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ivus_sim.modelio as modelio

    monkeypatch.setattr(modelio, "has_default_model", lambda: False)
    with pytest.raises(IvusSimError, match="no embedded default model"):
        Simulator.default(device="cpu")
    with pytest.raises(IvusSimError, match="model not found"):
        Simulator.from_run("/nonexistent/run", device="cpu")


def test_exported_checkpoint_loads_as_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          phantom: Phantom) -> None:
    """export_checkpoint keeps only the generator; Simulator.default() loads it through importlib.resources."""
    import ivus_sim.modelio as modelio
    from ivus_sim.training.checkpoint import save_checkpoint
    from ivus_sim.training.config import load_train_config
    from ivus_sim.training.export import export_checkpoint
    from ivus_sim.two_stage import TwoStageAAE

    cfg = load_train_config("smoke")
    torch.manual_seed(0)
    model = TwoStageAAE(cfg.model)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.pt", model=model, optimisers={}, progress={"step": 50, "epoch": 1},
                    config=cfg.to_dict(), data_fingerprint="test")
    export_checkpoint(run, tmp_path / "weights", {"corpus": {"n": 4}, "commands": ["..."]})
    card = json.loads((tmp_path / "weights" / "model.json").read_text())
    assert card["generator_only"] and card["steps"] == 50 and card["corpus"] == {"n": 4}
    monkeypatch.setattr(modelio, "_resource", lambda name: tmp_path / "weights" / name)
    sim = Simulator.default(device="cpu", precision="fp32")
    assert sim.model_id.startswith("ivus-sim-default-") and sim.model_card["steps"] == 50
    g = torch_generator(0, "z")
    z1, z2 = model.prior.sample(1, cfg.model.z1_dim, generator=g), model.prior.sample(1, cfg.model.z2_dim, generator=g)
    ref = model.generate(phantom.labels, z1=z1, z2=z2, generator=torch_generator(3, "generate", "noise", 0, 0))
    ours = sim.generate(phantom, n=1, seed=3, z=torch.cat([z1, z2], 1)[0].tolist()).images[0]
    assert np.abs(ours.astype(int) - to_uint8(ref["image"][0, 0])).max() <= 1  # same generator weights


# ----------------------------------------------------------------------------- the embedded default
def test_default_model_card_and_determinism(default: Simulator, phantom: Phantom) -> None:
    card = default.model_card
    assert "commands" in card and "corpus" in card and card["corpus"]["n"] > 0
    a = default.generate(phantom, n=4, seed=0)
    assert np.array_equal(a.images, default.generate(phantom, n=4, seed=0).images)
    assert mean_pairwise_difference(a.images) > 5.0  # stated diversity floor for the trained model
    assert (a.images[:, ~fov_mask(48)] == 0).all()


def test_default_pullback_does_not_flicker(default: Simulator) -> None:
    labels = np.repeat(random_phantom(3, size=48).labels, 9, axis=0)
    smooth = default.generate(labels, n=1, seed=0).images.astype(float)
    indep = default.generate(labels, n=1, seed=0, frames_per_code=1).images.astype(float)
    assert np.abs(np.diff(smooth, axis=1)).mean() < 0.35 * np.abs(np.diff(indep, axis=1)).mean()


@pytest.mark.parametrize("engine", ["physics", "default"])
def test_shadow_behind_calcium(engine: str, request: pytest.FixtureRequest) -> None:
    """Same measurement and margins as the physics engine's test: shadowed tissue is darker than the same
    tissue at the same depth elsewhere by > 25 grey levels, and the calcium itself is bright."""
    sim: Simulator = request.getfixturevalue(engine)
    res = sim.generate(calcium_arc_phantom(64), n=4, seed=0)
    shadow, bright = shadow_contrast(res.images)
    assert shadow > 25 and bright > 25


@pytest.mark.parametrize("engine", ["physics", "default"])
def test_catheter_is_dark_and_nothing_outside_the_fov(engine: str, request: pytest.FixtureRequest) -> None:
    """The catheter core (inside 60 % of its radius) stays dark; pixels outside the FOV are 0."""
    from ivus_sim.geometry import Geometry

    sim: Simulator = request.getfixturevalue(engine)
    ph = random_phantom(4, size=64)
    img = sim.generate(ph, n=1, seed=0).images.astype(float)
    r_px = radius_map(64) * 32
    core = r_px < 0.6 * Geometry(64).catheter_radius_px
    wall = (ph.labels[0] != Tissue.LUMEN) & (ph.labels[0] != Tissue.CATHETER) & fov_mask(64)
    assert img[:, core].mean() < 0.25 * img[:, wall].mean()
    assert (img[:, ~fov_mask(64)] == 0).all()
