"""``ivus-sim corpus`` and ``ivus-sim train`` end to end (in-process CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.training.checkpoint import load_model
from ivus_sim.training.corpus import pair_paths

runner = CliRunner()


def test_corpus_then_train_then_resume(tmp_path: Path) -> None:
    data, run = tmp_path / "corpus", tmp_path / "run"
    r = runner.invoke(app, ["corpus", "--n", "4", "--size", "32", "--out", str(data), "--seed", "3", "--no-progress"])
    assert r.exit_code == 0, r.output
    label, image, side = pair_paths(data, 3)
    assert label.is_file() and image.is_file() and json.loads(side.read_text())["index"] == 3
    # resumable: a missing pair is remade identically, existing ones are kept
    before = image.read_bytes()
    image.unlink()
    r = runner.invoke(app, ["corpus", "--n", "4", "--size", "32", "--out", str(data), "--seed", "3", "--no-progress"])
    assert r.exit_code == 0 and image.read_bytes() == before
    r = runner.invoke(app, ["corpus", "--n", "4", "--size", "32", "--out", str(data), "--seed", "4", "--no-progress"])
    assert r.exit_code == 2 and "different seed" in r.output

    args = ["train", "--config", "smoke", "--data", str(data), "--out", str(run), "--device", "cpu", "--no-progress"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    card = json.loads((run / "model" / "model.json").read_text())
    assert "corpus" in card["training_data"]["description"] and card["command"].startswith("ivus-sim")
    assert load_model(run).polar_shape == (32, 16)
    r = runner.invoke(app, args)  # same --out without --resume: refused
    assert r.exit_code == 2 and "--resume" in r.output
    r = runner.invoke(app, [*args, "--resume"])  # already finished: resumes to the end at once
    assert r.exit_code == 0, r.output


def test_train_user_errors_are_one_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["train", "--config", "smoke", "--data", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "does not exist" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["train", "--config", "smoke", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                            "--stage", "3"])
    assert r.exit_code == 2 and "--stage" in r.output
    r = runner.invoke(app, ["train", "--config", "smoke", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                            "--device", "tpu"])
    assert r.exit_code == 2 and "--device" in r.output
