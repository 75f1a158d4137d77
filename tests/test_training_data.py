"""Dataset adapters, polar samples, paired augmentation, configs and the synthetic corpus."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Interp
from ivus_sim.io import save_nifti, save_png
from ivus_sim.seeding import rng
from ivus_sim.tissues import Tissue, colourise
from ivus_sim.training.config import TrainConfig, load_train_config
from ivus_sim.training.data import (
    Augmentation,
    Layout,
    augment,
    data_fingerprint,
    discover,
    load_pair,
    make_dataset,
    mirrored_window,
    polar_sample,
)
from ivus_sim.training.phases import Stage2Mean
from ivus_sim.training.synthetic import toy_pairs


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray]:
    return toy_pairs(3, 32, seed=1)


def test_pairs_layout_round_trip(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    labels, images = toy
    for i in range(3):
        save_png(tmp_path / f"c{i}_label.png", labels[i])
        save_png(tmp_path / f"c{i}_image.png", images[i])
    save_png(tmp_path / "orphan_image.png", images[0])  # no label: ignored
    refs = discover(tmp_path)
    assert [r.layout for r in refs] == [Layout.PAIRS] * 3
    lab, img = load_pair(refs[1])
    assert np.array_equal(lab, labels[1]) and np.array_equal(img, images[1] / np.float32(255))


def test_folders_layout_and_sketch_colour_labels(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    labels, images = toy
    for i in range(2):
        save_png(tmp_path / "images" / f"f{i}.png", images[i])
        save_png(tmp_path / "labels" / f"f{i}.png", colourise(labels[i]))  # RGB sketch colours
    refs = discover(tmp_path)
    assert len(refs) == 2 and refs[0].layout is Layout.FOLDERS
    assert np.array_equal(load_pair(refs[0])[0], labels[0])


def test_nifti_pullback_gives_one_pair_per_frame(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    labels, images = toy
    save_nifti(tmp_path / "pb_label.nii.gz", labels, pixel_mm=10 / 32)
    save_nifti(tmp_path / "pb_image.nii.gz", images, pixel_mm=10 / 32)
    refs = discover(tmp_path, Layout.NIFTI)
    assert [r.frame for r in refs] == [0, 1, 2]
    lab, img = load_pair(refs[2])
    assert np.array_equal(lab, labels[2]) and np.array_equal(img, images[2] / np.float32(255))


def test_challenge_layout_uses_the_contour_converter(tmp_path: Path) -> None:
    n = 64
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    c = (n - 1) / 2
    for name, r in (("lum", 12), ("med", 24)):
        pts = np.stack([c + r * np.cos(t), c + r * np.sin(t)], 1)
        (tmp_path / f"{name}_frame_01_0001_003.txt").write_text("\n".join(f"{x:.2f},{y:.2f}" for x, y in pts))
    save_png(tmp_path / "frame_01_0001_003.png", np.full((n, n), 90, np.uint8))
    refs = discover(tmp_path)
    assert refs[0].layout is Layout.CHALLENGE
    lab, _ = load_pair(refs[0])
    assert lab[int(c), int(c) + 8] == Tissue.LUMEN and lab[int(c), int(c) + 28] == Tissue.PERIVASCULAR


def test_vh_layout_uses_the_colour_map_converter(tmp_path: Path) -> None:
    from ivus_sim.phantom.converters import VHPalette

    n = 64
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
    rgb = np.zeros((n, n, 3), np.uint8)
    rgb[(r > 12) & (r < 22)] = VHPalette().fibrous
    save_png(tmp_path / "v_vh.png", rgb)
    save_png(tmp_path / "v_image.png", np.full((n, n), 70, np.uint8))
    refs = discover(tmp_path)
    assert refs[0].layout is Layout.VH
    lab, _ = load_pair(refs[0])
    c = int((n - 1) / 2)
    assert lab[c, c + 8] == Tissue.LUMEN and lab[c, c + 17] == Tissue.FIBROUS and lab[c, c + 26] == Tissue.PERIVASCULAR


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(IvusSimError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(IvusSimError, match="no training pairs"):
        discover(tmp_path)


def test_fingerprint_changes_with_content(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    labels, images = toy
    save_png(tmp_path / "a_label.png", labels[0])
    save_png(tmp_path / "a_image.png", images[0])
    f1 = data_fingerprint(discover(tmp_path))
    assert f1 == data_fingerprint(discover(tmp_path))
    save_png(tmp_path / "a_image.png", images[1])
    assert data_fingerprint(discover(tmp_path)) != f1


def test_polar_sample_and_cache_dataset(toy: tuple[np.ndarray, np.ndarray]) -> None:
    labels, images = toy
    s = polar_sample(labels[0], images[0], (32, 16))
    assert s["labels"].shape == (32, 16) and s["image"].shape == s["mean"].shape == (1, 32, 16)
    assert s["mean"].std() < s["image"].std()  # despeckled
    ds = make_dataset(toy, (32, 16))
    assert len(ds) == 3 and torch.equal(ds[0]["image"], s["image"])


def test_augmentation_is_paired_and_seeded(toy: tuple[np.ndarray, np.ndarray]) -> None:
    s = polar_sample(toy[0][0], toy[1][0], (32, 16))
    aug = Augmentation(rotate=True, gain=0.0, gamma=0.0, elastic_prob=0.0)
    a = augment(s, aug, rng(0, "t", 1))
    shift = next(k for k in range(32) if torch.equal(torch.roll(s["labels"], k, 0), a["labels"]))
    assert torch.equal(torch.roll(s["image"], shift, -2), a["image"])  # image rotated with its labels
    assert torch.equal(torch.roll(s["mean"], shift, -2), a["mean"])
    b = augment(s, aug, rng(0, "t", 1))
    assert torch.equal(a["image"], b["image"])
    el = augment(s, Augmentation(rotate=False, gain=0, gamma=0, elastic_prob=1.0, elastic_spacing=8,
                                 elastic_magnitude=2.0), rng(0, "t", 2))
    assert el["labels"].dtype == torch.uint8 and set(el["labels"].unique().tolist()) <= set(
        s["labels"].unique().tolist())
    assert not torch.equal(el["image"], s["image"])
    crop = augment(s, Augmentation(crop_angles=8), rng(0, "t", 3))
    assert crop["labels"].shape == (16, 16) and crop["image"].shape == (1, 16, 16)  # window + its mirror


def test_shipped_configs_load_and_unknown_keys_fail(tmp_path: Path) -> None:
    for name in ("smoke", "own_data", "cpu_default", "gpu"):
        cfg = load_train_config(name)
        assert cfg.name == name and TrainConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batch_sise: 4\n")
    with pytest.raises(IvusSimError, match="batch_sise"):
        load_train_config(bad)
    with pytest.raises(IvusSimError, match="unknown training config"):
        load_train_config("nonexistent")
    cfg = load_train_config("smoke")
    with pytest.raises(IvusSimError, match="crop_angles"):
        d = cfg.to_dict()
        d["data"]["augment"]["crop_angles"] = 3
        TrainConfig.from_dict(d)
    assert dataclasses.asdict(cfg.data.augment)["crop_angles"] is None


def test_crop_windows_do_not_wrap_their_far_ends_onto_each_other(toy: tuple[np.ndarray, np.ndarray]) -> None:
    """The networks pad the angle axis circularly. A bare 8-line window of a 32-line frame would put
    line 7 next to line 0 (never neighbours in a frame); the mirrored strip joins every line to itself."""
    s = polar_sample(toy[0][0], toy[1][0], (32, 16))
    aug = Augmentation(rotate=False, gain=0.0, gamma=0.0, elastic_prob=0.0, crop_angles=8)
    img = augment(s, aug, rng(0, "t", 4))["image"]
    assert img.shape == (1, 16, 16)
    start = next(k for k in range(32) if torch.equal(img[..., :8, :], torch.roll(s["image"], -k, -2)[..., :8, :]))
    window = torch.roll(s["image"], -start, -2)[..., :8, :]
    assert torch.equal(img[..., 8:, :], window.flip(-2))
    # circular neighbours across both junctions are the same A-line (continuous), not the far end
    assert torch.equal(img[..., -1, :], img[..., 0, :]) and torch.equal(img[..., 7, :], img[..., 8, :])
    assert torch.equal(mirrored_window(s["labels"], start, 8)[:8], torch.roll(s["labels"], -start, 0)[:8])


def test_sixteen_bit_frames_are_read_by_full_scale_not_their_own_maximum(
        toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    from PIL import Image

    labels, images = toy
    save_png(tmp_path / "a_label.png", labels[0])
    img16 = (images[0].astype(np.uint16) * 100)  # max well below 65535
    Image.fromarray(img16).save(tmp_path / "a_image.png")
    _, img = load_pair(discover(tmp_path)[0])
    assert img.dtype == np.float32
    np.testing.assert_allclose(img, img16 / 65535.0, atol=1e-6)
    assert img.max() < 0.5  # the old reader stretched every frame to its own maximum (1.0)


def test_own_data_extends_cpu_default_without_calibration_losses(tmp_path: Path) -> None:
    own, base = load_train_config("own_data"), load_train_config("cpu_default")
    # the architecture of cpu_default, except what few frames of an unknown scanner need
    assert dataclasses.replace(own.model, scan_conversion=base.model.scan_conversion,
                               transmission=base.model.transmission,
                               stage1_downsample=base.model.stage1_downsample,
                               formation_oversample=base.model.formation_oversample) == base.model
    assert own.name == "own_data"
    # speckle formed on a finer depth grid than the model's (fine and averaged, as a scanner's)
    assert own.model.formation_oversample == 2 and base.model.formation_oversample == 1
    assert own.model.scan_conversion is Interp.BICUBIC
    assert own.model.transmission and own.model.stage1_downsample == 1
    assert own.data.target.sigma_angle < base.data.target.sigma_angle
    assert all(own.train.loss_weights[k] == 0.0
               for k in ("cal_hist", "cal_profile", "cal_speckle", "s2_rec"))
    assert own.train.loss_weights["s2_texture"] > 0 and own.train.loss_weights["s2_hist"] > 0
    # stage 2 on stage 1's output (as at generation): only the statistics losses, none pixel-aligned
    assert own.train.stage2_mean is Stage2Mean.GENERATED and base.train.stage2_mean is Stage2Mean.TARGET
    assert own.train.loss_weights["s2_stats"] == 0.0
    assert own.data.augment.crop_angles is None and own.evaluate.holdout_fraction > 0
    child = tmp_path / "mine.yaml"
    child.write_text("extends: own_data\ntrain:\n  max_steps: 7\n")
    mine = load_train_config(child)
    assert mine.train.max_steps == 7 and mine.train.batch_size == own.train.batch_size and mine.name == "mine"
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(IvusSimError, match="extends itself"):
        load_train_config(loop)


def test_bad_nifti_pullbacks_are_named_by_validation(toy: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    import nibabel as nib

    from ivus_sim.training.data import validate_pairs

    labels, images = toy
    save_nifti(tmp_path / "ok_label.nii.gz", labels, pixel_mm=10 / 32)
    save_nifti(tmp_path / "ok_image.nii.gz", images, pixel_mm=10 / 32)
    nan = images.astype(np.float32) / 255
    nan[1, 3, 3] = np.nan
    save_nifti(tmp_path / "nan_label.nii.gz", labels, pixel_mm=10 / 32)
    nib.save(nib.Nifti1Image(nan.transpose(2, 1, 0), np.eye(4)), str(tmp_path / "nan_image.nii.gz"))
    good, bad = validate_pairs(discover(tmp_path, Layout.NIFTI))
    assert len(good) == 3 + 2  # every frame of the good pullback, the finite frames of the other
    assert len(bad) == 1 and "nan_image.nii.gz" in bad[0][1] and "NaN" in bad[0][1]
