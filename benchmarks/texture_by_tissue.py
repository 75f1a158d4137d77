"""Per-tissue texture of a trained model against its scanner's frames, and where it is lost.

A development diagnostic for the hidden-scanner test (``benchmarks/hidden_scanner.py``): for one
scanner's work folder (``test/frame_XX_image.png`` + ``_label.png``, and the trained ``run/``), the
model renders the test label maps (z1, z2 and the stage-2 noise drawn from ``--seed``) and, per
tissue (pixels whose four polar neighbours are the same tissue), the script prints the grey-level
standard deviation and mean of the scanner's frames (sent to the model's polar grid, bicubic), of
the physics-informed formation before the refinement network (``formed``) and of the final image,
with the mean scattering parameters the model set there (``sigma_n``: log-std of the per-cell
scatterer power; ``sigma_t`` in dB: the smooth texture field; ``dP``: the power correction [dB]).
A tissue whose ``formed`` std matches the scanner but whose final std does not is one the
refinement network smooths. Needs a ``physics`` stage-2 model.

Usage::

    python benchmarks/texture_by_tissue.py runs/hidden_scanner/h1_40mhz_blood
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ivus_sim.geometry import Interp, cart_to_polar
from ivus_sim.simulator.learned import load_from_path
from ivus_sim.tissues import SPECKLE_TISSUES, Tissue


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="one scanner's folder of a hidden_scanner.py work folder")
    ap.add_argument("--model", type=Path, default=None, help="model (default: WORK/run)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_from_path(args.model or args.work / "run", torch.device("cpu"))[0].eval()
    if model.config.stage2_kind.value != "physics":
        raise SystemExit(f"error: {args.model or args.work / 'run'}: stage 2 is {model.config.stage2_kind.value!r};"
                         " this diagnostic needs the physics-informed stage 2")
    a, s = model.polar_shape
    labs = sorted((args.work / "test").glob("frame_*_label.png"))
    lab = np.stack([np.asarray(Image.open(p)) for p in labs]).astype(np.uint8)
    real = np.stack([np.asarray(Image.open(str(p).replace("_label", "_image")).convert("L")) for p in labs])
    lab_p = torch.as_tensor(cart_to_polar(torch.from_numpy(lab), a, s, Interp.NEAREST)).long()
    real_p = torch.as_tensor(cart_to_polar(torch.from_numpy(real.astype(np.float32) / 255)[:, None], a, s,
                                           Interp.BICUBIC))[:, 0]
    cap: dict[str, Any] = {}
    stage2 = model.stage2
    stage2.params.register_forward_hook(lambda m, i, o: cap.__setitem__("params", o))
    stage2.refine.register_forward_pre_hook(lambda m, i: cap.__setitem__("formed", i[0][:, 0].clone()))
    g = torch.Generator().manual_seed(args.seed)
    b, cfg = lab_p.shape[0], model.config
    with torch.no_grad():
        z1, z2 = torch.randn(b, cfg.z1_dim, generator=g), torch.randn(b, cfg.z2_dim, generator=g)
        out = model.render_polar(lab_p, z1, z2, model.noise(b, g))
    img, mean = out["image"][:, 0], out["mean"][:, 0]
    d_db, sig_n, sig_t = cap["params"]
    formed = cap["formed"].clamp(0, 1)
    print(f"{len(labs)} test frames of {args.work}; model grid {a} x {s}")
    print("| tissue | pixels | grey std: scanner | formed | final | grey mean: scanner | final | stage 1 "
          "| sigma_n | sigma_t [dB] | dP [dB] |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t in (*SPECKLE_TISSUES, Tissue.LUMEN):
        m = lab_p == int(t)
        inner = m.clone()
        for shift, dim in ((1, 1), (-1, 1), (1, 2), (-1, 2)):
            inner &= torch.roll(m, shift, dim)
        if int(inner.sum()) < 200:
            continue

        def std_mean(x: torch.Tensor, sel: torch.Tensor = inner) -> tuple[float, float]:
            return float(x[sel].std()) * 255, float(x[sel].mean()) * 255

        (sr, mr), (sf, _), (si, mi) = std_mean(real_p), std_mean(formed), std_mean(img)
        print(f"| {t.name.lower()} | {int(inner.sum())} | {sr:.1f} | {sf:.1f} | {si:.1f} | {mr:.1f} | {mi:.1f} | "
              f"{float(mean[inner].mean()) * 255:.1f} | {float(sig_n[inner].mean()):.2f} | "
              f"{float(sig_t[inner].mean()) * 10 / math.log(10):.2f} | {float(d_db[inner].mean()):.1f} |")
    print("style (mean over the batch):", {k: round(float(v.mean()), 3) for k, v in out["style"].items()})


if __name__ == "__main__":
    main()
