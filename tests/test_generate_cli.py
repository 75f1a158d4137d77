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
from ivus_sim.modelio import has_default_model
from ivus_sim.phantom.random import random_phantom
from ivus_sim.phantom.reader import read_phantom, write_phantom
from ivus_sim.simulator import Simulator

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
    assert side["schema"] == "ivus-sim/output" and "--seed 3" in side["command"]
    assert side["request"]["index"] == 1 and side["request"]["phantom_hash"] == ph.hash()
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
    assert "pullback_seed0_000.nii.gz" in names and "pullback_seed0_000_stage_mean.nii.gz" in names
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


def test_identical_rerun_completes_without_loading_the_model(tmp_path: Path, phantom_png: Path, model_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    args = ["generate", "--phantom", phantom_png, "--out", out, "--n", "3", "--size", "48", "--model", model_dir,
            "--no-progress"]
    assert run(*args)[0] == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "vessel_seed0_001.png").unlink()  # as if killed after the sidecar, before the image
    code, stdout, stderr = run(*args)
    assert code == 0, stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # only image 1 redone, same pixels

    import ivus_sim.simulator.api as api

    def no_model(*a: object, **k: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(api, "load_from_path", no_model)
    code, stdout, stderr = run(*args)  # everything done: checked before any model load
    assert code == 0 and "nothing to do" in stdout, stderr
    code, _, stderr = run(*args[:-1], "--seed", "0", "--engine", "physics")  # different request
    assert code == 2 and "--model" in stderr  # (physics + --model is refused first)
    code, _, stderr = run("generate", "--phantom", phantom_png, "--out", out, "--n", "1", "--size", "48",
                          "--z", ",".join(["0.1"] * 16), "--model", model_dir)
    assert code == 2 and "--overwrite" in stderr and len(stderr.strip().splitlines()) == 1  # before the load
    monkeypatch.undo()
    (out / "vessel_seed0_000.png").write_bytes(b"mine")  # a damaged image of ours is redone
    assert run(*args)[0] == 0 and (out / "vessel_seed0_000.png").read_bytes() == first["vessel_seed0_000.png"]


def test_different_request_needs_overwrite(tmp_path: Path, phantom_png: Path, model_dir: Path) -> None:
    out = tmp_path / "out"
    base = ["generate", "--phantom", phantom_png, "--out", out, "--n", "1", "--size", "48"]
    assert run(*base, "--model", model_dir)[0] == 0
    before = (out / "vessel_seed0_000.png").read_bytes()
    code, _, stderr = run(*base, "--engine", "physics")
    assert code == 2 and "exists" in stderr and "--overwrite" in stderr
    assert (out / "vessel_seed0_000.png").read_bytes() == before
    assert run(*base, "--engine", "physics", "--overwrite")[0] == 0
    side = json.loads((out / "vessel_seed0_000.json").read_text())
    assert side["engine"] == "physics" and (out / "vessel_seed0_000.png").read_bytes() != before


def test_stale_temp_files_of_a_killed_run_are_removed(tmp_path: Path, phantom_png: Path, model_dir: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out"
    code = ("import os, signal, sys; from ivus_sim.io import temp_path; "
            "open(temp_path(sys.argv[1]), 'wb').write(b'half'); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, str(out / "vessel_seed0_000.png")], check=False)
    assert any(p.name.startswith(".vessel_seed0_000.png.") for p in out.iterdir())
    assert run("generate", "--phantom", phantom_png, "--out", out, "--n", "1", "--size", "48",
               "--model", model_dir)[0] == 0
    assert files_in(out) == ["vessel_seed0_000.json", "vessel_seed0_000.png"]


def test_single_file_output(tmp_path: Path, phantom_png: Path, model_dir: Path) -> None:
    out = tmp_path / "one.png"
    code, _, _ = run("generate", "--phantom", phantom_png, "--out", out, "--n", "1", "--size", "48",
                     "--model", model_dir)
    assert code == 0 and out.is_file() and (tmp_path / "one.json").is_file()
    vol = tmp_path / "src" / "pull.nii.gz"
    write_phantom(vol, read_phantom_from_array(np.repeat(random_phantom(1, size=40).labels, 3, axis=0)))
    code, _, stderr = run("generate", "--phantom", vol, "--out", tmp_path / "pull.png", "--n", "1", "--size", "40",
                          "--model", model_dir)
    assert code == 2 and "pullback of 3 frames" in stderr
    code, _, stderr = run("generate", "--phantom", vol, "--out", tmp_path / "pull.nii.gz", "--n", "1", "--size", "40",
                          "--model", model_dir)
    assert code == 0, stderr
    assert sorted(p.name for p in tmp_path.glob("pull.*")) == ["pull.json", "pull.nii.gz"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--phantom", "{tmp}/missing.png"], "not found"),
        (["--phantom", "{bad}"], "unknown tissue ids"),
        (["--phantom", "{good}", "--z", "1,abc"], "--z: expected comma-separated numbers"),
        (["--phantom", "{good}", "--engine", "physics", "--z", "1,2"], "physics engine has none"),
        (["--phantom", "{good}", "--out", "{tmp}/out/x.png", "--n", "2"], "names one image file"),
        (["--phantom", "{good}", "--out", "{tmp}/out/x.tif", "--n", "1"], "not .tif"),
        (["--phantom", "{good}", "--model", "{truncated}"], "cannot read model weights"),
        (["--phantom", "{good}", "--model", "{tmp}/nope"], "model not found"),
        (["--phantom", "{good}", "--engine", "physics", "--preset", "99mhz"], "99mhz"),
        (["--phantom", "{good}", "--engine", "physics", "--device", "cuda:7"], "cuda"),
    ],
)
def test_bad_inputs_exit_2_with_one_line_and_no_files(tmp_path: Path, phantom_png: Path, model_dir: Path,
                                                      extra: list[str], message: str) -> None:
    bad = tmp_path / "bad.png"
    lab = np.asarray(Image.open(phantom_png)).copy()
    lab[lab == 1] = 42
    Image.fromarray(lab).save(bad)
    trunc = tmp_path / "trunc" / "model.safetensors"  # the tiny model's weights, cut short
    trunc.parent.mkdir()
    trunc.write_bytes((model_dir / "model" / "model.safetensors").read_bytes()[:200])
    (trunc.parent / "model.json").write_bytes((model_dir / "model" / "model.json").read_bytes())
    fill = {"tmp": str(tmp_path), "good": str(phantom_png), "bad": str(bad), "truncated": str(trunc)}
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
    import ivus_sim.modelio as modelio

    monkeypatch.setattr(modelio, "has_default_model", lambda: False)
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
    code, stdout, stderr = run("explore", "--phantom", phantom_png, "--grid", "3", "--out", out, "--size", "40",
                               "--dims", "0,9", "--model", model_dir, "--device", "cpu")
    assert code == 0 and "nothing to do" in stdout, stderr  # an identical rerun
    folder = tmp_path / "grids"
    code, stdout, stderr = run("explore", "--phantom", phantom_png, "--grid", "2", "--out", folder, "--size", "40",
                               "--model", model_dir, "--device", "cpu")
    assert code == 0, stderr
    assert files_in(folder) == ["vessel_explore.json", "vessel_explore.png"]


@pytest.mark.skipif(not has_default_model(), reason="no embedded default model shipped in ivus_sim/weights yet")
def test_generate_with_the_embedded_default(tmp_path: Path, phantom_png: Path) -> None:
    code, stdout, stderr = run("generate", "--phantom", phantom_png, "--out", tmp_path / "out", "--n", "1",
                               "--size", "48", "--device", "cpu")
    assert code == 0, stdout + stderr
    side = json.loads((tmp_path / "out" / "vessel_seed0_000.json").read_text())
    assert side["engine"] == "learned" and side["model_id"].startswith("ivus-sim-default-")


# ----------------------------------------------------------------------------- one contract for every command
@pytest.mark.parametrize("command", ["generate", "simulate", "explore"])
def test_out_naming_an_existing_regular_file_is_one_line_exit_2(tmp_path: Path, phantom_png: Path,
                                                                command: str) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine")
    extra = ["--engine", "physics", "--size", "48"] if command == "generate" else []
    code, stdout, stderr = run(command, "--phantom", phantom_png, "--out", taken, *extra)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "not a folder" in lines[0], stderr
    assert taken.read_text() == "mine" and "Traceback" not in stdout + stderr


@pytest.mark.parametrize("command", ["generate", "simulate", "explore"])
@pytest.mark.parametrize(("option", "value"), [("--seed", "-5"), ("--seed", str(2**63)), ("--seed", "x"),
                                              ("--size", "1"), ("--nope", "1")])
def test_usage_and_range_errors_are_one_error_line(tmp_path: Path, phantom_png: Path, command: str, option: str,
                                                   value: str) -> None:
    code, _stdout, stderr = run(command, "--phantom", phantom_png, "--out", tmp_path / "o", option, value)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert option in lines[0] and "\u256d" not in stderr and not (tmp_path / "o").exists()  # no rich box


def test_same_seed_and_progress_options_everywhere() -> None:
    for command in ("generate", "simulate", "explore"):
        text = runner.invoke(app, [command, "--help"], terminal_width=200).output
        assert "The one seed of every random draw (0 <= seed < 2**63)." in " ".join(text.split())
    for command in ("generate", "simulate"):
        assert "--progress / --no-progress" in runner.invoke(app, [command, "--help"], terminal_width=200).output


def test_help_keeps_bracketed_units() -> None:
    text = " ".join(runner.invoke(app, ["generate", "--help"], terminal_width=200).output.split())
    assert "Field-of-view diameter [mm]" in text and "Working image side [px]" in text


def test_simulate_out_with_an_image_suffix_is_a_file(tmp_path: Path, phantom_png: Path) -> None:
    out = tmp_path / "x.png"
    code, _stdout, stderr = run("simulate", "--phantom", phantom_png, "--out", out, "--no-progress")
    assert code == 0, stderr
    assert out.is_file() and (tmp_path / "x.json").is_file()
    write_phantom(phantom_png.parent / "second.png", random_phantom(1, size=48))
    code, _, stderr = run("simulate", "--phantom", phantom_png.parent, "--out", tmp_path / "y.png")
    assert code == 2 and "names one image file, but this makes 2 images" in stderr
    assert not (tmp_path / "y.png").exists()


@pytest.mark.skipif(not has_default_model(), reason="no embedded default model shipped in ivus_sim/weights yet")
def test_generation_imports_no_heavy_modules(tmp_path: Path, phantom_png: Path) -> None:
    """`ivus-sim generate` imports neither MONAI, training, plotting, pandas, scipy.stats, skimage nor turing."""
    import subprocess
    import sys

    heavy = ("monai", "matplotlib", "pandas", "scipy.stats", "skimage", "ivus_sim.training", "ivus_sim.turing",
             "ivus_sim.cli.train", "ivus_sim.cli.turing", "ivus_sim.cli.augment", "ivus_sim.cli.evaluate")
    code = (
        "import sys, json\n"
        "from ivus_sim.cli.main import main\n"
        f"sys.argv = ['ivus-sim', 'generate', '--phantom', {str(phantom_png)!r}, '--n', '1', '--size', '48',"
        f" '--out', {str(tmp_path / 'one.png')!r}, '--device', 'cpu']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({heavy!r}))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "one.png").is_file()
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
