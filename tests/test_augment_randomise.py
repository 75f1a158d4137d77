"""Scanner randomisation of ``ivus-sim augment`` (ivus_sim.augment.randomise): draws, ranges, sidecars.

Physics engine at 48 px (fast); one learned-engine case checks the display chain and the sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ivus_sim.augment import AugmentConfig, Engine, EngineSpec, ImageFormat, LabelMapping, regenerate_case, run_augment
from ivus_sim.augment.randomise import BUILTIN_RANGES, ScannerRanges, load_ranges, physics_setup, sample_scanner
from ivus_sim.errors import IvusSimError
from ivus_sim.io import array_hash

SCANNER = BUILTIN_RANGES["scanner"]


def _run(out: Path, engine: Engine = Engine.PHYSICS, n: int = 6, **kw) -> AugmentConfig:
    cfg = AugmentConfig(n=n, out=out, seed=5, engine=EngineSpec(engine), size=48, fmt=ImageFormat.PNG,
                        labels_map=LabelMapping.builtin("lumen-wall"), randomise=kw.pop("randomise", SCANNER), **kw)
    assert run_augment(cfg, workers=0, progress=False).complete
    return cfg


def test_draws_are_deterministic_within_the_ranges_and_differ_between_cases():
    a = [sample_scanner(3, i, SCANNER) for i in range(40)]
    assert a == [sample_scanner(3, i, SCANNER) for i in range(40)]
    assert a != [sample_scanner(4, i, SCANNER) for i in range(40)]
    f = np.array([s["centre_frequency_mhz"] for s in a])
    assert f.min() >= 20 and f.max() <= 60 and f.std() > 5
    assert all(SCANNER.fov_mm[0] <= s["fov_mm"] <= SCANNER.fov_mm[1] for s in a)
    assert {s["nurd_max_shift_deg"] > 0 for s in a} == {True, False}
    json.dumps(a)  # JSON-able


def test_processing_follows_the_frequency():
    lo = sample_scanner(0, 0, ScannerRanges(centre_frequency_mhz=(20.0, 20.0), noise_offset_db=(0.0, 0.0)))
    hi = sample_scanner(0, 0, ScannerRanges(centre_frequency_mhz=(50.0, 50.0), noise_offset_db=(0.0, 0.0)))
    p_lo, _ = physics_setup(lo)
    p_hi, _ = physics_setup(hi)
    assert p_hi.transducer.sampling_frequency_mhz == 200.0
    # quieter receive chain at 40+ MHz (blood speckle shows), dark blood at 20 MHz
    assert p_hi.processing.noise_db == pytest.approx(-60.0) and p_lo.processing.noise_db == pytest.approx(-29.0)
    assert p_hi.processing.tgc_db_per_cm > p_lo.processing.tgc_db_per_cm


@pytest.mark.slow
def test_every_case_is_reproducible_from_its_sidecar_physics(tmp_path):
    _run(tmp_path / "d")
    seen = set()
    for i in range(6):
        sc = json.loads((tmp_path / f"d/imagesTr/ivus_{i:06d}.json").read_text())
        assert sc["scanner"]["centre_frequency_mhz"] == sample_scanner(5, i, SCANNER)["centre_frequency_mhz"]
        assert sc["run"]["randomise"]["name"] == "scanner"
        img, lab = regenerate_case(sc)
        assert array_hash(img) == sc["image_hash"] and array_hash(lab) == sc["label_hash"]
        seen.add(sc["image_hash"])
        # the geometry follows the drawn field of view
        assert sc["phantom"]["geometry"]["fov_mm"] == pytest.approx(sc["scanner"]["fov_mm"])
    assert len(seen) == 6
    rows = (tmp_path / "d/manifest.csv").read_text().splitlines()
    assert "scanner.centre_frequency_mhz" in rows[0]


@pytest.mark.slow
def test_randomised_learned_case_is_reproducible_from_its_sidecar(tmp_path):
    _run(tmp_path / "l", engine=Engine.LEARNED, n=2)
    sc = json.loads((tmp_path / "l/imagesTr/ivus_000001.json").read_text())
    img, _ = regenerate_case(sc)
    assert array_hash(img) == sc["image_hash"]
    assert sc["simulator"]["z_fixed"] == "z1+z2"


@pytest.mark.slow
def test_randomised_and_plain_runs_differ_and_resume_checks_the_ranges(tmp_path):
    _run(tmp_path / "r", n=2)
    with pytest.raises(IvusSimError, match="different randomise"):
        _run(tmp_path / "r", n=2, randomise=ScannerRanges(name="other", centre_frequency_mhz=(30.0, 31.0)))


def test_monai_datalist_flags_synthetic_cases(tmp_path):
    _run(tmp_path / "m", n=2)
    ds = json.loads((tmp_path / "m/dataset.json").read_text())
    assert all(item["synthetic"] is True for item in ds["training"])


def test_yaml_ranges_start_from_the_named_default(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("centre_frequency_mhz: [30, 45]\np_nurd: 0\nfov_mm: 10\n")
    r = load_ranges(p)
    assert r.name == "mine" and r.centre_frequency_mhz == (30.0, 45.0) and r.fov_mm == (10.0, 10.0)
    assert r.gain_offset_db == SCANNER.gain_offset_db
    assert all(30 <= sample_scanner(0, i, r)["centre_frequency_mhz"] <= 45 for i in range(20))


@pytest.mark.parametrize(("text", "match"), [
    ("centre_frequency_mhz: [60, 20]\n", "centre_frequency_mhz: low 60 > high 20"),
    ("centre_frequency_mhz: [1, 20]\n", "outside the supported"),
    ("frequency: [20, 40]\n", "frequency: unknown field"),
    ("p_nurd: 2\n", "p_nurd: expected a probability"),
    ("gain_offset_db: [a, 3]\n", "gain_offset_db\\[0\\]: expected a number"),
    ("gain_offset_db: [1, 2, 3]\n", "gain_offset_db: expected a list of 2 values"),
    ("base: nope\n", "base: unknown named range"),
    ("- 1\n- 2\n", "expected a mapping"),
])
def test_bad_ranges_file_is_one_line_error(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(IvusSimError, match=match) as e:
        load_ranges(p)
    assert "\n" not in str(e.value) and "bad.yaml" in str(e.value)


def test_unknown_named_range():
    with pytest.raises(IvusSimError, match="not a named range"):
        load_ranges("scaner")


def test_combine_nnunet_keeps_real_cases_in_every_validation_fold(tmp_path):
    from ivus_sim.augment import Layout, combine_nnunet

    def make(out: Path, n: int, seed: int) -> None:
        cfg = AugmentConfig(n=n, out=out, seed=seed, engine=EngineSpec(Engine.PHYSICS), size=32,
                            fmt=ImageFormat.PNG, layout=Layout.NNUNET, labels_map=LabelMapping.builtin("lumen-wall"))
        run_augment(cfg, workers=0, progress=False)

    make(tmp_path / "Dataset001_Mine", 5, 1)  # stands in for the user's data
    make(tmp_path / "Dataset002_Syn", 3, 2)
    out = combine_nnunet(tmp_path / "Dataset001_Mine", tmp_path / "Dataset002_Syn", tmp_path / "Dataset003_Both")
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["numTraining"] == 8 and len(ds["ivus_sim"]["synthetic_cases"]) == 3
    assert len(list((out / "imagesTr").iterdir())) == 8 and (out / "labelsTr/syn_ivus_000002.png").read_bytes()
    splits = json.loads((out / "splits_final.json").read_text())
    assert len(splits) == 5
    assert all(not any(c.startswith("syn_") for c in s["val"]) for s in splits)
    assert sorted(c for s in splits for c in s["val"]) == [f"ivus_{i:06d}" for i in range(5)]
    with pytest.raises(IvusSimError, match="not empty"):
        combine_nnunet(tmp_path / "Dataset001_Mine", tmp_path / "Dataset002_Syn", out)


def test_no_drawn_scanner_lies_outside_its_ranges():
    """``settings_outside`` and the sampler agree: every preset the ranges draw is inside them
    (so a preset it flags really is one the randomisation never makes)."""
    from ivus_sim.augment.randomise import settings_outside

    for name, ranges in BUILTIN_RANGES.items():
        for i in range(60):
            preset, _ = physics_setup(sample_scanner(5, i, ranges))
            assert settings_outside(preset, ranges) == {}, (name, i)


def test_hidden_test_scanners_lie_outside_the_randomisation():
    """The segmentation benchmark's hidden scanners stay out of what ``--randomise scanner`` draws
    in at least four settings each (widening the ranges over one of them fails here)."""
    from dataclasses import replace

    from ivus_sim.augment.randomise import settings_outside
    from ivus_sim.config import load_preset

    folder = Path(__file__).resolve().parents[1] / "benchmarks" / "hidden_scanners"
    presets = sorted(folder.glob("hidden_*.yaml"))
    assert len(presets) >= 7
    ranges = BUILTIN_RANGES["scanner"]
    for path in presets:
        if path.name == "hidden_tissues.yaml":
            continue
        out = settings_outside(load_preset(path), ranges)
        assert len(out) >= 4, (path.name, out)
    e = load_preset(folder / "hidden_e.yaml")
    assert {"fractional_bandwidth", "aperture_mm", "focus_mm", "dynamic_range_db"} <= set(settings_outside(e, ranges))
    wider = replace(ranges, fractional_bandwidth=(0.1, 1.0))  # a range that covers E's bandwidth
    assert "fractional_bandwidth" not in settings_outside(e, wider)
    # the shipped 20 MHz preset is one the ranges can draw
    assert settings_outside(load_preset("20mhz"), ranges) == {}


def test_hidden_scanners_of_the_wide_ranges_lie_outside_them():
    """``benchmarks/ranges/wide.yaml`` (segmentation round 5) covers the round-4 scanners E and G;
    its own hidden scanners H and I (round 5) and J and K (round 6) stay >= 4 settings outside it."""
    from ivus_sim.augment.randomise import settings_outside
    from ivus_sim.config import load_preset

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    wide = load_ranges(root / "ranges" / "wide.yaml")
    assert wide.name == "wide"
    assert wide == load_ranges("wide")  # the benchmark's file names the built-in range (same draws)
    for n in ("h", "i", "j", "k"):
        out = settings_outside(load_preset(root / "hidden_scanners" / f"hidden_{n}.yaml"), wide)
        assert len(out) >= 4, (n, out)
    for n in ("e", "g"):  # development scanners for these ranges: inside them
        assert settings_outside(load_preset(root / "hidden_scanners" / f"hidden_{n}.yaml"), wide) == {}
    for i in range(40):  # the wide ranges draw presets inside themselves too
        preset, _ = physics_setup(sample_scanner(9, i, wide))
        assert settings_outside(preset, wide) == {}, i
