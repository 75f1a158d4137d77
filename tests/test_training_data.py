"""Dataset adapters, polar samples, paired augmentation, configs and the synthetic corpus."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ivus_sim.errors import IvusSimError
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
    polar_sample,
)
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
    assert np.array_equal(lab, labels[1]) and np.array_equal(img, images[1])


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
    assert np.array_equal(lab, labels[2]) and np.array_equal(img, images[2])


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
    assert crop["labels"].shape == (8, 16) and crop["image"].shape == (1, 8, 16)


def test_shipped_configs_load_and_unknown_keys_fail(tmp_path: Path) -> None:
    for name in ("smoke", "cpu_default", "gpu"):
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
        d["data"]["augment"]["crop_angles"] = 6
        TrainConfig.from_dict(d)
    assert dataclasses.asdict(cfg.data.augment)["crop_angles"] is None
