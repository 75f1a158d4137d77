"""Make ``docs/figures/hidden_scanner.png``: what learning a scanner from 13 frames looks like.

    python benchmarks/hidden_scanner.py --arms trained default --seed 3 --eval-seed 3 --work runs/hs3
    python docs/figures/make_hidden_scanner_figure.py runs/hs3

One row per hidden scanner of the benchmark's work folder (``configs/hidden_scanners/``): a test
label map (the first of the 12 test frames with dense calcium, else the first), the scanner's own
frame of it (made by the physics engine with the hidden preset: the "real" frame), the model that
``ivus-sim train --config own_data`` learned from the scanner's 13 training pairs, and the shipped
default (trained on the 20 MHz engine only), both generated from that label map by the benchmark
(``fake_trained/``, ``fake_default/``). Nothing is generated here: the figure shows the images the
classifier test scored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ivus_sim.io import save_png
from ivus_sim.phantom.reader import read_phantom
from ivus_sim.tissues import Tissue, colourise

OUT = Path(__file__).with_name("hidden_scanner.png")
SIZE = 256
GAP = 4
TITLE_H = 18
LABEL_W = 150
COLUMNS = ("label map", "the scanner's frame", "own_data, 13 frames", "shipped default, untrained")


def _grey(path: Path) -> np.ndarray:
    im = np.asarray(Image.open(path).convert("L").resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    return np.repeat(im[..., None], 3, -1)


def _pick(labels_dir: Path) -> tuple[Path, np.ndarray]:
    """The first test label map with dense calcium (else the first), and its labels ``(N, N)``."""
    files = sorted(labels_dir.glob("frame_*_label.png"))
    if not files:
        raise SystemExit(f"no test label maps in {labels_dir}")
    first: tuple[Path, np.ndarray] | None = None
    for f in files:
        lab = read_phantom(f, size=SIZE).labels[0]
        first = first or (f, lab)
        if (lab == Tissue.DENSE_CALCIUM).any():
            return f, lab
    assert first is not None
    return first


def row(scanner_dir: Path) -> list[np.ndarray]:
    """The four tiles of one scanner (see the module docstring)."""
    lab_file, labels = _pick(scanner_dir / "test_labels")
    stem = lab_file.name.removesuffix("_label.png")
    lab = colourise(labels)
    real = _grey(scanner_dir / "test" / f"{stem}_image.png")
    fakes = []
    for arm in ("fake_trained", "fake_default"):
        hits = sorted((scanner_dir / arm).glob(f"{stem}_label_seed*_000.png"))
        if not hits:
            raise SystemExit(f"no {arm} image of {stem} in {scanner_dir} "
                             "(run the benchmark with --arms trained default)")
        fakes.append(_grey(hits[0]))
    return [lab, real, *fakes]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path, help="the work folder of benchmarks/hidden_scanner.py")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    scanners = sorted(p for p in a.work.iterdir() if (p / "test_labels").is_dir())
    if not scanners:
        raise SystemExit(f"no scanner folders in {a.work}")
    w = LABEL_W + len(COLUMNS) * SIZE + (len(COLUMNS) - 1) * GAP
    h = TITLE_H + len(scanners) * (SIZE + GAP)
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(COLUMNS):
        draw.text((LABEL_W + j * (SIZE + GAP) + 4, 3), title, fill=(0, 0, 0))
    for i, sd in enumerate(scanners):
        y = TITLE_H + i * (SIZE + GAP)
        draw.text((4, y + SIZE // 2 - 6), sd.name, fill=(0, 0, 0))
        for j, tile in enumerate(row(sd)):
            canvas.paste(Image.fromarray(tile), (LABEL_W + j * (SIZE + GAP), y))
    save_png(a.out, np.asarray(canvas))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
