"""Tests of ``ivus-sim generate`` and ``ivus-sim explore`` (in-process, CliRunner).

Uses tiny phantoms written by the tests, the physics engine and a tiny untrained model saved
as a training run (see tests/test_simulator.py); nothing needs the shipped default weights
except the one test that says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.phantom.random import random_phantom
from ivus_sim.phantom.reader import read_phantom, write_phantom
from ivus_sim.simulator import Simulator
from ivus_sim.weights import has_default_model

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_simulator import tiny_model_dir  # tests/ is on sys.path (pytest rootdir import)

    return tiny_model_dir(tmp_path_factory.mktemp("run"))


@pytest.fixture()
def phantom_png(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "vessel.png"
    write_phantom(p, random_phantom(0, size=48))
    return p


def files_in(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_generate_physics_writes_images_and_sidecars(tmp_path: Path, phantom_png: Path) -> None:
    out = tmp_path / "out"
    code, stdout, _ = run("generate", "--phantom", phantom_png, "--out", out, "--n", "2", "--seed", "3",
                          "--size", "48", "--engine", "physics", "--device", "cpu")
    assert code == 0, stdout
    assert files_in(out) == ["vessel_seed3_000.json", "vessel_seed3_000.png",
                             "vessel_seed3_001.json", "vessel_seed3_001.png"]
    img = np.asarray(Image.open(out / "vessel_seed3_001.png"))
    assert img.shape == (48, 48) and img.dtype == np.uint8
    side = json.loads((out / "vessel_seed3_001.json").read_text())
    ph = read_phantom(phantom_png, size=48)
    assert side["phantom"]["hash"] == ph.hash() and side["seed"] == 3 and side["index"] == 1
    assert side["engine"] == "physics" and side["preset"] == "20mhz"
    assert side["geometry"] == ph.geometry.to_dict()
    assert side["files"]["image"] == ["vessel_seed3_001.png"]
    assert "--seed 3" in side["regenerate"]["command"]
    # the sidecar regenerates the image
    assert np.array_equal(Simulator.physics().regenerate(side, ph), img)


def test_generate_learned_pullback_nifti_with_stages(tmp_path: Path, model_dir: Path) -> None:
    vol = np.repeat(random_phantom(1, size=40).labels, 5, axis=0)
    src = tmp_path / "pullback.nii.gz"
    write_phantom(src, read_phantom_from_array(vol))
    out = tmp_path / "out"
    code, stdout, _ = run("generate", "--phantom", src, "--out", out, "--n", "1", "--size", "40",
                          "--model", model_dir, "--format", "both", "--save-stages", "--device", "cpu")
    assert code == 0, stdout
    names = files_in(out)
    assert "pullback_seed0_000.nii.gz" in names and "pullback_seed0_000_mean.nii.gz" in names
    assert sum(n.startswith("pullback_seed0_000_f") for n in names) == 5  # PNG frames too
    data = np.asarray(nib.load(out / "pullback_seed0_000.nii.gz").dataobj)
    assert data.shape == (40, 40, 5)  # (x, y, frame): same geometry and frame count as the input
    side = json.loads((out / "pullback_seed0_000.json").read_text())
    assert side["frames"] == 5 and len(side["z1_anchors"]) >= 1 and "mean" in side["files"]["stages"]
    frames = data.transpose(2, 1, 0)
    sim = Simulator.from_run(model_dir, device="cpu")
    assert np.array_equal(sim.regenerate(side, read_phantom(src, size=40)), frames)


def read_phantom_from_array(vol: np.ndarray):  # type: ignore[no-untyped-def]
    from ivus_sim.phantom import Phantom

    return Phantom.from_array(vol)


def test_folder_in_folder_out_and_z(tmp_path: Path, model_dir: Path) -> None:
    src = tmp_path / "phantoms"
    for i in range(3):
        write_phantom(src / f"p{i}.png", random_phantom(i, size=40))
    (src / "notes.txt").write_text("not a phantom")
    out = tmp_path / "out"
    code, stdout, stderr = run("generate", "--phantom", src, "--out", out, "--n", "1", "--size", "40",
                               "--model", model_dir, "--z", ",".join(["0.5"] * 16), "--device", "cpu")
    assert code == 0, stdout + stderr
    assert [n for n in files_in(out) if n.endswith(".png")] == ["p0_seed0_000.png", "p1_seed0_000.png",
                                                                 "p2_seed0_000.png"]
    side = json.loads((out / "p2_seed0_000.json").read_text())
    assert side["z1"] == [0.5] * 8 and side["z2"] == [0.5] * 8 and side["z_fixed"] == "z1+z2"


def test_overwrite_protection(tmp_path: Path, phantom_png: Path, model_dir: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", "--phantom", phantom_png, "--out", out, "--n", "1", "--size", "48", "--model", model_dir]
    assert run(*args)[0] == 0
    before = (out / "vessel_seed0_000.png").read_bytes()
    (out / "vessel_seed0_000.png").write_bytes(b"mine")
    code, _, stderr = run(*args)
    assert code == 2 and "exists" in stderr and "--overwrite" in stderr
    assert (out / "vessel_seed0_000.png").read_bytes() == b"mine"
    assert run(*args, "--overwrite")[0] == 0
    assert (out / "vessel_seed0_000.png").read_bytes() == before


def test_single_file_output(tmp_path: Path, phantom_png: Path, model_dir: Path) -> None:
    out = tmp_path / "one.png"
    code, _, _ = run("generate", "--phantom", phantom_png, "--out", out, "--n", "1", "--size", "48",
                     "--model", model_dir)
    assert code == 0 and out.is_file() and (tmp_path / "one.json").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--phantom", "{tmp}/missing.png"], "not found"),
        (["--phantom", "{bad}"], "unknown tissue ids"),
        (["--phantom", "{good}", "--z", "1,abc"], "--z: expected comma-separated numbers"),
        (["--phantom", "{good}", "--engine", "physics", "--z", "1,2"], "physics engine has none"),
        (["--phantom", "{good}", "--out", "{tmp}/out/x.png", "--n", "2"], "names one file"),
        (["--phantom", "{good}", "--model", "{tmp}/nope"], "model not found"),
        (["--phantom", "{good}", "--engine", "physics", "--preset", "99mhz"], "99mhz"),
        (["--phantom", "{good}", "--engine", "physics", "--device", "cuda:7"], "cuda"),
    ],
)
def test_bad_inputs_exit_2_with_one_line_and_no_files(tmp_path: Path, phantom_png: Path, extra: list[str],
                                                      message: str) -> None:
    bad = tmp_path / "bad.png"
    lab = np.asarray(Image.open(phantom_png)).copy()
    lab[lab == 1] = 42
    Image.fromarray(lab).save(bad)
    fill = {"tmp": str(tmp_path), "good": str(phantom_png), "bad": str(bad)}
    args = [a.format(**fill) for a in extra]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    if "--device" in args and __import__("torch").cuda.is_available():
        pytest.skip("CUDA present: cuda:7 may exist")
    code, stdout, stderr = run("generate", *args, "--size", "48")
    assert code == 2, stdout + stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stdout + stderr
    assert files_in(tmp_path / "out") == []


def test_default_model_missing_is_a_clear_error(tmp_path: Path, phantom_png: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import ivus_sim.weights as w

    monkeypatch.setattr(w, "has_default_model", lambda: False)
    code, _, stderr = run("generate", "--phantom", phantom_png, "--out", tmp_path / "out", "--size", "48")
    assert code == 2 and "no embedded default model" in stderr
    assert files_in(tmp_path / "out") == []


def test_explore_grid_and_interpolation(tmp_path: Path, phantom_png: Path, model_dir: Path) -> None:
    out = tmp_path / "grid.png"
    code, stdout, stderr = run("explore", "--phantom", phantom_png, "--grid", "3", "--out", out, "--size", "40",
                               "--dims", "0,9", "--model", model_dir, "--device", "cpu")
    assert code == 0, stdout + stderr
    assert np.asarray(Image.open(out)).shape == (3 * 40 + 4, 3 * 40 + 4)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["dims"] == [0, 9] and len(side["values"]) == 3
    za, zb = ",".join(["1"] * 16), ",".join(["-1"] * 16)
    out2 = tmp_path / "interp.png"
    code, stdout, stderr = run("explore", "--phantom", phantom_png, "--grid", "4", "--out", out2, "--size", "40",
                               "--interpolate", za, zb, "--model", model_dir, "--device", "cpu")
    assert code == 0, stdout + stderr
    assert np.asarray(Image.open(out2)).shape == (40, 4 * 40 + 6)
    code, _, stderr = run("explore", "--phantom", phantom_png, "--out", out2, "--model", model_dir)
    assert code == 2 and "exists" in stderr


@pytest.mark.skipif(not has_default_model(), reason="no embedded default model shipped in ivus_sim/weights yet")
def test_generate_with_the_embedded_default(tmp_path: Path, phantom_png: Path) -> None:
    code, stdout, stderr = run("generate", "--phantom", phantom_png, "--out", tmp_path / "out", "--n", "1",
                               "--size", "48", "--device", "cpu")
    assert code == 0, stdout + stderr
    side = json.loads((tmp_path / "out" / "vessel_seed0_000.json").read_text())
    assert side["engine"] == "learned" and side["model_id"].startswith("ivus-sim-default-")
