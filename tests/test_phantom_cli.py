"""``ivus-sim phantom ...`` in-process (CliRunner): outputs, reproducibility, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.phantom.random import phantom_from_meta, random_phantom
from ivus_sim.phantom.reader import read_phantom
from ivus_sim.tissues import TISSUES, Tissue

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def assert_user_error(code: int, out: str, err: str, match: str) -> None:
    assert code == 2, (code, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0], lines[0]
    assert "Traceback" not in out + err


@pytest.mark.parametrize("cmd", [[], ["random"], ["show"], ["from-challenge"], ["from-vh"], ["palette"]])
def test_help_texts(cmd):
    code, out, _ = run("phantom", *cmd, "--help")
    assert code == 0
    assert "Usage" in out and len(out) > 150


def test_palette_lists_every_tissue():
    code, out, _ = run("phantom", "palette")
    assert code == 0
    for t, info in TISSUES.items():
        r, g, b = info.colour
        assert info.name in out and f"#{r:02x}{g:02x}{b:02x}" in out and str(int(t)) in out


def test_random_writes_reproducible_label_maps_with_sidecars(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        code, out, err = run("phantom", "random", "--n", "3", "--seed", "5", "--out", d, "--size", "48",
                             "--no-progress")
        assert code == 0, err
        assert "wrote 3 phantoms" in out
    names = sorted(p.name for p in a.iterdir())
    assert names == ["phantom_0000.json", "phantom_0000.png", "phantom_0001.json", "phantom_0001.png",
                     "phantom_0002.json", "phantom_0002.png"]
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes()  # bit for bit
    lab = np.asarray(Image.open(a / "phantom_0002.png"))
    assert lab.shape == (48, 48) and lab.dtype == np.uint8
    assert np.array_equal(lab, random_phantom(5, size=48, index=2).label_map)
    side = json.loads((a / "phantom_0002.json").read_text())
    assert side["meta"]["seed"] == 5 and side["meta"]["index"] == 2 and side["geometry"]["size"] == 48
    assert np.array_equal(phantom_from_meta(side).label_map, lab)  # the sidecar regenerates it


def test_random_refuses_to_overwrite_then_overwrites(tmp_path):
    assert run("phantom", "random", "--n", "1", "--out", tmp_path, "--size", "32", "--no-progress")[0] == 0
    before = (tmp_path / "phantom_0000.png").read_bytes()
    assert_user_error(*run("phantom", "random", "--n", "2", "--out", tmp_path, "--size", "32", "--no-progress"),
                      "pass --overwrite")
    assert not (tmp_path / "phantom_0001.png").exists()  # nothing partial was written
    code, _, _ = run("phantom", "random", "--n", "1", "--seed", "9", "--out", tmp_path, "--size", "32",
                     "--overwrite", "--no-progress")
    assert code == 0 and (tmp_path / "phantom_0000.png").read_bytes() != before
    code, _, _ = run("phantom", "random", "--n", "1", "--start", "1", "--out", tmp_path, "--size", "32",
                     "--no-progress")
    assert code == 0 and (tmp_path / "phantom_0001.png").exists()


def test_show_writes_preview_and_sidecar(tmp_path):
    src = Path(__file__).resolve().parents[1] / "examples" / "calcified_plaque.png"
    code, out, err = run("phantom", "show", src, "--out", tmp_path / "prev.png", "--size", "128")
    assert code == 0, err
    assert "dense_calcium" in out
    img = np.asarray(Image.open(tmp_path / "prev.png"))
    assert img.ndim == 3 and img.shape[0] == 256 and img.shape[1] > 256  # enlarged x2, legend on the right
    side = json.loads((tmp_path / "prev.json").read_text())
    assert side["tissue_fractions"]["dense_calcium"] > 0
    assert side["preview_of"]["geometry"]["size"] == 128


def test_from_challenge_and_from_vh(tmp_path):
    n = 48
    src = tmp_path / "challenge"
    src.mkdir()
    Image.fromarray(np.zeros((n, n), np.uint8)).save(src / "frame_01_0001_003.png")
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    for prefix, r in (("lum", 9.0), ("med", 18.0)):
        pts = "\n".join(f"{23.5 + r * np.cos(a):.2f},{23.5 + r * np.sin(a):.2f}" for a in t)
        (src / f"{prefix}_frame_01_0001_003.txt").write_text(pts)
    code, _, err = run("phantom", "from-challenge", src, "--out", tmp_path / "o1", "--wall-tissue",
                         "fibro_fatty", "--no-progress")
    assert code == 0, err
    lab = read_phantom(tmp_path / "o1" / "frame_01_0001_003.png", size=None).label_map
    assert (lab == Tissue.FIBRO_FATTY).any() and (lab == Tissue.MEDIA).any() and not (lab == Tissue.FIBROUS).any()

    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    r = np.hypot(yy, xx)
    rgb = np.zeros((n, n, 3), np.uint8)
    rgb[r < 20] = (128, 128, 128)
    rgb[r < 18] = (0, 128, 0)
    rgb[r < 10] = 0
    Image.fromarray(rgb).save(tmp_path / "vh.png")
    code, _, err = run("phantom", "from-vh", tmp_path / "vh.png", "--out", tmp_path / "o2", "--no-progress")
    assert code == 0, err
    lab = read_phantom(tmp_path / "o2" / "vh.png", size=None).label_map
    assert lab[24, 30] == Tissue.LUMEN and lab[24, 46] == Tissue.PERIVASCULAR and lab[24, 38] == Tissue.FIBROUS


def test_bad_inputs_through_the_cli(tmp_path):
    """Every bad input of the reader: exit 2, one line on stderr, no traceback, no output file."""
    from test_phantom_reader import BAD_INPUTS, _bad_files  # tests/ is on sys.path

    _bad_files(tmp_path)
    for name, message in BAD_INPUTS:
        out = tmp_path / f"prev_{name}.png"
        assert_user_error(*run("phantom", "show", tmp_path / name, "--out", out), message.replace("\\", ""))
        assert not out.exists()


def test_cli_errors_for_converters(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_user_error(*run("phantom", "from-challenge", tmp_path / "empty", "--out", tmp_path / "o"),
                      "no frame image with matching")
    assert_user_error(*run("phantom", "from-vh", tmp_path / "nope", "--out", tmp_path / "o"), "not found")
    np.save(tmp_path / "ns.npy", np.ones((40, 30), np.uint8))
    assert_user_error(*run("phantom", "show", tmp_path / "ns.npy", "--out", tmp_path / "p.png"), "30x40 pixels")
    code, _, err = run("phantom", "show", tmp_path / "ns.npy", "--out", tmp_path / "p.png", "--pad")
    assert code == 0, err


def test_out_path_rule(tmp_path):
    """One rule (ivus_sim.outputs.resolve_out): an image suffix names one file, anything else a folder."""
    src = Path(__file__).resolve().parents[1] / "examples" / "calcified_plaque.png"
    # random --n 1 --out x.png: the file x.png (+ x.json), not a folder named x.png
    code, _, err = run("phantom", "random", "--n", "1", "--size", "32", "--out", tmp_path / "x.png", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "x.png").is_file() and (tmp_path / "x.json").is_file()
    assert read_phantom(tmp_path / "x.png", size=None).labels.shape == (1, 32, 32)
    # several phantoms into one file name: refused before anything is written
    assert_user_error(*run("phantom", "random", "--n", "2", "--size", "32", "--out", tmp_path / "y.png"),
                      "names one image file")
    assert not (tmp_path / "y.png").exists()
    # show --out dir/: a preview inside the folder, not a file named dir
    code, _, err = run("phantom", "show", src, "--out", f"{tmp_path / 'previews'}/", "--size", "64")
    assert code == 0, err
    assert (tmp_path / "previews" / "calcified_plaque_preview.png").is_file()
    assert (tmp_path / "previews" / "calcified_plaque_preview.json").is_file()
    # an existing regular file as a folder --out
    (tmp_path / "afile").write_text("x")
    assert_user_error(*run("phantom", "random", "--n", "2", "--out", tmp_path / "afile"), "existing file")
    assert_user_error(*run("phantom", "from-vh", src, "--out", tmp_path / "o.png"), "give a folder")
    # a frame past the end
    assert_user_error(*run("phantom", "show", src, "--out", tmp_path / "f.png", "--frame", "3"), "--frame 3")
    assert not (tmp_path / "f.png").exists()


def test_unknown_tissue_ids_point_to_the_palette(tmp_path):
    lab = np.full((32, 32), Tissue.FIBROUS, np.uint8)
    lab[12:20, 12:20] = Tissue.LUMEN
    lab[0, 0] = 42
    np.save(tmp_path / "bad.npy", lab)
    assert_user_error(*run("phantom", "show", tmp_path / "bad.npy", "--out", tmp_path / "p.png"),
                      "`ivus-sim phantom palette`")


@pytest.mark.parametrize("seed", ["-5", str(2**63)])
def test_seed_range(tmp_path, seed):
    assert_user_error(*run("phantom", "random", "--n", "1", "--seed", seed, "--out", tmp_path / "o"),
                      "0 <= seed < 2**63")
    assert not (tmp_path / "o").exists()
