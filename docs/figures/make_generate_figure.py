"""Make ``docs/figures/generate_calcified_plaque.png``: an example sketch next to what the embedded
default model generates from it (the README's first command), plus the physics engine's image.

    python docs/figures/make_generate_figure.py            # deterministic: seed 0, CPU, fp32

Columns: the sketch (as drawn), four draws of the learned default (``ivus-sim generate --phantom
examples/calcified_plaque.png --n 4``), and the stage-0 physics engine on the same phantom.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ivus_sim.io import save_png
from ivus_sim.phantom.reader import read_phantom
from ivus_sim.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
SKETCH = ROOT / "examples" / "calcified_plaque.png"
OUT = Path(__file__).with_name("generate_calcified_plaque.png")
SIZE = 256
GAP = 4
TITLE_H = 18


def main() -> None:
    ph = read_phantom(SKETCH, size=SIZE)
    learned = Simulator.default(device="cpu", precision="fp32").generate(ph, n=4, seed=0).images
    physics = Simulator.physics("20mhz", device="cpu").generate(ph, n=1, seed=0).images[0]
    sketch = np.asarray(Image.open(SKETCH).convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    tiles = [sketch] + [np.repeat(im[..., None], 3, -1) for im in (*learned, physics)]
    titles = ["sketch", "learned default, seed 0 #0", "#1", "#2", "#3", "physics engine"]
    w = len(tiles) * SIZE + (len(tiles) - 1) * GAP
    canvas = Image.new("RGB", (w, SIZE + TITLE_H), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (t, title) in enumerate(zip(tiles, titles)):
        x = i * (SIZE + GAP)
        canvas.paste(Image.fromarray(t), (x, TITLE_H))
        draw.text((x + 4, 3), title, fill=(0, 0, 0))
    save_png(OUT, np.asarray(canvas))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
