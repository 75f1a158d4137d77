"""``ivus-sim augment`` in-process: a usable dataset, resume, sharding, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ivus_sim.cli.main import app

runner = CliRunner()
BASE = ["augment", "--engine", "physics", "--size", "64", "--workers", "0", "--no-progress", "--seed", "3"]


def test_cli_writes_an_nnunet_png_dataset_with_merged_labels(tmp_path):
    out = tmp_path / "Dataset501_IVUS"
    res = runner.invoke(app, [*BASE, "--n", "2", "--out", str(out), "--format", "png", "--layout", "nnunet",
                              "--labels-map", "lumen-wall"])
    assert res.exit_code == 0, res.output
    assert "dataset complete: 2 pairs" in res.output
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "lumen": 1, "wall": 2} and meta["file_ending"] == ".png"
    assert sorted(p.name for p in (out / "imagesTr").glob("*.png")) == ["ivus_000000_0000.png", "ivus_000001_0000.png"]
    # rerun: nothing to do, nothing duplicated
    res = runner.invoke(app, [*BASE, "--n", "2", "--out", str(out), "--format", "png", "--layout", "nnunet",
                              "--labels-map", "lumen-wall"])
    assert res.exit_code == 0 and "wrote 0 pairs" in res.output and "2 were already there" in res.output


def test_cli_shards_report_progress_until_complete(tmp_path):
    out = tmp_path / "ds"
    res0 = runner.invoke(app, [*BASE, "--n", "3", "--out", str(out), "--shard", "0/2"])
    assert res0.exit_code == 0, res0.output
    assert "2/3 pairs present" in res0.output and not (out / "dataset.json").exists()
    res1 = runner.invoke(app, [*BASE, "--n", "3", "--out", str(out), "--shard", "1/2"])
    assert res1.exit_code == 0 and "dataset complete: 3 pairs" in res1.output
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 3


def test_cli_bad_labels_map_is_one_error_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "map.yaml"
    bad.write_text("background: [perivascular, outside]\nlumen: [lumen, blod]\n")
    out = tmp_path / "ds"
    res = runner.invoke(app, [*BASE, "--n", "2", "--out", str(out), "--labels-map", str(bad)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "unknown tissue 'blod'" in lines[0]
    assert "Traceback" not in res.output and not out.exists()


def test_cli_option_errors(tmp_path):
    res = runner.invoke(app, [*BASE, "--n", "2", "--out", str(tmp_path / "a"), "--shard", "2/2"])
    assert res.exit_code == 2 and "need 0 <= i < k" in res.output
    res = runner.invoke(app, [*BASE, "--n", "2", "--out", str(tmp_path / "b"), "--model", str(tmp_path)])
    assert res.exit_code == 2 and "exclude each other" in res.output
    res = runner.invoke(app, [*BASE, "--n", "0", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "--n must be >= 1" in res.output


def test_cli_default_engine_is_the_embedded_learned_model(tmp_path):
    import pytest

    from ivus_sim.weights import has_default_model

    if not has_default_model():
        pytest.skip("no embedded default model in this checkout")
    out = tmp_path / "ds"
    res = runner.invoke(app, ["augment", "--n", "2", "--out", str(out), "--size", "64", "--workers", "0",
                              "--no-progress", "--format", "png"])
    assert res.exit_code == 0, res.output
    sidecar = json.loads((out / "imagesTr" / "ivus_000001.json").read_text())
    assert sidecar["run"]["engine"]["engine"] == "learned" and sidecar["simulator"]["engine"] == "learned"
    assert sidecar["simulator"]["model_id"]
    import csv

    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["engine"] for r in rows] == ["learned:default"] * 2


@pytest.mark.slow
def test_cli_randomise_scanner_and_bad_ranges_file(tmp_path):
    out = tmp_path / "r"
    res = runner.invoke(app, ["augment", "--n", "2", "--out", str(out), "--engine", "physics", "--size", "32",
                              "--workers", "0", "--format", "png", "--randomise", "scanner", "--no-progress"])
    assert res.exit_code == 0, res.output
    sc = json.loads((out / "imagesTr/ivus_000000.json").read_text())
    assert sc["scanner"]["ranges"] == "scanner"
    bad = tmp_path / "bad.yaml"
    bad.write_text("fov_mm: [12, 8]\n")
    res = runner.invoke(app, ["augment", "--n", "2", "--out", str(tmp_path / "b"), "--engine", "physics",
                              "--randomise", str(bad)])
    assert res.exit_code == 2
    assert "error: bad.yaml: fov_mm: low 12 > high 8" in res.output
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_sidecar_command_remakes_the_case_in_an_empty_folder(tmp_path, monkeypatch):
    import shlex

    out = tmp_path / "d"
    res = runner.invoke(app, [*BASE, "--n", "3", "--out", str(out), "--format", "png", "--randomise", "scanner"])
    assert res.exit_code == 0, res.output
    sc = json.loads((out / "imagesTr/ivus_000001.json").read_text())
    assert sc["schema"] == "ivus-sim/output" and sc["command"].startswith("ivus-sim augment --n 2 --out .")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    res = runner.invoke(app, [*shlex.split(sc["command"])[1:], "--workers", "0", "--no-progress"])
    assert res.exit_code == 0, res.output
    for rel in ("imagesTr/ivus_000001.png", "labelsTr/ivus_000001.png", "imagesTr/ivus_000001.json"):
        assert (fresh / rel).read_bytes() == (out / rel).read_bytes()


def test_cli_tissue_table_is_applied_recorded_and_remade_from_the_sidecar(tmp_path, monkeypatch):
    """``--tissues``: another table changes the images, the case command carries it (absolute), and
    remaking a case from its sidecar in an empty folder gives the same bytes."""
    import shlex

    import yaml

    from ivus_sim.config import load_tissue_acoustics

    table = load_tissue_acoustics().to_dict()
    table["tissues"]["perivascular"]["backscatter_db"] -= 15.0  # a much darker adventitia
    path = tmp_path / "dark.yaml"
    path.write_text(yaml.safe_dump(table))
    shipped, dark = tmp_path / "shipped", tmp_path / "dark"
    for out, extra in ((shipped, []), (dark, ["--tissues", str(path)])):
        res = runner.invoke(app, [*BASE, "--n", "2", "--out", str(out), "--format", "png", *extra])
        assert res.exit_code == 0, res.output
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(shipped / "imagesTr/ivus_000001.png"), dtype=float)
    b = np.asarray(Image.open(dark / "imagesTr/ivus_000001.png"), dtype=float)
    assert b.mean() < a.mean() - 2  # the table is used (the comparison can fail)
    sc = json.loads((dark / "imagesTr/ivus_000001.json").read_text())
    assert f"--tissues {path.resolve()}" in sc["command"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    res = runner.invoke(app, [*shlex.split(sc["command"])[1:], "--workers", "0", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert (fresh / "imagesTr/ivus_000001.png").read_bytes() == (dark / "imagesTr/ivus_000001.png").read_bytes()


def test_cli_tissue_table_errors_are_one_line_and_write_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tissues: [1, 2\n")  # malformed YAML
    cases = [
        ([*BASE, "--tissues", str(bad)], "bad.yaml"),
        ([*BASE, "--tissues", str(tmp_path / "missing.yaml")], "no such file"),
        (["augment", "--engine", "learned", "--size", "64", "--workers", "0", "--no-progress",
          "--tissues", str(bad)], "physics-engine setting"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"ds{i}"
        res = runner.invoke(app, [*args, "--n", "2", "--out", str(out)])
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.output
        assert message in lines[0] and "Traceback" not in res.output and not out.exists()
    import yaml

    from ivus_sim.config import load_tissue_acoustics

    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(load_tissue_acoustics().to_dict()))
    res = runner.invoke(app, [*BASE, "--n", "2", "--out", str(tmp_path / "r"), "--tissues", str(good),
                              "--randomise", "scanner"])
    assert res.exit_code == 2 and "randomis" in res.output and not (tmp_path / "r").exists()
