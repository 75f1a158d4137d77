"""Converters: 2011 IVUS challenge contours and VH-IVUS colour maps, on tiny files written here."""

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from ivus_sim.errors import IvusSimError
from ivus_sim.phantom.converters import (
    VHPalette,
    challenge_frame_to_phantom,
    convert_challenge_folder,
    convert_vh,
    read_contour,
    vh_image_to_phantom,
    vh_map_to_labels,
)
from ivus_sim.phantom.reader import read_phantom
from ivus_sim.tissues import Tissue

N = 64


def _circle(cx: float, cy: float, r: float, n: int = 90) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def _write_contour(path, xy, sep=","):
    path.write_text("\n".join(f"{x:.2f}{sep}{y:.2f}" for x, y in xy) + "\n")


def _challenge_case(folder, name="frame_01_0001_003", lumen=(34.0, 30.0, 11.0), media=(31.5, 31.5, 22.0)):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((N, N), np.uint8)).save(folder / f"{name}.png")
    _write_contour(folder / f"lum_{name}.txt", _circle(*lumen))
    _write_contour(folder / f"med_{name}.txt", _circle(*media))


def _radius(x, y, cx, cy):
    return np.hypot(x - cx, y - cy)


def test_challenge_frame_regions(tmp_path):
    _challenge_case(tmp_path)
    p = challenge_frame_to_phantom(tmp_path / "frame_01_0001_003.png", tmp_path / "lum_frame_01_0001_003.txt",
                                   tmp_path / "med_frame_01_0001_003.txt", fov_mm=8.0)
    lab = p.label_map
    assert lab.shape == (N, N) and p.geometry.fov_mm == 8.0
    yy, xx = np.mgrid[:N, :N]
    r_lum, r_med = _radius(xx, yy, 34, 30), _radius(xx, yy, 31.5, 31.5)
    body = lab != Tissue.CATHETER
    assert (lab[(r_lum < 10) & body] == Tissue.LUMEN).all()
    assert (lab[(r_lum > 12) & (r_med < 19)] == Tissue.FIBROUS).all()  # between the contours
    assert (lab[(r_med > 23) & (lab != Tissue.OUTSIDE)] == Tissue.PERIVASCULAR).all()
    media = lab == Tissue.MEDIA
    assert (r_med[media] > 19.5).all() and (r_med[media] < 22.5).all()  # just inside the contour
    # 0.15 mm at 0.125 mm/px: a closed ring ~1.2 px thick
    assert 0.6 < media.sum() / (2 * np.pi * 22 * 1.2) < 1.6
    fibrous = ndimage.binary_dilation(lab == Tissue.FIBROUS)  # 4-neighbourhood
    assert not (fibrous & (lab == Tissue.PERIVASCULAR)).any()
    assert p.meta["wall_tissue"] == "fibrous" and p.meta["converter"] == "ivus_challenge_2011"


def test_challenge_options_wall_tissue_and_no_media(tmp_path):
    _challenge_case(tmp_path)
    args = (tmp_path / "frame_01_0001_003.png", tmp_path / "lum_frame_01_0001_003.txt",
            tmp_path / "med_frame_01_0001_003.txt")
    p = challenge_frame_to_phantom(*args, wall_tissue=Tissue.FIBRO_FATTY, media_ring_mm=0.0)
    assert not (p.label_map == Tissue.MEDIA).any() and (p.label_map == Tissue.FIBRO_FATTY).any()
    thick = challenge_frame_to_phantom(*args, media_ring_mm=0.5)
    thin = challenge_frame_to_phantom(*args)
    assert (thick.label_map == Tissue.MEDIA).sum() > 2 * (thin.label_map == Tissue.MEDIA).sum()
    with pytest.raises(IvusSimError, match="wall tissue must be one of"):
        challenge_frame_to_phantom(*args, wall_tissue=Tissue.LUMEN)


def test_challenge_folder_pairs_names_and_writes_sidecars(tmp_path):
    src = tmp_path / "in"
    _challenge_case(src / "DCM", "frame_01_0002_003")
    _challenge_case(src / "DCM", "frame_01_0001_003", lumen=(30, 30, 8), media=(32, 32, 20))
    Image.fromarray(np.zeros((N, N), np.uint8)).save(src / "DCM" / "frame_01_0003_003.png")  # no contours
    # contours in a separate LABELS folder, as in the challenge archive
    (src / "LABELS").mkdir()
    for f in (src / "DCM").glob("*.txt"):
        f.rename(src / "LABELS" / f.name)
    written, unmatched = convert_challenge_folder(src, tmp_path / "out", progress=False)
    assert [w.name for w in written] == ["frame_01_0001_003.png", "frame_01_0002_003.png"]
    assert [u.name for u in unmatched] == ["frame_01_0003_003.png"]
    side = json.loads((tmp_path / "out" / "frame_01_0001_003.json").read_text())
    assert side["meta"]["lumen_contour"].endswith("lum_frame_01_0001_003.txt")
    back = read_phantom(written[0], size=None)
    assert (back.label_map == Tissue.LUMEN).any() and (back.label_map == Tissue.MEDIA).any()
    # an output folder inside the input folder is not mistaken for frames on a second run
    written2, unmatched2 = convert_challenge_folder(src, src / "phantoms", progress=False)
    assert len(written2) == 2 and [u.name for u in unmatched2] == ["frame_01_0003_003.png"]
    _, unmatched3 = convert_challenge_folder(src, src / "phantoms", progress=False)
    assert unmatched3 == unmatched2


@pytest.mark.parametrize("content,message", [
    ("1,2\n3,4\n", "at least 3 points"),
    ("1,2\nabc,4\n5,6\n", r":2: expected 'x,y'"),
    ("1,2,3\n4,5,6\n7,8,9\n", r":1: expected 'x,y'"),
])
def test_bad_contour_files(tmp_path, content, message):
    (tmp_path / "c.txt").write_text(content)
    with pytest.raises(IvusSimError, match=message):
        read_contour(tmp_path / "c.txt")


def test_contour_separators_and_swapped_files(tmp_path):
    _write_contour(tmp_path / "a.txt", _circle(10, 10, 5), sep="\t")
    assert read_contour(tmp_path / "a.txt").shape == (90, 2)
    _challenge_case(tmp_path)
    with pytest.raises(IvusSimError, match="swapped"):
        challenge_frame_to_phantom(tmp_path / "frame_01_0001_003.png", tmp_path / "med_frame_01_0001_003.txt",
                                   tmp_path / "lum_frame_01_0001_003.txt")
    (tmp_path / "no_contours").mkdir()
    Image.fromarray(np.zeros((N, N), np.uint8)).save(tmp_path / "no_contours" / "frame_01_0009_003.png")
    with pytest.raises(IvusSimError, match="no frame image with matching"):
        convert_challenge_folder(tmp_path / "no_contours", tmp_path / "o2", progress=False)
    with pytest.raises(IvusSimError, match="challenge folder not found"):
        convert_challenge_folder(tmp_path / "nope", tmp_path / "o3", progress=False)


# --------------------------------------------------------------------------- VH-IVUS


def _vh_map(n: int = N, gap_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A VH map (RGB) with black lumen and black surroundings, and the expected labels."""
    pal = VHPalette()
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    r, th = np.hypot(yy, xx), np.degrees(np.arctan2(yy, xx)) % 360
    truth = np.full((n, n), int(Tissue.PERIVASCULAR), np.uint8)
    truth[r < 0.42 * n] = Tissue.MEDIA
    truth[r < 0.37 * n] = Tissue.FIBROUS
    truth[(r < 0.37 * n) & (th > 20) & (th < 80)] = Tissue.NECROTIC_CORE
    truth[(r < 0.37 * n) & (th > 100) & (th < 140)] = Tissue.FIBRO_FATTY
    truth[(r > 0.3 * n) & (r < 0.37 * n) & (th > 200) & (th < 300)] = Tissue.DENSE_CALCIUM
    truth[r < 0.22 * n] = Tissue.LUMEN
    if gap_deg:
        truth[(r >= 0.22 * n) & (r < 0.42 * n) & (np.abs(th - 330) < gap_deg / 2)] = Tissue.LUMEN
    colour = {Tissue.PERIVASCULAR: pal.black, Tissue.LUMEN: pal.black, Tissue.FIBROUS: pal.fibrous,
              Tissue.FIBRO_FATTY: pal.fibro_fatty, Tissue.NECROTIC_CORE: pal.necrotic_core,
              Tissue.DENSE_CALCIUM: pal.dense_calcium, Tissue.MEDIA: pal.media}
    rgb = np.zeros((n, n, 3), np.uint8)
    for t, c in colour.items():
        rgb[truth == t] = c
    return rgb, truth


def test_vh_black_inside_is_lumen_outside_is_perivascular():
    rgb, truth = _vh_map()
    labels, closing = vh_map_to_labels(rgb)
    assert closing == 0
    assert np.array_equal(labels, truth)


def test_vh_open_ring_is_closed_to_find_the_lumen():
    rgb, _ = _vh_map(gap_deg=8)  # a narrow gap (side branch) connects lumen and outside
    labels, closing = vh_map_to_labels(rgb)
    assert closing > 0
    yy, xx = np.mgrid[:N, :N] - (N - 1) / 2
    r = np.hypot(yy, xx)
    assert (labels[r < 0.2 * N] == Tissue.LUMEN).all()
    assert (labels[r > 0.46 * N] == Tissue.PERIVASCULAR).all()


def test_vh_file_folder_and_errors(tmp_path):
    rgb, truth = _vh_map()
    (tmp_path / "vh").mkdir()
    Image.fromarray(rgb).save(tmp_path / "vh" / "b.png")
    Image.fromarray(rgb).save(tmp_path / "vh" / "a.jpg", quality=90)
    written = convert_vh(tmp_path / "vh", tmp_path / "out", progress=False)
    assert [w.name for w in written] == ["a.png", "b.png"]
    a = read_phantom(written[0], size=None).label_map
    inside = (a != Tissue.OUTSIDE) & (a != Tissue.CATHETER)
    assert (a[inside] == truth[inside]).mean() > 0.97  # JPEG input
    assert json.loads((tmp_path / "out" / "b.json").read_text())["meta"]["converter"] == "vh_ivus"
    with pytest.raises(IvusSimError, match="is the input folder"):
        convert_vh(tmp_path / "vh", tmp_path / "vh", progress=False)
    blue = rgb.copy()
    blue[5:15, 5:15] = (0, 0, 255)
    Image.fromarray(blue).save(tmp_path / "blue.png")
    with pytest.raises(IvusSimError, match=r"far from every VH-IVUS colour \(rgb\(0,0,255\) x100"):
        vh_image_to_phantom(tmp_path / "blue.png")
    black = np.zeros_like(rgb)
    Image.fromarray(black).save(tmp_path / "black.png")
    with pytest.raises(IvusSimError, match="all black"):
        vh_image_to_phantom(tmp_path / "black.png")
    arc = rgb.copy()
    arc[:, : N // 2] = 0  # only half a wall: the centre is not enclosed
    Image.fromarray(arc).save(tmp_path / "arc.png")
    with pytest.raises(IvusSimError, match="does not enclose the image centre"):
        vh_image_to_phantom(tmp_path / "arc.png")
