"""Diversity: do two latent draws of the learned model differ more than two speckle seeds of physics?

On each of ``--phantoms`` random phantoms (``random_phantom(seed, size=256, fov_mm=10, index=i)``,
the phantoms of ``ivus-sim phantom random --n 13 --seed 3`` by default) the script makes
``--samples`` images (default 2) per engine and measures every pair of images of one phantom in
the polar measurement frame of :mod:`ivus_sim.metrics` (:func:`ivus_sim.metrics.diversity.pairwise_diversity`:
mean absolute difference L1 of display values in [0, 1], and 1 - SSIM):

* ``learned: z draws``: the learned model (default: the embedded default;
  ``--model RUN`` a trained one), ``Simulator.generate(label, n=2, seed=s)``: independent draws of
  z1, z2 and the stage-2 noise (what ``ivus-sim generate --n 2`` gives);
* ``learned: z2 draws, z1 fixed``: z1 = 0 (the prior's mode), z2 and the noise drawn
  (``generate(..., z=[0]*d1)``): the stage-2 (scanner style / texture) part of the diversity;
* ``physics: speckle seeds``: the 20 MHz physics engine, two scatterer fields (images 0 and 1 of
  a seed use independent speckle streams) on the same phantom: the diversity of speckle alone.

Target (issue 12): the learned z draws differ more than the physics engine's speckle seeds on
both figures. Mean ± sd over phantoms (each phantom's mean over its pairs).

Usage::

    nice -n 10 python benchmarks/diversity.py                  # JSON + Markdown to benchmarks/results/diversity/
    nice -n 10 python benchmarks/diversity.py --write-results  # ... and the "Diversity" section of RESULTS.md
    python benchmarks/diversity.py --phantoms 3                # quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import _results
import numpy as np
from _results import source_commit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
OUT_DIR = ROOT / "benchmarks" / "results" / "diversity"
SECTION = "## Diversity"
SIZE, FOV_MM = 256, 10.0


def polar(images: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(K, A, S)`` polar display values of ``K`` images of one label map and the polar labels
    ``(A, S)`` (the metrics' frame)."""
    from ivus_sim.metrics.imageset import ImageSet, to_polar

    k = images.shape[0]
    ps = to_polar(ImageSet([f"s{j}" for j in range(k)], list(images.astype(np.float64)), [label] * k))
    assert ps.labels is not None
    return ps.images, ps.labels[0]


def measure(rows: dict[str, list[np.ndarray]], labels: np.ndarray) -> dict[str, Any]:
    from ivus_sim.metrics.diversity import pairwise_diversity, shared_texture

    out = {}
    for name, groups in rows.items():
        pol = [polar(g, lab) for g, lab in zip(groups, labels, strict=True)]
        per = [pairwise_diversity([im]) for im, _ in pol]
        shared = [shared_texture([im], [lab])["mean_correlation"] for im, lab in pol]
        l1 = np.array([p["mean_l1"] for p in per])
        ds = np.array([p["mean_1_minus_ssim"] for p in per])
        sh = np.array([v for v in shared if v is not None])
        out[name] = {"l1_mean": float(l1.mean()), "l1_sd": float(l1.std(ddof=1)) if len(l1) > 1 else 0.0,
                     "dssim_mean": float(ds.mean()), "dssim_sd": float(ds.std(ddof=1)) if len(ds) > 1 else 0.0,
                     "shared_mean": float(sh.mean()) if len(sh) else None,
                     "shared_sd": float(sh.std(ddof=1)) if len(sh) > 1 else 0.0,
                     "per_phantom_l1": l1.tolist(), "per_phantom_1_minus_ssim": ds.tolist(),
                     "per_phantom_shared_texture": sh.tolist(),
                     "pairs": int(sum(p["pairs"] for p in per))}
    return out


def _shared(v: dict[str, Any]) -> str:
    return f"{v['shared_mean']:.3f} ± {v['shared_sd']:.3f}" if v.get("shared_mean") is not None else "-"


def markdown(res: dict[str, Any]) -> str:
    r = res["rows"]
    lines = [SECTION, "",
             f"Measured {res['date']} with `{res['command']}` (commit {res['commit']}, {res['machine']}): "
             f"{res['samples']} images per phantom and engine on {res['phantoms']} random phantoms "
             f"(`random_phantom({res['seed']}, size={SIZE}, fov_mm=10, index=i)`, the phantoms of `ivus-sim phantom "
             f"random --n {res['phantoms']} --seed {res['seed']}`); every pair of images of one phantom compared in "
             "the polar measurement frame of `ivus_sim.metrics` (L1: mean |difference| of display values in [0, 1]; "
             "1 - SSIM; shared fine texture: correlation of the two images' texture, image minus its 9 x 9 local "
             "mean, in tissue interiors, `ivus_sim.metrics.diversity.shared_texture`: ~0 for independent speckle). "
             f"Mean ± sd over phantoms. Learned model: {res['model']}.", "",
             "| images of one phantom | pairwise L1 | 1 - SSIM | shared fine texture |", "|---|---|---|---|"]
    for name, v in r.items():
        lines.append(f"| {name} | {v['l1_mean']:.3f} ± {v['l1_sd']:.3f} | "
                     f"{v['dssim_mean']:.3f} ± {v['dssim_sd']:.3f} | {_shared(v)} |")
    prev = res.get("previous")
    if prev:  # the same figures of an earlier default, measured the same way
        for name, v in prev["rows"].items():
            if name.startswith("learned"):
                lines.append(f"| {name}, previous default `{prev['model_id']}` | {v['l1_mean']:.3f} ± "
                             f"{v['l1_sd']:.3f} | {v['dssim_mean']:.3f} ± {v['dssim_sd']:.3f} | {_shared(v)} |")
    lz, ph = r.get("learned: z draws"), r.get("physics: speckle seeds")
    if lz and ph:
        ok_l1, ok_ds = lz["l1_mean"] > ph["l1_mean"], lz["dssim_mean"] > ph["dssim_mean"]
        lines += ["", f"Target (issue 12): two z draws differ more than two speckle seeds of the physics engine: "
                      f"L1 {'yes' if ok_l1 else 'no'} ({lz['l1_mean']:.3f} vs {ph['l1_mean']:.3f}), 1 - SSIM "
                      f"{'yes' if ok_ds else 'no'} ({lz['dssim_mean']:.3f} vs {ph['dssim_mean']:.3f}): "
                      f"{'met' if ok_l1 and ok_ds else '**not met**'}."]
    lines += ["", "What z2 does: `python docs/figures/make_explore_figure.py` (an `ivus-sim explore` sweep over two "
                  "z2 dimensions, `docs/figures/explore_z2.png`).", ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (see :func:`_results.write_section`)."""
    _results.write_section(text, SECTION)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phantoms", type=int, default=13)
    ap.add_argument("--seed", type=int, default=3, help="phantom seed (3: the issue's evaluation set)")
    ap.add_argument("--sample-seed", type=int, default=0, help="seed of the z / speckle draws")
    ap.add_argument("--samples", type=int, default=2, help="images per phantom and engine (>= 2)")
    ap.add_argument("--model", type=Path, help="a trained run instead of the embedded default")
    ap.add_argument("--preset", default="20mhz", help="physics preset")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json-out", type=Path, default=OUT_DIR / "results.json")
    ap.add_argument("--previous", type=Path, help="results JSON of an earlier default: its learned rows are shown too")
    ap.add_argument("--write-results", action="store_true", help=f"replace '{SECTION}' in {RESULTS}")
    a = ap.parse_args()
    if a.samples < 2:
        raise SystemExit("--samples must be >= 2")

    import torch
    from tqdm.auto import tqdm

    from ivus_sim import Simulator
    from ivus_sim.phantom.random import random_phantom

    torch.set_num_threads(a.threads)
    learned = (Simulator.from_run(a.model, device="cpu", precision="fp32") if a.model
               else Simulator.default(device="cpu", precision="fp32"))
    physics = Simulator.physics(a.preset, device="cpu")
    d1 = int(learned.z_dims[0])
    labels = np.stack([random_phantom(a.seed, size=SIZE, fov_mm=FOV_MM, index=i).labels[0]
                       for i in range(a.phantoms)])
    rows: dict[str, list[np.ndarray]] = {"learned: z draws": [], "learned: z2 draws, z1 fixed": [],
                                         "physics: speckle seeds": []}
    for i, lab in enumerate(tqdm(labels, desc="diversity", unit="phantom")):
        s = a.sample_seed + 1000 * i  # other draws for every phantom
        rows["learned: z draws"].append(learned.generate(lab, n=a.samples, seed=s, fov_mm=FOV_MM).images)
        rows["learned: z2 draws, z1 fixed"].append(
            learned.generate(lab, n=a.samples, seed=s, z=[0.0] * d1, fov_mm=FOV_MM).images)
        rows["physics: speckle seeds"].append(physics.generate(lab, n=a.samples, seed=s, fov_mm=FOV_MM).images)
    commit = source_commit()
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": shlex.join(["python", "benchmarks/diversity.py", *sys.argv[1:]]), "commit": commit,
           "machine": f"{platform.machine()}, torch {torch.__version__}, {a.threads} thread(s), fp32",
           "phantoms": a.phantoms, "seed": a.seed, "samples": a.samples,
           "model": f"`{a.model}`" if a.model else f"the embedded default (`{learned.model_id}`)",
           "rows": measure(rows, labels)}
    if a.previous is not None:
        old = json.loads(a.previous.read_text())
        mid = old["model"].split("`")[1] if "`" in old["model"] else old["model"]
        res["previous"] = {"model_id": mid, "date": old["date"], "rows": old["rows"]}
    a.json_out.parent.mkdir(parents=True, exist_ok=True)
    a.json_out.write_text(json.dumps(res, indent=1) + "\n")
    text = markdown(res)
    (a.json_out.parent / "results.md").write_text(text)
    print(text)
    if a.write_results:
        write_section(text)


if __name__ == "__main__":
    main()
