"""read_phantom / write_phantom: every input format, palette snapping, and every bad input."""

import importlib.util
import io
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from ivus_sim.errors import IvusSimError
from ivus_sim.io import save_nifti, sidecar_path
from ivus_sim.phantom.random import random_phantom
from ivus_sim.phantom.reader import list_phantom_files, read_phantom, read_phantoms, snap_to_palette, write_phantom
from ivus_sim.tissues import TISSUES, Tissue, colourise


def _truth_and_sketch(n: int = 160, seed: int = 4):
    """An anti-aliased sketch: a random phantom coloured at 4x and box-downsampled, plus its truth labels."""
    hi = random_phantom(seed, size=4 * n, index=1).label_map
    sketch = Image.fromarray(colourise(hi)).resize((n, n), Image.Resampling.BOX)
    return hi[2::4, 2::4], sketch


def _simple_labels(n: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    r = np.hypot(yy, xx)
    lab = np.full((n, n), int(Tissue.PERIVASCULAR), np.uint8)
    lab[r < 0.4 * n] = Tissue.MEDIA
    lab[r < 0.36 * n] = Tissue.FIBROUS
    lab[r < 0.25 * n] = Tissue.LUMEN
    return lab


# --------------------------------------------------------------------------- sketches


def test_antialiased_png_sketch_snaps_to_truth(tmp_path):
    truth, sketch = _truth_and_sketch()
    assert len(np.unique(np.asarray(sketch).reshape(-1, 3), axis=0)) > 20  # really anti-aliased
    sketch.save(tmp_path / "s.png")
    p = read_phantom(tmp_path / "s.png", size=None)
    assert p.labels.shape == (1, 160, 160)
    assert (p.label_map == truth).mean() > 0.97
    assert p.meta["format"] == "sketch" and p.meta["snapping"]["edge_filled_fraction"] > 0


def test_jpeg_noise_q75_snaps_to_truth(tmp_path):
    truth, sketch = _truth_and_sketch()
    sketch.save(tmp_path / "s.jpg", quality=75)
    rgb = np.asarray(Image.open(tmp_path / "s.jpg"))
    colours = np.array([TISSUES[Tissue(int(t))].colour for t in truth.ravel()]).reshape(rgb.shape)
    assert np.abs(rgb.astype(int) - colours).max() > 40  # the JPEG really is noisy
    p = read_phantom(tmp_path / "s.jpg", size=None)
    assert (p.label_map == truth).mean() > 0.97


def test_blend_between_black_and_white_does_not_become_media():
    """Grey anti-aliasing between lumen (black) and calcium (white) equals the media colour."""
    lab = np.full((160, 160), int(Tissue.LUMEN), np.uint8)
    lab[:, 80:] = Tissue.DENSE_CALCIUM
    hi = np.kron(lab, np.ones((4, 4), np.uint8))
    hi[:, 318:320] = Tissue.DENSE_CALCIUM  # the edge falls mid-pixel after downsampling
    rgb = np.asarray(Image.fromarray(colourise(hi)).resize((160, 160), Image.Resampling.BOX))
    assert (np.abs(rgb.astype(int) - 128).max(axis=-1) < 10).any()  # some pixels are media-grey
    out = snap_to_palette(rgb).labels
    assert not (out == Tissue.MEDIA).any()
    assert set(np.unique(out)) == {Tissue.LUMEN, Tissue.DENSE_CALCIUM}


def test_palette_mode_png(tmp_path):
    truth, sketch = _truth_and_sketch(n=96)
    sketch.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    p = read_phantom(tmp_path / "p.png", size=None)
    assert (p.label_map == truth).mean() > 0.95


def test_rgba_transparent_background_is_perivascular(tmp_path):
    lab = _simple_labels(64)
    rgba = np.concatenate([colourise(lab), np.full((64, 64, 1), 255, np.uint8)], axis=-1)
    rgba[lab == Tissue.PERIVASCULAR] = (10, 200, 30, 0)  # some junk colour, fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    p = read_phantom(tmp_path / "a.png", size=None)
    fov = p.label_map != Tissue.OUTSIDE
    expected = np.where(lab == Tissue.PERIVASCULAR, Tissue.PERIVASCULAR, lab)
    body = fov & (p.label_map != Tissue.CATHETER)
    assert np.array_equal(p.label_map[body], expected[body])


def test_few_stray_pixels_are_tolerated_but_a_blob_is_an_error(tmp_path):
    lab = _simple_labels(64)
    rgb = colourise(lab)
    rgb[5, 30] = rgb[50, 10] = (0, 0, 255)  # two specks of an unknown colour
    Image.fromarray(rgb).save(tmp_path / "specks.png")
    p = read_phantom(tmp_path / "specks.png", size=None)
    assert p.label_map[5, 30] in (Tissue.PERIVASCULAR, Tissue.OUTSIDE)
    rgb[20:30, 40:50] = (0, 0, 255)  # a 10x10 blue square
    Image.fromarray(rgb).save(tmp_path / "blob.png")
    with pytest.raises(IvusSimError, match=r"rgb\(0,0,255\) x10[0-9].*rows 5-50, columns 10-49.*first at row 5"):
        read_phantom(tmp_path / "blob.png")


def test_colour_tolerance_is_honoured(tmp_path):
    lab = _simple_labels(96)
    rgb = colourise(lab).astype(int)
    rgb[lab == Tissue.FIBROUS] += (0, 40, -55)  # 68 away from fibrous green, further from the rest
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(tmp_path / "off.png")
    with pytest.raises(IvusSimError, match="far from every sketch colour"):
        read_phantom(tmp_path / "off.png")
    p = read_phantom(tmp_path / "off.png", colour_tolerance=80, size=None)
    assert (p.label_map == Tissue.FIBROUS).sum() == (lab == Tissue.FIBROUS).sum()


# --------------------------------------------------------------------------- label formats


@pytest.mark.parametrize("mode", ["L", "I;16"])
def test_single_channel_label_png(tmp_path, mode):
    lab = random_phantom(2, size=64).label_map
    im = Image.fromarray(lab) if mode == "L" else Image.fromarray(lab.astype(np.uint16))
    im.save(tmp_path / "l.png")
    assert Image.open(tmp_path / "l.png").mode.startswith(mode[0])
    p = read_phantom(tmp_path / "l.png", size=None)
    assert np.array_equal(p.label_map, lab)
    assert p.meta["format"] == "label image"


def test_multipage_tiff_is_a_pullback(tmp_path):
    frames = [random_phantom(3, size=48, index=i).label_map for i in range(3)]
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(tmp_path / "stack.tif", save_all=True, append_images=ims[1:])
    p = read_phantom(tmp_path / "stack.tif", size=None)
    assert p.labels.shape == (3, 48, 48)
    assert np.array_equal(p.labels, np.stack(frames))


def test_ids_saved_as_grey_rgb_are_labels(tmp_path):
    lab = _simple_labels(40)
    Image.fromarray(np.repeat(lab[..., None], 3, axis=-1)).save(tmp_path / "g.png")
    p = read_phantom(tmp_path / "g.png", size=None)
    assert p.meta["format"].startswith("label image")
    inside = (p.label_map != Tissue.OUTSIDE) & (p.label_map != Tissue.CATHETER)
    assert np.array_equal(p.label_map[inside], lab[inside])


def test_nifti_3d_round_trip_with_save_nifti(tmp_path):
    vol = np.stack([random_phantom(5, size=40, index=i).label_map for i in range(4)])
    vol[1, 3, 20] = Tissue.PERIVASCULAR  # (asymmetric detail to catch a transposed read)
    save_nifti(tmp_path / "v.nii.gz", vol, pixel_mm=0.2, frame_mm=0.5)
    img = nib.load(tmp_path / "v.nii.gz")
    assert img.shape == (40, 40, 4)
    p = read_phantom(tmp_path / "v.nii.gz", size=None)
    assert np.array_equal(p.labels, vol)
    assert p.geometry.fov_mm == pytest.approx(8.0)  # 0.2 mm x 40 px, from the header
    assert p.meta["fov_source"] == "nifti header" and p.meta["frame_mm"] == pytest.approx(0.5)
    assert read_phantom(tmp_path / "v.nii.gz", fov_mm=6.0, size=None).geometry.fov_mm == 6.0


def test_nifti_2d_and_implausible_spacing(tmp_path):
    lab = random_phantom(6, size=32).label_map
    nib.save(nib.Nifti1Image(lab.T.copy(), np.diag([0.25, 0.25, 1.0, 1.0])), tmp_path / "one.nii")
    p = read_phantom(tmp_path / "one.nii", size=None)
    assert np.array_equal(p.label_map, lab)
    assert p.geometry.fov_mm == pytest.approx(8.0) and p.meta["fov_source"] == "nifti header"
    nib.save(nib.Nifti1Image(lab.T.copy(), np.diag([2.0, 2.0, 1.0, 1.0])), tmp_path / "big.nii")
    q = read_phantom(tmp_path / "big.nii", size=None)
    assert q.meta["fov_source"] == "default" and q.geometry.fov_mm == 10.0  # 64 mm is not an IVUS FOV


def test_npy_and_resampling(tmp_path):
    lab = random_phantom(8, size=128).label_map
    np.save(tmp_path / "a.npy", lab)
    native = read_phantom(tmp_path / "a.npy", size=None)
    assert np.array_equal(native.label_map, lab)
    small = read_phantom(tmp_path / "a.npy", size=64)
    assert small.labels.shape == (1, 64, 64) and small.geometry.size == 64
    inside = (small.label_map != Tissue.OUTSIDE) & (small.label_map != Tissue.CATHETER)
    assert (small.label_map == lab[1::2, 1::2])[inside].mean() > 0.99  # nearest neighbour
    assert read_phantom(tmp_path / "a.npy", size=200).labels.shape == (1, 200, 200)


def test_non_square_is_an_error_unless_padded(tmp_path):
    lab = _simple_labels(60)[:, 10:50]  # 40 wide, 60 high
    np.save(tmp_path / "ns.npy", lab)
    with pytest.raises(IvusSimError, match="40x60 pixels"):
        read_phantom(tmp_path / "ns.npy")
    p = read_phantom(tmp_path / "ns.npy", pad=True, size=None)
    assert p.labels.shape == (1, 60, 60) and p.meta["padded"]
    assert (p.label_map[:, :10] != Tissue.LUMEN).all() and (p.label_map[:, 10:50] == Tissue.LUMEN).any()


# --------------------------------------------------------------------------- bad input


def _bad_files(tmp_path):
    lab = _simple_labels(32)
    (tmp_path / "empty.png").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(colourise(_simple_labels(128))).save(buf, format="PNG")
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (tmp_path / "text.png").write_text("definitely not a PNG")
    (tmp_path / "notes.txt").write_text("hello")
    np.save(tmp_path / "unknown.npy", np.where(lab == Tissue.FIBROUS, 42, lab))
    f = lab.astype(np.float32)
    f[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", f)
    np.save(tmp_path / "4d.npy", lab[None, None])
    np.save(tmp_path / "1d.npy", lab[0])
    np.save(tmp_path / "nolumen.npy", np.where(lab == Tissue.LUMEN, Tissue.FIBROUS, lab))
    rng = np.random.default_rng(0)
    photo = (np.add.outer(np.arange(64), np.arange(64)) * 2 + rng.integers(0, 20, (64, 64))).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    save_nifti(tmp_path / "vol.nii.gz", np.stack([lab, lab]), 0.3)
    data = (tmp_path / "vol.nii.gz").read_bytes()
    (tmp_path / "trunc.nii.gz").write_bytes(data[: len(data) // 2])
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    # an exported B-mode frame saved as RGB: speckle, log-compressed, dark lumen and corners
    n = 96
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    r = np.hypot(yy, xx)
    iq = ndimage.gaussian_filter(rng.normal(size=(n, n)), 1.0) + 1j * ndimage.gaussian_filter(rng.normal(size=(n, n)),
                                                                                             1.0)
    env = np.abs(iq) * np.where(r < 20, 0.1, 1.0)
    bmode = np.clip((20 * np.log10(env / env.max() + 1e-6) + 50) / 50 * 255, 0, 255).astype(np.uint8)
    bmode[r > n / 2] = 0
    Image.fromarray(np.repeat(bmode[..., None], 3, axis=-1)).save(tmp_path / "bmode.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "noise.jpg", quality=90)


BAD_INPUTS = [
    ("missing.png", "not found"),
    ("empty.png", "file is empty"),
    ("trunc.png", "cannot read the image"),
    ("text.png", "cannot read the image"),
    ("notes.txt", "unsupported phantom file type '.txt'"),
    ("unknown.npy", "unknown tissue ids 42"),
    ("nan.npy", "NaN"),
    ("4d.npy", "4-D"),
    ("1d.npy", "1-D"),
    ("nolumen.npy", "no lumen"),
    ("photo.png", "looks like a photograph"),
    ("bmode.png", "looks like a greyscale photograph or ultrasound image"),
    ("noise.jpg", "looks like a photograph"),
    ("trunc.nii.gz", "cannot read the NIfTI"),
    ("pickled.npy", "cannot read the .npy"),
]


@pytest.mark.parametrize("name,message", BAD_INPUTS)
def test_bad_input_is_a_one_line_error(tmp_path, name, message):
    _bad_files(tmp_path)
    with pytest.raises(IvusSimError, match=message) as err:
        read_phantom(tmp_path / name)
    assert "\n" not in str(err.value)


def test_directory_is_refused(tmp_path):
    with pytest.raises(IvusSimError, match="is a directory"):
        read_phantom(tmp_path)


# --------------------------------------------------------------------------- writing, folders


@pytest.mark.parametrize("name", ["w.png", "w.npy", "w.nii.gz"])
def test_write_then_read_round_trip_with_sidecar(tmp_path, name):
    p = random_phantom(1, size=48)
    out = write_phantom(tmp_path / name, p)
    side = json.loads(sidecar_path(out).read_text())
    assert side["hash"] == p.hash() and side["meta"]["seed"] == 1
    q = read_phantom(out, size=None, fov_mm=p.geometry.fov_mm)
    assert np.array_equal(q.labels, p.labels)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_write_pullback_as_png_is_refused_and_leaves_nothing(tmp_path):
    vol = np.stack([random_phantom(1, size=32, index=i).label_map for i in range(2)])
    from ivus_sim.phantom import Phantom

    p = Phantom.from_array(vol)
    with pytest.raises(IvusSimError, match="pullback cannot be a PNG"):
        write_phantom(tmp_path / "x.png", p)
    assert list(tmp_path.iterdir()) == []
    write_phantom(tmp_path / "x.nii.gz", p)
    assert read_phantom(tmp_path / "x.nii.gz", size=None).labels.shape == (2, 32, 32)


def test_read_phantoms_iterates_a_folder_in_order(tmp_path):
    for i in (2, 0, 1):
        write_phantom(tmp_path / f"ph_{i}.png", random_phantom(0, size=32, index=i))
    files = list_phantom_files(tmp_path)
    assert [f.name for f in files] == ["ph_0.png", "ph_1.png", "ph_2.png"]  # json sidecars skipped
    got = list(read_phantoms(tmp_path, size=None))
    assert [g.source for g in got] == [str(f) for f in files]
    assert np.array_equal(got[1].labels, random_phantom(0, size=32, index=1).labels)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IvusSimError, match="no phantom files"):
        list(read_phantoms(tmp_path / "empty"))


# --------------------------------------------------------------------------- examples/


EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_NAMES = ["normal_vessel", "fibrous_plaque", "calcified_plaque", "lipid_rich_plaque", "stented_vessel"]
EXPECTED_TISSUES = {
    "normal_vessel": {Tissue.LUMEN, Tissue.FIBROUS, Tissue.MEDIA, Tissue.PERIVASCULAR},
    "fibrous_plaque": {Tissue.FIBROUS, Tissue.FIBRO_FATTY},
    "calcified_plaque": {Tissue.DENSE_CALCIUM},
    "lipid_rich_plaque": {Tissue.NECROTIC_CORE, Tissue.FIBRO_FATTY},
    "stented_vessel": {Tissue.STENT_STRUT, Tissue.GUIDEWIRE},
}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_read_cleanly(name):
    p = read_phantom(EXAMPLES_DIR / f"{name}.png")
    assert p.labels.shape == (1, 256, 256)
    assert p.meta["snapping"]["stray_filled_fraction"] == 0.0
    assert p.meta["snapping"]["confident_fraction"] > 0.97
    present = set(np.unique(p.label_map).tolist())
    assert EXPECTED_TISSUES[name] <= present
    # the catheter they draw is at the centre, inside the lumen
    cath = p.label_map == Tissue.CATHETER
    ring = ndimage.binary_dilation(cath, iterations=2) & ~cath
    assert set(np.unique(p.label_map[ring]).tolist()) <= {Tissue.LUMEN}


def test_example_script_is_deterministic_and_readme_matches_the_palette(tmp_path):
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES_DIR / "make_examples.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    rgb = mod.EXAMPLES["calcified_plaque"]()
    assert rgb.shape == (400, 400, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb, np.asarray(Image.open(EXAMPLES_DIR / "calcified_plaque.png")))
    readme = (EXAMPLES_DIR / "README.md").read_text()
    for t, info in TISSUES.items():
        r, g, b = info.colour
        assert f"| {int(t)} | {info.name} | `#{r:02x}{g:02x}{b:02x}` | ({r}, {g}, {b}) |" in readme
    for name in EXAMPLE_NAMES:
        assert f"`{name}.png`" in readme
