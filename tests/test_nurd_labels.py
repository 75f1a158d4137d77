"""NURD moves the displayed image; the label map a reader traces must move with it.

Checks the one Cartesian warp (:func:`ivus_sim.physics.nurd.warp_cartesian`) against the engine's
own polar path (labels -> polar -> ``apply_nurd`` -> scan conversion), and that ``augment`` and
``corpus`` write labels aligned with their NURD-distorted images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ivus_sim.augment import AugmentConfig, Engine, EngineSpec, ImageFormat, LabelMapping, run_augment
from ivus_sim.augment.randomise import ScannerRanges
from ivus_sim.config import Nurd
from ivus_sim.geometry import Interp, cart_to_polar, polar_to_cart, radius_map
from ivus_sim.physics.nurd import apply_nurd, sample_nurd, warp_cartesian


def _sectors(n: int = 96, width_deg: float = 15.0) -> np.ndarray:
    """Label ids 1..4 in angular sectors: any angular misregistration shows."""
    c = (n - 1) / 2
    yy, xx = np.mgrid[:n, :n]
    th = np.degrees(np.arctan2(yy - c, xx - c)) % 360
    return (1 + (th // width_deg).astype(np.uint8) % 4).astype(np.uint8)


def test_cartesian_label_warp_matches_the_engines_polar_warp() -> None:
    n, a, s = 96, 720, 96
    lab = _sectors(n)
    coeffs = sample_nurd(Nurd(enabled=True, max_shift_deg=12.0, harmonics=3), np.random.default_rng(1))
    # the engine's path: labels to polar (nearest), warp each tissue's indicator along the angles, back
    pol = torch.as_tensor(cart_to_polar(lab, a, s, Interp.NEAREST)).long()
    onehot = torch.stack([(pol == k).float() for k in range(5)])
    warped = torch.stack([apply_nurd(onehot[k], coeffs) for k in range(5)]).argmax(0).to(torch.uint8)
    ref = np.asarray(polar_to_cart(warped.numpy(), n, Interp.NEAREST))
    ring = (radius_map(n) > 0.2) & (radius_map(n) < 0.95)
    agree = float((warp_cartesian(lab, coeffs, order=0) == ref)[ring].mean())
    unwarped = float((lab == ref)[ring].mean())
    assert agree > 0.97, agree
    assert unwarped < agree - 0.15, (unwarped, agree)  # the warp is large enough for the check to bite
    assert warp_cartesian(lab, None, order=0) is lab
    assert set(np.unique(warp_cartesian(lab, coeffs, order=0))) <= {1, 2, 3, 4}  # ids, never blends


def test_recorded_nurd_describes_the_displayed_distortion() -> None:
    """The physics image with NURD equals (up to interpolation) the image without NURD warped by
    the recorded coefficients: the same warp applied to the labels keeps them on the image."""
    import yaml

    from ivus_sim.config import load_preset
    from ivus_sim.phantom import random_phantom
    from ivus_sim.physics import PhysicsSimulator

    d = load_preset("20mhz").to_dict()
    d["nurd"].update(enabled=True, max_shift_deg=25.0)
    lab = random_phantom(2, size=128, index=0).labels[0]
    plain = PhysicsSimulator(preset=load_preset("20mhz")).simulate(lab, seed=4)
    import tempfile

    with tempfile.TemporaryDirectory() as t:
        (Path(t) / "n.yaml").write_text(yaml.safe_dump(d))
        res = PhysicsSimulator(preset=load_preset(Path(t) / "n.yaml")).simulate(lab, seed=4)
    coeffs = res.params["images"][0]["nurd"]
    a, b = res.image[0].astype(np.float64), plain.image[0].astype(np.float64)

    def corr(x: np.ndarray, y: np.ndarray) -> float:
        x, y = x - x.mean(), y - y.mean()
        return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))

    inverse = {"amplitudes_deg": [-v for v in coeffs["amplitudes_deg"]], "phases_rad": coeffs["phases_rad"]}
    assert corr(a, warp_cartesian(b, coeffs, order=1)) > 0.9
    assert corr(a, warp_cartesian(b, coeffs, order=1)) > corr(a, b) + 0.1
    assert corr(a, warp_cartesian(b, coeffs, order=1)) > corr(a, warp_cartesian(b, inverse, order=1)) + 0.1


def test_augment_labels_are_warped_with_their_images_nurd(tmp_path: Path) -> None:
    ranges = ScannerRanges(p_nurd=1.0, nurd_max_shift_deg=(25.0, 25.0))
    cfg = AugmentConfig(n=2, out=tmp_path / "d", seed=2, engine=EngineSpec(Engine.PHYSICS), size=64,
                        fmt=ImageFormat.PNG, labels_map=LabelMapping.builtin("lumen-wall"), randomise=ranges)
    assert run_augment(cfg, workers=0, progress=False).complete
    from ivus_sim.augment.run import _CaseMaker

    maker = _CaseMaker(cfg, {})
    for i in range(2):
        sc = json.loads((tmp_path / f"d/imagesTr/ivus_{i:06d}.json").read_text())
        coeffs = sc["simulator"]["physics_params"]["images"][0]["nurd"]
        assert coeffs is not None
        lab = np.asarray(Image.open(tmp_path / f"d/labelsTr/ivus_{i:06d}.png"))
        frame = maker.source.get(i, fov_mm=float(sc["scanner"]["fov_mm"]),
                                 catheter_radius_mm=float(sc["scanner"]["catheter_radius_mm"]))
        assert np.array_equal(lab, maker.mapping.apply(warp_cartesian(frame.labels, coeffs, order=0)))
        assert not np.array_equal(lab, maker.mapping.apply(frame.labels))


def test_corpus_labels_follow_the_nurd_of_their_image(tmp_path: Path) -> None:
    import yaml

    from ivus_sim.config import load_preset
    from ivus_sim.training.corpus import make_corpus

    d = load_preset("20mhz").to_dict()
    d["nurd"].update(enabled=True, max_shift_deg=20.0)
    d["name"] = "nurd20"
    (tmp_path / "nurd20.yaml").write_text(yaml.safe_dump(d))
    make_corpus(2, tmp_path / "c", seed=3, preset=str(tmp_path / "nurd20.yaml"), size=64, progress=False)
    from ivus_sim.phantom import random_phantom

    for i in range(2):
        sc = json.loads((tmp_path / f"c/{i:05d}_image.json").read_text())
        lab = np.asarray(Image.open(tmp_path / f"c/{i:05d}_label.png"))
        ph = random_phantom(3, size=64, fov_mm=10.0, index=i).labels[0]
        assert not np.array_equal(lab, ph)
        assert set(np.unique(lab)) <= set(np.unique(ph))
        assert sc["index"] == i
