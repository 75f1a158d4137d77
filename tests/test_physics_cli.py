"""``ivus-sim simulate``: folder in, folder out, sidecars that regenerate, stages, clean errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.io import save_png
from ivus_sim.phantom import random_phantom, read_phantom, write_phantom
from ivus_sim.physics import STAGES, PhysicsSimulator

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _small_preset(tmp_path, base="20mhz"):
    """A shipped preset with 64 A-lines (fast), written as a user YAML file."""
    import dataclasses

    import yaml

    from ivus_sim.config import load_preset

    p = load_preset(base)
    d = dataclasses.replace(p, name=f"{base}-small",
                            transducer=dataclasses.replace(p.transducer, n_angles=64)).to_dict()
    path = tmp_path / f"{base}_small.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _phantoms(tmp_path, n=2, size=40):
    d = tmp_path / "ph"
    for i in range(n):
        write_phantom(d / f"p{i}.png", random_phantom(3, size=size, index=i))
    return d


def test_folder_in_folder_out_with_regenerating_sidecars(tmp_path):
    src, out = _phantoms(tmp_path), tmp_path / "out"
    r = runner.invoke(app, ["simulate", "--phantom", str(src), "--out", str(out), "--seed", "4", "--no-progress",
                            "--preset", str(_small_preset(tmp_path))])
    assert r.exit_code == 0, r.output
    for i in range(2):
        img = np.asarray(Image.open(out / f"p{i}.png"))
        assert img.shape == (40, 40) and img.dtype == np.uint8 and img.max() > 0
        meta = json.loads((out / f"p{i}.json").read_text())
        params = meta["physics_params"]
        assert meta["files"]["image"] == [f"p{i}.png"] and params["seed"] == 4
        assert params["first_index"] == 0  # image 0 of every phantom: its draws do not depend on the folder
        labels = read_phantom(src / f"p{i}.png", size=None).labels
        again = PhysicsSimulator.from_params(params).regenerate(labels, params)
        assert np.array_equal(again.image[0], img)
        assert meta["command"].startswith("ivus-sim simulate --phantom ") and "--seed 4" in meta["command"]


def test_stages_polar_nifti_and_size(tmp_path):
    src, out = _phantoms(tmp_path, n=1), tmp_path / "out"
    r = runner.invoke(app, ["simulate", "--phantom", str(src / "p0.png"), "--out", str(out), "--size", "48",
                            "--save-stages", "--polar", "--format", "both", "--no-progress",
                            "--preset", str(_small_preset(tmp_path, "40mhz"))])
    assert r.exit_code == 0, r.output
    for s in STAGES:
        st = np.asarray(Image.open(out / f"p0_stage_{s}.png"))
        assert st.shape == (48, 48)
    pol = np.asarray(Image.open(out / "p0_polar.png"))
    assert pol.shape[0] == 64
    vol = nib.load(out / "p0.nii.gz")
    assert vol.shape[:2] == (48, 48) and np.isclose(vol.header.get_zooms()[0], 10.0 / 48)
    meta = json.loads((out / "p0.json").read_text())
    assert meta["files"]["image"] == ["p0.nii.gz", "p0.png"] and meta["files"]["polar"] == ["p0_polar.png"]
    assert sorted(meta["files"]["stages"]) == sorted(STAGES)
    assert meta["physics_params"]["preset"]["name"] == "40mhz-small"
    assert meta["physics_params"]["preset"]["transducer"]["centre_frequency_mhz"] == 40


def test_refuses_to_overwrite_and_writes_nothing_partial(tmp_path):
    src, out = _phantoms(tmp_path), tmp_path / "out"
    out.mkdir()
    save_png(out / "p1.png", np.zeros((4, 4), np.uint8))
    small = str(_small_preset(tmp_path))
    r = runner.invoke(app, ["simulate", "--phantom", str(src), "--out", str(out), "--no-progress", "--preset", small])
    assert r.exit_code == 2 and "exists" in r.output and "--overwrite" in r.output
    assert not (out / "p0.png").exists()  # checked before anything was written
    r = runner.invoke(app, ["simulate", "--phantom", str(src), "--out", str(out), "--overwrite", "--no-progress",
                            "--preset", small])
    assert r.exit_code == 0, r.output


def test_bad_inputs_give_one_line_errors(tmp_path):
    src = _phantoms(tmp_path, n=1)
    r = runner.invoke(app, ["simulate", "--phantom", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.output.startswith("error:")
    r = runner.invoke(app, ["simulate", "--phantom", str(src), "--out", str(tmp_path / "o"), "--preset", "7mhz"])
    assert r.exit_code == 2 and "unknown preset" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntransducer: {centre_frequency_mhz: fast}\n")
    r = runner.invoke(app, ["simulate", "--phantom", str(src), "--out", str(tmp_path / "o"), "--preset", str(bad)])
    assert r.exit_code == 2 and "centre_frequency_mhz" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_simulate_and_generate_physics_give_identical_pixels(tmp_path):
    """One physics path: the same phantom and seed give the same image from both commands, for a folder
    of phantoms (each phantom's image 0 on stream 0) and for a pullback (frozen scatterers)."""
    src = _phantoms(tmp_path, n=2)
    vol = np.stack([random_phantom(5, size=40).labels[0]] * 3)
    from ivus_sim.phantom import Phantom

    write_phantom(src / "pull.nii.gz", Phantom.from_array(vol))
    preset = str(_small_preset(tmp_path))
    r = runner.invoke(app, ["simulate", "--phantom", str(src), "--out", str(tmp_path / "sim"), "--seed", "7",
                            "--no-progress", "--preset", preset])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["generate", "--phantom", str(src), "--out", str(tmp_path / "gen"), "--seed", "7",
                            "--n", "1", "--engine", "physics", "--preset", preset, "--size", "40", "--format", "png",
                            "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    for name in ("p0", "p1"):
        a = np.asarray(Image.open(tmp_path / "sim" / f"{name}.png"))
        b = np.asarray(Image.open(tmp_path / "gen" / f"{name}_seed7_000.png"))
        assert np.array_equal(a, b), name
    for f in range(3):
        a = np.asarray(Image.open(tmp_path / "sim" / f"pull_f{f:04d}.png"))
        b = np.asarray(Image.open(tmp_path / "gen" / f"pull_seed7_000_f{f:04d}.png"))
        assert np.array_equal(a, b), f
    meta = json.loads((tmp_path / "sim" / "pull.json").read_text())
    assert meta["frames"] == 3 and meta["scatterers"] == "frozen along the pullback"


def test_simulate_identical_rerun_resumes(tmp_path):
    src, out = _phantoms(tmp_path), tmp_path / "out"
    args = ["simulate", "--phantom", str(src), "--out", str(out), "--no-progress", "--preset",
            str(_small_preset(tmp_path))]
    assert runner.invoke(app, args).exit_code == 0
    first = (out / "p1.png").read_bytes()
    (out / "p1.png").unlink()
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "kept 1 finished" in r.output
    assert (out / "p1.png").read_bytes() == first
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "nothing to do" in r.output
