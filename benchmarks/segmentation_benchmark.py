"""Does ``ivus-sim augment`` help segmentation? Lumen + vessel-wall U-Net with and without synthetic data.

A small MONAI U-Net is trained (CPU) for 3 classes, background/perivascular (0), lumen (1)
and vessel wall (2: everything between the lumen border and the EEM, i.e. intima, plaque and
media; the ``lumen-wall`` label mapping), in three arms with the same number of optimiser
steps:

(a) **real**: a small "real-like" training set of ``k`` images (``--n-real``, several sizes:
    nested subsets of one pool);
(b) **real + synthetic**: the same plus ``--n-synth`` images from ``ivus-sim augment``
    (batches drawn half from each, so the few real images are not drowned out);
(c) **synthetic**: the synthetic images only;

and tested on one fixed held-out set of the same domain as (a). Metrics: Dice
(:class:`monai.metrics.DiceMetric`) and the 95th-percentile Hausdorff distance
(:class:`monai.metrics.HausdorffDistanceMetric`, in mm) of lumen and wall, mean +- std over
``--seeds`` training seeds.

Without real data, (a) and the test set come from the stage-0 physics engine with the
**40 MHz** preset and a phantom seed the generator never saw (a domain shift), while the
synthetic images come from the embedded learned model (``--generator learned``) or, where it
is not available, the physics engine with the **20 MHz** preset (``--generator physics``).
``--real DIR`` runs the same comparison on real data: a folder of pairs
``<case>_image.png`` / ``<case>_label.png`` with labels 0 background, 1 lumen, 2 wall; after a
seeded shuffle, the last ``max(--n-real)`` cases are the training pool and the rest the test set.

Runtime with the defaults (96 px, 15 training runs, two at a time with one thread each): 5-7
minutes on the 2-core development machine while shared (load 2-6)::

    nice python benchmarks/segmentation_benchmark.py --out benchmarks/results/segmentation
    python benchmarks/segmentation_benchmark.py --real /data/ivus_pairs --n-real 10 30
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ivus_sim.augment import AugmentConfig, Engine, EngineSpec, ImageFormat, LabelMapping, run_augment
from ivus_sim.errors import IvusSimError
from ivus_sim.io import atomic_write, write_json
from ivus_sim.seeding import seed_everything, torch_generator

CLASSES = ("lumen", "wall")
REAL_SEED = 90210  # phantom/image seed of the real-like domain (never used to make synthetic data)
SYNTH_SEED = 1


@dataclass
class Split:
    """Images ``(n, 1, H, W)`` float32 (z-scored per image) and labels ``(n, 1, H, W)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])


# --------------------------------------------------------------------------------------- data
def _normalise(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float32)
    return (img - img.mean()) / (img.std() + 1e-6)


def _load_decathlon(root: Path, size: int) -> Split:
    """Read an augment dataset (MONAI layout) with MONAI's own loaders, resized to ``size`` if needed."""
    from monai.data import load_decathlon_datalist
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Resized

    items = load_decathlon_datalist(str(root / "dataset.json"), is_segmentation=True, data_list_key="training",
                                    base_dir=str(root))
    steps: list[Any] = [LoadImaged(keys=["image", "label"], image_only=True),
                        EnsureChannelFirstd(keys=["image", "label"], channel_dim="no_channel")]
    if json.loads((root / "augment.json").read_text())["phantoms"]["size"] != size:
        steps.append(Resized(keys=["image", "label"], spatial_size=(size, size), mode=("area", "nearest")))
    load = Compose(steps)
    imgs, labs = [], []
    for it in items:
        d = load(it)
        imgs.append(_normalise(np.asarray(d["image"])[0]))
        labs.append(np.asarray(d["label"])[0].astype(np.int64))
    return Split(torch.from_numpy(np.stack(imgs))[:, None], torch.from_numpy(np.stack(labs))[:, None])


def _augment(out: Path, n: int, seed: int, spec: EngineSpec, gen_size: int, size: int, workers: int) -> Split:
    """Write ``n`` pairs with ``ivus_sim.augment`` at ``gen_size`` px and load them at ``size`` px."""
    cfg = AugmentConfig(n=n, out=out, seed=seed, engine=spec, size=gen_size, fmt=ImageFormat.PNG,
                        labels_map=LabelMapping.builtin("lumen-wall"))
    t0 = time.perf_counter()
    rep = run_augment(cfg, workers=workers, progress=True)
    print(f"  {spec.describe()}: {rep.written} new + {rep.existing} existing pairs in {time.perf_counter() - t0:.0f} s")
    return _load_decathlon(out, size)


def _load_pairs(folder: Path, size: int) -> Split:
    """Real paired data: ``*_image.png`` + ``*_label.png`` (labels 0/1/2), resized to ``size``."""
    from monai.transforms import LoadImage, Resize

    images = sorted(folder.glob("*_image.png"))
    if not images:
        raise IvusSimError(f"--real {folder}: no *_image.png files")
    load = LoadImage(image_only=True)
    rs_img, rs_lab = Resize((size, size), mode="bilinear"), Resize((size, size), mode="nearest")
    imgs, labs = [], []
    for p in images:
        lp = p.with_name(p.name[: -len("_image.png")] + "_label.png")
        if not lp.exists():
            raise IvusSimError(f"--real: {p.name} has no label file {lp.name}")
        img = np.asarray(load(str(p)), dtype=np.float32)
        if img.ndim == 3:  # RGB screenshots -> grey
            img = img.mean(-1)
        lab = np.asarray(load(str(lp)))
        if lab.ndim == 3:
            lab = lab[..., 0]
        if not set(np.unique(lab).astype(int)) <= {0, 1, 2}:
            raise IvusSimError(f"--real: {lp.name} has label values {np.unique(lab)[:8]}; expected 0/1/2"
                               " (background, lumen, wall)")
        img = np.asarray(rs_img(torch.from_numpy(img[None])))[0]
        lab = np.asarray(rs_lab(torch.from_numpy(lab[None].astype(np.float32))))[0]
        imgs.append(_normalise(img))
        labs.append(np.rint(lab).astype(np.int64))
    return Split(torch.from_numpy(np.stack(imgs))[:, None], torch.from_numpy(np.stack(labs))[:, None])


def _subset(s: Split, idx: np.ndarray | range) -> Split:
    i = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    return Split(s.images[i], s.labels[i])


# ------------------------------------------------------------------------------- training
def _unet() -> torch.nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=3, channels=(16, 32, 64, 128), strides=(2, 2, 2),
                num_res_units=1)


def _batch(sets: list[Split], batch: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch drawn equally from each set, with random 90-degree rotations and flips."""
    xs, ys = [], []
    for k in range(batch):
        s = sets[k % len(sets)]
        i = int(torch.randint(len(s), (1,), generator=g))
        x, y = s.images[i], s.labels[i]
        r = int(torch.randint(4, (1,), generator=g))
        x, y = torch.rot90(x, r, (1, 2)), torch.rot90(y, r, (1, 2))
        if bool(torch.randint(2, (1,), generator=g)):
            x, y = x.flip(2), y.flip(2)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def train(sets: list[Split], steps: int, batch: int, seed: int, lr: float) -> torch.nn.Module:
    from monai.losses import DiceCELoss

    seed_everything(seed)
    net = _unet()
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    g = torch_generator(seed, "segbench-batches")
    net.train()
    for _ in range(steps):
        x, y = _batch(sets, batch, g)
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        sched.step()
    return net


@torch.no_grad()
def evaluate(net: torch.nn.Module, test: Split, pixel_mm: float) -> dict[str, float]:
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    net.eval()
    dice = DiceMetric(include_background=False, reduction="mean_batch")
    hd = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="mean_batch", get_not_nans=True)
    for i in range(0, len(test), 16):
        x, y = test.images[i:i + 16], test.labels[i:i + 16]
        pred = net(x).argmax(1, keepdim=True)
        p1 = torch.nn.functional.one_hot(pred[:, 0], 3).permute(0, 3, 1, 2).float()
        y1 = torch.nn.functional.one_hot(y[:, 0], 3).permute(0, 3, 1, 2).float()
        dice(p1, y1)
        hd(p1, y1)
    d = torch.as_tensor(dice.aggregate()).tolist()
    h, _ = hd.aggregate()
    out = {}
    for k, c in enumerate(CLASSES):
        out[f"dice_{c}"] = float(d[k])
        out[f"hd95_{c}_mm"] = float(h[k]) * pixel_mm
    return out


_ARMS: dict[str, list[Split]] = {}  # set before the pool forks (shared copy-on-write with the workers)
_TEST: Split | None = None


def _run_one(job: tuple[str, int, int, int, float, float, int]) -> tuple[str, int, dict[str, float], float]:
    arm, seed, steps, batch, lr, pixel_mm, threads = job
    torch.set_num_threads(threads)
    assert _TEST is not None
    t0 = time.perf_counter()
    net = train(_ARMS[arm], steps, batch, seed, lr)
    return arm, seed, evaluate(net, _TEST, pixel_mm), time.perf_counter() - t0


# ------------------------------------------------------------------------------------ main
def _generator(name: str) -> tuple[EngineSpec, str]:
    physics = EngineSpec(engine=Engine.PHYSICS, preset="20mhz")
    if name == "physics":
        return physics, "physics engine, 20 MHz preset"
    learned = EngineSpec(engine=Engine.LEARNED)
    try:
        learned.build()
        return learned, "embedded learned default model"
    except Exception as e:
        if name == "learned":
            raise
        print(f"learned default model not available ({type(e).__name__}: {e}); using the physics engine at 20 MHz")
        return physics, "physics engine, 20 MHz preset (learned model not available)"


def _finite(results: dict[str, list[dict[str, float]]]) -> dict[str, list[dict[str, float | None]]]:
    """NaN/inf (e.g. HD95 of a class never predicted) -> None, for JSON."""
    return {a: [{k: (v if math.isfinite(v) else None) for k, v in r.items()} for r in rs] for a, rs in results.items()}


def _fmt(vals: list[float], digits: int) -> str:
    v = np.asarray(vals, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "n/a"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=96, help="image side [px] (64-128)")
    ap.add_argument("--n-real", type=int, nargs="+", default=[8, 24],
                    help="real(-like) training set sizes, arms (a) and (b) (nested subsets of one pool)")
    ap.add_argument("--gen-size", type=int, default=None,
                    help="simulate at this size [px] and downsample to --size (default: --size)")
    ap.add_argument("--n-test", type=int, default=48, help="held-out real(-like) test images (simulated domain)")
    ap.add_argument("--n-synth", type=int, default=240, help="synthetic images from augment, arms (b) and (c)")
    ap.add_argument("--steps", type=int, default=250, help="optimiser steps per training run")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per arm")
    ap.add_argument("--generator", choices=["auto", "learned", "physics"], default="auto")
    ap.add_argument("--real", type=Path, default=None, help="folder of real *_image.png / *_label.png pairs")
    ap.add_argument("--work", type=Path, default=None, help="keep the generated datasets here (default: temp)")
    ap.add_argument("--workers", type=int, default=2, help="augment worker processes")
    ap.add_argument("--jobs", type=int, default=2, help="training runs at a time (processes)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training run")
    ap.add_argument("--out", type=Path, default=None, help="write results.json and results.md here")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning, module="monai")  # a deprecation inside HD95
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    work = args.work or Path(tempfile.mkdtemp(prefix="segbench_"))
    spec, gen_desc = _generator(args.generator)
    pixel_mm = 10.0 / args.size
    gen_size = args.gen_size or args.size
    print("generating data ...")
    n_pool = max(args.n_real)
    if args.real is None:
        real_spec = EngineSpec(engine=Engine.PHYSICS, preset="40mhz")
        real = _augment(work / f"real_40mhz_{gen_size}", args.n_test + n_pool, REAL_SEED, real_spec, gen_size,
                        args.size, args.workers)
        order = np.arange(len(real))  # test: the first n_test cases; training pool: the rest
        test = _subset(real, order[: args.n_test])
        domain = (f"stage-0 physics engine, 40 MHz preset, seed {REAL_SEED} ({args.n_test} test images,"
                  f" {args.size} px" + (f", simulated at {gen_size} px" if gen_size != args.size else "") + ")")
    else:
        real = _load_pairs(args.real, args.size)
        if len(real) <= n_pool:
            raise IvusSimError(f"--real: {len(real)} pairs; need more than --n-real {n_pool} to leave a test set")
        order = np.random.default_rng(0).permutation(len(real))
        test = _subset(real, order[: len(real) - n_pool])
        domain = f"real data from {args.real} ({len(test)} test images, {args.size} px)"
    train_pool = order[len(test):]  # training sets are nested: the first k of the pool
    synth = _augment(work / f"synth_{spec.describe().replace(':', '_')}_{gen_size}", args.n_synth, SYNTH_SEED, spec,
                     gen_size, args.size, args.workers)

    arms: dict[str, list[Split]] = {}
    for k in sorted(set(args.n_real)):
        real_k = _subset(real, train_pool[:k])
        arms[f"(a) {k} real"] = [real_k]
        arms[f"(b) {k} real + {args.n_synth} synthetic"] = [real_k, synth]
    arms[f"(c) {args.n_synth} synthetic only"] = [synth]
    global _TEST
    _ARMS.update(arms)
    _TEST = test
    jobs = [(arm, seed, args.steps, args.batch, args.lr, pixel_mm, args.threads)
            for seed in range(args.seeds) for arm in arms]
    by_job: dict[tuple[str, int], dict[str, float]] = {}
    print(f"training {len(jobs)} U-Nets ({args.jobs} at a time, {args.threads} thread(s) each) ...")
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for arm, seed, m, sec in pool.imap_unordered(_run_one, jobs):
            by_job[(arm, seed)] = m
            print(f"  seed {seed} {arm}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()) + f" ({sec:.0f} s)")
    results = {arm: [by_job[(arm, seed)] for seed in range(args.seeds)] for arm in arms}

    lines = [f"Test set: {domain}. Synthetic data: {gen_desc}, seed {SYNTH_SEED}. "
             f"MONAI UNet (16-32-64-128), {args.steps} steps x batch {args.batch}, DiceCE, Adam {args.lr:g}; "
             f"mean ± std over {args.seeds} training seeds. HD95 in mm ({pixel_mm:.3f} mm/px).",
             "",
             "| arm | train images | Dice lumen | Dice wall | HD95 lumen [mm] | HD95 wall [mm] |",
             "|---|---|---|---|---|---|"]
    for arm, sets in arms.items():
        rs = results[arm]
        lines.append(f"| {arm} | {sum(len(s) for s in sets)} | {_fmt([r['dice_lumen'] for r in rs], 3)} | "
                     f"{_fmt([r['dice_wall'] for r in rs], 3)} | {_fmt([r['hd95_lumen_mm'] for r in rs], 2)} | "
                     f"{_fmt([r['hd95_wall_mm'] for r in rs], 2)} |")
    table = "\n".join(lines)
    minutes = (time.perf_counter() - t_start) / 60
    print("\n" + table + f"\n\n(total {minutes:.1f} min)")
    if args.out:
        atomic_write(args.out / "results.md", lambda fh: fh.write((table + "\n").encode()))
        write_json(args.out / "results.json", {"domain": domain, "generator": gen_desc, "minutes": minutes,
                                               "load_average_at_end": os.getloadavg(),
                                               "args": {k: str(v) for k, v in vars(args).items()},
                                               "results": _finite(results)})


if __name__ == "__main__":
    main()
