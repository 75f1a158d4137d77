"""`ivus-sim evaluate`: in-process CLI tests (outputs, reference figures, user errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _helpers import synthetic_frames
from PIL import Image
from typer.testing import CliRunner

from ivus_sim.cli.main import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _write_frames(folder, n, seed, size=64, with_labels=True, shift=0.0, image_suffix="_image"):
    folder.mkdir(parents=True, exist_ok=True)
    imgs, lab = synthetic_frames(n, seed, size, shift)
    for i, img in enumerate(imgs):
        Image.fromarray(img.astype(np.uint8)).save(folder / f"frame_{i:02d}{image_suffix}.png")
        if with_labels:
            Image.fromarray(lab).save(folder / f"frame_{i:02d}_label.png")


@pytest.mark.slow
def test_evaluate_writes_json_and_html(tmp_path):
    _write_frames(tmp_path / "real", 4, 0)
    _write_frames(tmp_path / "fake", 4, 1, with_labels=False, shift=25, image_suffix="")
    out = tmp_path / "report"
    res = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                              "--out", str(out), "--folds", "2", "--epochs", "2", "--patch", "16",
                              "--patches-per-frame", "8", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "c2st_accuracy" in res.output and "tissue_js_weighted" in res.output
    data = json.loads((out / "realism.json").read_text())
    # fake frames have no labels: they borrow the real frames' label maps by name
    assert data["intensity"]["tissues"]["fibrous"]["mean_diff"] == pytest.approx(25, abs=3)
    assert data["c2st"]["folds"] == 2 and 0 <= data["c2st"]["accuracy"] <= 1
    assert data["features"]["real_vs_real"]["frechet"] >= 0
    assert data["config"]["c2st"]["epochs"] == 2 and data["inputs"]["real"].endswith("real")
    assert "data:image/png;base64," in (out / "realism.html").read_text()
    assert "--epochs 2" in data["command"] and "--patch 16" in data["command"]
    # the same command again refuses to overwrite, before measuring anything
    again = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                                "--out", str(out), "--no-c2st", "--no-features", "-q"])
    assert again.exit_code == 2 and "exists" in again.output and "Traceback" not in again.output


def test_reference_stats_without_real_images(tmp_path):
    _write_frames(tmp_path / "fake", 2, 1, with_labels=False, image_suffix="")
    _write_frames(tmp_path / "labels", 2, 1, image_suffix="_unused")
    out = tmp_path / "rep"
    res = runner.invoke(app, ["evaluate", "--fake", str(tmp_path / "fake"), "--labels", str(tmp_path / "labels"),
                              "--reference-stats", "builtin", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "realism.json").read_text())
    cmp_ = data["calibration"]["fake_vs_reference"]
    assert cmp_["tissue_js_weighted"] > 0 and "fibrous" in cmp_["tissues"]
    assert data["c2st"] is None and any("need real images" in n for n in data["notes"])
    assert data["diversity"]["pairs"] == 1  # two samples of one label map


@pytest.mark.parametrize(
    "args,message",
    [
        (["--fake", "{tmp}/fake", "--out", "{tmp}/o"], "--real DIR and/or --reference-stats"),
        (["--fake", "{tmp}/missing", "--real", "{tmp}/real", "--out", "{tmp}/o"], "not a folder"),
        (["--fake", "{tmp}/fake", "--reference-stats", "{tmp}/nope.json", "--out", "{tmp}/o"],
         "reference statistics file not found"),
        (["--fake", "{tmp}/fake", "--real", "{tmp}/real", "--patch", "20", "--out", "{tmp}/o"], "multiple of 8"),
        (["--fake", "{tmp}/fake", "--real", "{tmp}/one", "--out", "{tmp}/o", "--no-features"], "at least 2 frames"),
        (["--fake", "{tmp}/fake", "--reference-stats", "{tmp}/bad.json", "--out", "{tmp}/o"],
         "not a reference-statistics file"),
    ],
)
def test_bad_input_is_one_line_error_and_no_report(tmp_path, args, message):
    _write_frames(tmp_path / "real", 2, 0)
    _write_frames(tmp_path / "one", 1, 0)
    _write_frames(tmp_path / "fake", 2, 1, with_labels=False, image_suffix="")
    (tmp_path / "bad.json").write_text('{"frames": 1}')
    argv = ["evaluate", *[a.replace("{tmp}", str(tmp_path)) for a in args], "-q"]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()
