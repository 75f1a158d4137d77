"""``ivus-sim corpus`` and ``ivus-sim train`` end to end (in-process CliRunner)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.modelio import load_model
from ivus_sim.training.corpus import pair_paths

runner = CliRunner()


@pytest.mark.slow
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
    assert r.exit_code == 2 and "device" in r.output and "tpu" in r.output
    for seed in ("-5", str(2**63)):
        r = runner.invoke(app, ["train", "--config", "smoke", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                                "--seed", seed])
        assert "--seed" in _one_error_line(r) and not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------- helpers
def _pairs(folder: Path, n: int = 6, size: int = 32, seed: int = 0) -> Path:
    from ivus_sim.io import save_png
    from ivus_sim.training.synthetic import toy_pairs

    labels, images = toy_pairs(n, size, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        save_png(folder / f"p{i:02d}_label.png", labels[i])
        save_png(folder / f"p{i:02d}_image.png", images[i])
    return folder


def _config(tmp_path: Path, **train: object) -> Path:
    import yaml

    from ivus_sim.training.config import train_config_path

    d = yaml.safe_load(train_config_path("smoke").read_text())
    evaluate = train.pop("evaluate", None)
    d["train"].update(train)
    if evaluate is not None:
        d["evaluate"] = evaluate
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _one_error_line(r) -> str:  # type: ignore[no-untyped-def]
    lines = [ln for ln in r.output.splitlines() if ln.strip() and not ln.startswith("skipped:")]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]


# ----------------------------------------------------------------------------------- config values
@pytest.mark.parametrize(("field", "value"), [("lr", -0.001), ("checkpoint_every", 0), ("max_steps", -5),
                                              ("batch_size", 0), ("lr_d", 0.0), ("log_every", 0)])
def test_bad_config_values_are_one_line_naming_the_field_and_leave_no_run(tmp_path: Path, field: str,
                                                                          value: float) -> None:
    data = _pairs(tmp_path / "data", n=2)
    cfg = _config(tmp_path, **{field: value})
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--device", "cpu",
                            "--no-progress"])
    line = _one_error_line(r)
    assert f"train.{field}" in line and "cfg.yaml" in line
    assert not out.exists()


def test_removed_epochs_key_is_named(tmp_path: Path) -> None:
    data = _pairs(tmp_path / "data", n=2)
    cfg = _config(tmp_path, epochs=30)
    r = runner.invoke(app, ["train", "--config", str(cfg), "--data", str(data), "--out", str(tmp_path / "run")])
    assert "train.epochs" in _one_error_line(r) and "max_steps" in r.output


# ----------------------------------------------------------------------------------- bad data
def _break(kind: str, image: Path, label: Path) -> Path:
    if kind == "empty":
        image.write_bytes(b"")
        return image
    if kind == "truncated":
        image.write_bytes(image.read_bytes()[:60])
        return image
    if kind == "random_bytes":
        image.write_bytes(np.random.default_rng(0).bytes(900))
        return image
    if kind == "one_pixel":
        from PIL import Image

        Image.fromarray(np.zeros((1, 1), np.uint8)).save(image)
        return image
    if kind == "photo_label":  # a photograph where a label map belongs
        from PIL import Image

        rgb = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(label)
        return label
    if kind == "unknown_id":
        from PIL import Image

        lab = np.asarray(Image.open(label)).copy()
        lab[10:14, 10:14] = 77
        Image.fromarray(lab).save(label)
        return label
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["empty", "truncated", "random_bytes", "one_pixel", "photo_label", "unknown_id"])
def test_bad_pair_is_named_before_training_and_skip_bad_lists_it(tmp_path: Path, kind: str) -> None:
    data = _pairs(tmp_path / "data", n=5)
    bad = _break(kind, data / "p02_image.png", data / "p02_label.png")
    out = tmp_path / "run"
    args = ["train", "--config", "smoke", "--data", str(data), "--out", str(out), "--device", "cpu", "--no-progress"]
    line = _one_error_line(runner.invoke(app, args))
    assert bad.name in line and "--skip-bad" in line
    assert not out.exists()  # refused before anything was written
    r = runner.invoke(app, [*args, "--skip-bad"])
    assert r.exit_code == 0, r.output
    assert f"skipped: {bad}" in r.output or bad.name in r.output
    card = json.loads((out / "model" / "model.json").read_text())
    assert card["training_data"]["n_pairs"] == 4 and any(bad.name in m for m in card["training_data"]["pairs_skipped"])


# ----------------------------------------------------------------------------------- --out, temp files
def test_out_naming_an_existing_file_is_one_line(tmp_path: Path) -> None:
    data = _pairs(tmp_path / "data", n=2)
    out = tmp_path / "run.txt"
    out.write_text("keep me")
    r = runner.invoke(app, ["train", "--config", "smoke", "--data", str(data), "--out", str(out), "--device", "cpu"])
    assert "existing file" in _one_error_line(r) and out.read_text() == "keep me"


def test_resume_removes_the_temp_files_a_kill_left(tmp_path: Path) -> None:
    from ivus_sim.training.run import train

    data = _pairs(tmp_path / "data", n=4)
    out = tmp_path / "run"
    res = train("smoke", data, out, device="cpu", progress=False, stop_after=2)
    assert not res.finished
    # what kill -9 during atomic writes leaves: hidden temp files beside the checkpoint and a grid
    litter = [out / ".checkpoint.pt.abc123.tmp.pt", out / "samples" / ".step_000004.png.x1.tmp.png"]
    for p in litter:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    res = train("smoke", data, out, device="cpu", progress=False, resume=True)
    assert res.finished and res.step == 4
    assert not any(p.exists() for p in litter)
    assert [p for p in out.rglob(".*") if ".tmp" in p.name] == []


# ----------------------------------------------------------------------------------- provenance
def test_the_cards_commands_reproduce_the_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the card's train command again (another --out): bit-identical weights (CPU, deterministic)."""
    data = _pairs(tmp_path / "data", n=4)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["train", "--config", "smoke", "--data", "data", "--out", "a", "--device", "cpu",
                            "--seed", "3", "--no-progress"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "a" / "model" / "model.json").read_text())
    assert card["steps"] == card["train_config"]["train"]["max_steps"]
    argv = shlex.split(card["commands"][-1])
    assert argv[:2] == ["ivus-sim", "train"] and "--seed" in argv and "3" in argv
    argv[argv.index("--out") + 1] = "b"
    r = runner.invoke(app, [*argv[1:], "--no-progress"])
    assert r.exit_code == 0, r.output
    wa = (tmp_path / "a" / "model" / "model.safetensors").read_bytes()
    assert wa == (tmp_path / "b" / "model" / "model.safetensors").read_bytes()
    assert data.exists()


# ----------------------------------------------------------------------------------- held-out realism
@pytest.mark.slow
def test_run_ends_with_realism_on_held_out_pairs(tmp_path: Path) -> None:
    data = _pairs(tmp_path / "data", n=8, size=48)
    cfg = _config(tmp_path, max_steps=3, evaluate={"holdout_fraction": 0.25, "min_train": 4, "c2st_epochs": 1})
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--device", "cpu",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "held-out C2ST accuracy" in r.output
    report = json.loads((out / "holdout_realism.json").read_text())
    card = json.loads((out / "model" / "model.json").read_text())
    assert report["n_pairs"] == 2 and card["holdout"] == report
    assert 0.0 <= report["c2st"]["accuracy"] <= 1.0 and report["per_tissue"]
    assert "reads optimistic" in r.output and any("only 2 held-out pairs" in n for n in report["notes"])
    held = set(card["training_data"]["pairs_held_out"])
    assert len(held) == 2 and not held & set(card["training_data"]["pairs_used"])  # never trained on
    assert card["training_data"]["n_pairs"] == 6


@pytest.mark.slow
def test_kill_9_then_resume_finishes_and_leaves_no_temp_files(tmp_path: Path) -> None:
    """A real SIGKILL mid-run (after the first checkpoint, wherever the writers are), then --resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    data = _pairs(tmp_path / "data", n=4)
    cfg = _config(tmp_path, max_steps=30, checkpoint_every=1, sample_every=1)
    out = tmp_path / "run"
    args = ["-m", "ivus_sim.cli.main", "train", "--config", str(cfg), "--data", str(data), "--out", str(out),
            "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and p.poll() is None:  # wait for progress, not for a fixed time
        if (out / "checkpoint.pt").exists() and (out / "log.jsonl").exists() and \
                len((out / "log.jsonl").read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    r = subprocess.run([sys.executable, *args, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [q for q in out.rglob(".*") if ".tmp" in q.name] == []
    steps = [json.loads(ln)["step"] for ln in (out / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 31))
    assert json.loads((out / "model" / "model.json").read_text())["steps"] == 30
