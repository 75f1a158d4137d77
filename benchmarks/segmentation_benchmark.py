"""Does ``ivus-sim augment`` help segmentation, and how should synthetic data be mixed in?

A small MONAI U-Net is trained (CPU) for 3 classes, background/perivascular (0), lumen (1) and
vessel wall (2: intima, plaque and media between the lumen border and the EEM; the
``lumen-wall`` label mapping) and tested on several **test domains**. Each domain supplies a
fixed held-out test set and a pool of "real" training frames (nested subsets of ``k`` frames,
``--n-real``). Strategies, all with the same optimiser and augmentation:

* ``real``: the ``k`` real frames only (``--steps`` steps);
* ``mix``: every batch holds ``--synth-share`` synthetic frames, the rest real (``--steps``);
* ``weighted``: as ``mix`` but the synthetic part of the loss weighted by ``--synth-weight``;
* ``finetune``: the synthetic-only model (below) fine-tuned on the ``k`` real frames
  (``--steps-ft`` steps at ``--lr-ft``);
* ``synthetic only``: ``--steps-synth`` steps on the synthetic frames alone (one model per seed,
  tested on every domain; it is also the start of ``finetune``).

Test domains without real data (the default): the stage-0 physics engine with fixed presets and
a phantom seed never used for synthetic data: ``40mhz`` (the shipped 40 MHz preset; its
settings lie inside the randomisation ranges but for its TGC slope, 5 dB/cm below the lowest the
ranges draw at 40 MHz) and the scanners in ``benchmarks/hidden_scanners/``, each outside the
``scanner`` ranges in four to six settings (the files; ``ivus_sim.augment.randomise.settings_outside``
lists them, a test keeps it at least four). **Hidden**:
``hidden_e`` and ``hidden_f``, written in round 3 before any result on them and never used to
choose the generator, the ranges or the recipe. ``hidden_g`` (a 15 MHz broadband catheter with a 30 dB
display) was written in session 21 before any result on it: with the larger segmenter of round 4
(``--channels 16 32 64 128``), E turned into a development scanner (its in-domain ceiling chose the
segmenter), so F and G were the hidden ones. ``--ranges benchmarks/ranges/wide.yaml`` (round 5)
draws the synthetic data from wider ranges chosen to cover E and G (development scanners for them);
its hidden scanners are ``hidden_h`` and ``hidden_i``, written before any result. Round 6 tried
``--normalise histeq`` (per-frame histogram equalisation of the segmenter's input), chosen on E, G
and I (I is a development scanner from then on), with new hidden scanners ``hidden_j`` and
``hidden_k`` written before any result; it was not kept (the default stays ``zscore``). Results of
every round: ``benchmarks/RESULTS.md``. **Development**: ``hidden_a`` / ``hidden_b``
(looked at while choosing the ranges and the training augmentation) and ``hidden_c`` /
``hidden_d`` (hidden in round 2; in round 3 the synthetic-only arm was lengthened, 1,000 frames
and 8,000 steps, after looking at them). The hidden scanners use the tissue table they were written
with (``hidden_scanners/hidden_tissues.yaml``, frozen on 2026-12-02), so a recalibration of the shipped
table does not move them; the shipped-preset domains follow the shipped table.
Synthetic data: ``ivus-sim augment --engine physics --randomise scanner`` (``--generator``;
``learned`` uses the learned default model with the same randomisation, ``physics20`` the fixed
20 MHz preset). All test domains share the random-phantom generator (the anatomy is
in-distribution; the scanner is what shifts).

``--real DIR`` replaces the simulated domains with real data: pairs ``<case>_image.png`` /
``<case>_label.png`` (labels 0 background, 1 lumen, 2 wall); after a seeded shuffle the last
``max(--n-real)`` cases are the training pool and the rest the test set.

Metrics: Dice (:class:`monai.metrics.DiceMetric`) and HD95
(:class:`monai.metrics.HausdorffDistanceMetric`, mm) of lumen and wall, mean +- std over
``--seeds`` training seeds. The synthetic-only (pre-trained) models are cached in ``--work``
(``pretrained/``, keyed by everything that makes them), so a second call with other real-data
strategies or lengths reuses them. Costs: ``benchmarks/RESULTS.md``::

    nice -n 10 python benchmarks/segmentation_benchmark.py --out benchmarks/results/segmentation
    python benchmarks/segmentation_benchmark.py --real /data/ivus_pairs --n-real 4 12
"""

from __future__ import annotations

import argparse
import hashlib
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
REAL_SEED = 90210  # phantom/image seed of the test domains (never used to make synthetic data)
SYNTH_SEED = 1
#: bump when train() / the augmentation changes what a pre-trained model is (invalidates cached ones)
RECIPE_VERSION = 1
HIDDEN = Path(__file__).resolve().parent / "hidden_scanners"
DOMAINS = {"40mhz": "40mhz", "20mhz": "20mhz",
           **{f"hidden_{c}": str(HIDDEN / f"hidden_{c}.yaml") for c in "abcdefghijk"}}
#: the hidden scanners' tissue table, frozen (the shipped-preset domains 20mhz / 40mhz follow the shipped table)
HIDDEN_TISSUES = HIDDEN / "hidden_tissues.yaml"


def domain_spec(domain: str) -> EngineSpec:
    """The physics engine that makes a test domain's frames."""
    return EngineSpec(engine=Engine.PHYSICS, preset=DOMAINS[domain],
                      tissues=HIDDEN_TISSUES if domain.startswith("hidden") else None)


@dataclass
class Split:
    """Images ``(n, 1, H, W)`` float32 in [0, 1] and labels ``(n, 1, H, W)`` int64.

    Networks see every image z-scored (after the training augmentation, :func:`_draw`).
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])


# --------------------------------------------------------------------------------------- data
def _normalise(img: np.ndarray) -> np.ndarray:
    """8-bit grey -> [0, 1]."""
    return np.asarray(img, dtype=np.float32) / 255.0


def _zscore(x: torch.Tensor) -> torch.Tensor:
    """Per-image z-score of ``(B, 1, H, W)``."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) / (x.std(dim=(1, 2, 3), keepdim=True) + 1e-6)


def _histeq(x: torch.Tensor) -> torch.Tensor:
    """Per-image histogram equalisation of ``(B, 1, H, W)`` grey levels in [0, 1] (256 levels).

    Each pixel becomes the mid-rank of its grey level within its own image, ``(F(v-) + F(v)) / 2``
    with ``F`` the image's cumulative histogram: ties (the black outside the field of view) share
    one value, and any monotonic grey-level map of the input (a gain, dynamic range or gamma of
    the display, as long as it clips nothing) gives the same output. MONAI's
    ``HistogramNormalize`` is the transform a MONAI pipeline would use for the same purpose.
    """
    b = x.shape[0]
    q = (x.clamp(0, 1) * 255).round().long().reshape(b, -1)
    counts = torch.bincount((q + 256 * torch.arange(b)[:, None]).reshape(-1), minlength=256 * b)
    counts = counts.reshape(b, 256).to(torch.float32)
    cdf = counts.cumsum(1)
    mid = (cdf - counts / 2) / q.shape[1]
    return torch.gather(mid, 1, q).reshape(x.shape)


def _prepare(x: torch.Tensor, normalise: str) -> torch.Tensor:
    """The network input of ``(B, 1, H, W)`` images in [0, 1]: ``zscore`` (per image) or
    ``histeq`` (per-image histogram equalisation, then the z-score)."""
    if normalise == "histeq":
        x = _histeq(x)
    elif normalise != "zscore":
        raise IvusSimError(f"--normalise {normalise!r}: expected zscore or histeq")
    return _zscore(x)


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


def _augment(out: Path, n: int, seed: int, spec: EngineSpec, gen_size: int, size: int, workers: int,
             randomise: Any = None) -> Split:
    """Write ``n`` pairs with ``ivus_sim.augment`` at ``gen_size`` px and load them at ``size`` px."""
    cfg = AugmentConfig(n=n, out=out, seed=seed, engine=spec, size=gen_size, fmt=ImageFormat.PNG,
                        labels_map=LabelMapping.builtin("lumen-wall"), randomise=randomise)
    t0 = time.perf_counter()
    rep = run_augment(cfg, workers=workers, progress=False)
    what = spec.describe() + (f", --randomise {randomise.name}" if randomise is not None else "")
    print(f"  {what}: {rep.written} new + {rep.existing} existing pairs in {time.perf_counter() - t0:.0f} s")
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
        if img.max() <= 1.0:  # already in [0, 1]
            img = img * 255.0
        lab = np.asarray(rs_lab(torch.from_numpy(lab[None].astype(np.float32))))[0]
        imgs.append(_normalise(img))
        labs.append(np.rint(lab).astype(np.int64))
    return Split(torch.from_numpy(np.stack(imgs))[:, None], torch.from_numpy(np.stack(labs))[:, None])


def _subset(s: Split, idx: np.ndarray | range) -> Split:
    i = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    return Split(s.images[i], s.labels[i])


# ------------------------------------------------------------------------------- training
def _unet(channels: tuple[int, ...]) -> torch.nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=3, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=1)


def _intensity(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Generic grey-level augmentation of one ``(1, H, W)`` image in [0, 1] (all strategies alike):
    gamma ``exp(U(-0.5, 0.5))``, and with probability 0.3 each a Gaussian blur (sigma 0.5-1.2 px)
    and additive noise (sd 0-0.05)."""
    u = torch.rand(5, generator=g)
    x = x.clamp(0, 1) ** float(torch.exp(u[0] - 0.5))
    if u[1] < 0.3:
        sigma = 0.5 + 0.7 * float(u[2])
        r = torch.arange(-2, 3, dtype=torch.float32)
        k = torch.exp(-r**2 / (2 * sigma**2))
        k = k / k.sum()
        x = torch.nn.functional.conv2d(x[None], k.view(1, 1, 1, 5), padding=(0, 2))
        x = torch.nn.functional.conv2d(x, k.view(1, 1, 5, 1), padding=(2, 0))[0]
    if u[3] < 0.3:
        x = x + 0.05 * float(u[4]) * torch.randn(x.shape, generator=g)
    return x


def _draw(s: Split, n: int, g: torch.Generator, normalise: str = "zscore") -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random frames of ``s``: random 90-degree rotations and flips, grey-level augmentation,
    then :func:`_prepare` (``normalise``)."""
    xs, ys = [], []
    for _ in range(n):
        i = int(torch.randint(len(s), (1,), generator=g))
        x, y = _intensity(s.images[i], g), s.labels[i]
        r = int(torch.randint(4, (1,), generator=g))
        x, y = torch.rot90(x, r, (1, 2)), torch.rot90(y, r, (1, 2))
        if bool(torch.randint(2, (1,), generator=g)):
            x, y = x.flip(2), y.flip(2)
        xs.append(x)
        ys.append(y)
    return _prepare(torch.stack(xs), normalise), torch.stack(ys)


@dataclass(frozen=True)
class Recipe:
    """How one model is trained: ``share`` of each batch synthetic, its loss weighted by ``weight``."""

    steps: int
    lr: float
    share: float = 0.0  # 0: real only; 1: synthetic only
    weight: float = 1.0
    init: str | None = None  # "pretrain": start from the seed's synthetic-only model


def train(real: Split | None, synth: Split | None, recipe: Recipe, batch: int, seed: int,
          channels: tuple[int, ...], init_state: dict[str, torch.Tensor] | None = None,
          normalise: str = "zscore") -> torch.nn.Module:
    from monai.losses import DiceCELoss

    seed_everything(seed)
    net = _unet(channels)
    if init_state is not None:
        net.load_state_dict(init_state)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.steps)
    g = torch_generator(seed, "segbench-batches")
    n_syn = batch if real is None else (round(recipe.share * batch) if synth is not None else 0)
    n_real = batch - n_syn
    net.train()
    for _ in range(recipe.steps):
        parts = []
        if n_real:
            assert real is not None
            parts.append(_draw(real, n_real, g, normalise))
        if n_syn:
            assert synth is not None
            parts.append(_draw(synth, n_syn, g, normalise))
        x = torch.cat([p[0] for p in parts])
        y = torch.cat([p[1] for p in parts])
        opt.zero_grad()
        out = net(x)
        if n_real and n_syn and recipe.weight != 1.0:
            loss = (loss_fn(out[:n_real], y[:n_real]) * n_real + recipe.weight * n_syn
                    * loss_fn(out[n_real:], y[n_real:])) / (n_real + recipe.weight * n_syn)
        else:
            loss = loss_fn(out, y)
        loss.backward()
        opt.step()
        sched.step()
    return net


@torch.no_grad()
def evaluate(net: torch.nn.Module, test: Split, pixel_mm: float, normalise: str = "zscore") -> dict[str, float]:
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    net.eval()
    dice = DiceMetric(include_background=False, reduction="mean_batch")
    hd = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="mean_batch", get_not_nans=True)
    for i in range(0, len(test), 16):
        x, y = _prepare(test.images[i:i + 16], normalise), test.labels[i:i + 16]
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


# set before the pools fork (shared copy-on-write with the workers)
_REAL: dict[str, Split] = {}  # domain -> training pool (nested subsets: the first k)
_TEST: dict[str, Split] = {}
_SYNTH: list[Split] = []
_CFG: dict[str, Any] = {}

Job = tuple[str, str, int, str, int]  # (arm kind, domain, k, strategy, seed)


def _run_one(job: tuple[Job, Recipe, dict[str, torch.Tensor] | None]
             ) -> tuple[Job, dict[str, dict[str, float]], float, dict[str, torch.Tensor] | None]:
    (kind, domain, k, _, seed), recipe, init = job
    torch.set_num_threads(_CFG["threads"])
    t0 = time.process_time()  # CPU seconds of this training (the machine is shared)
    synth = _SYNTH[0] if _SYNTH else None
    if kind == "synthetic":
        net = train(None, synth, recipe, _CFG["batch"], seed, _CFG["channels"], normalise=_CFG["normalise"])
        metrics = {d: evaluate(net, t, _CFG["pixel_mm"], _CFG["normalise"]) for d, t in _TEST.items()}
        state = {n: v.detach().clone() for n, v in net.state_dict().items()}
        return job[0], metrics, time.process_time() - t0, state
    real = _subset(_REAL[domain], range(k))
    net = train(real, synth if recipe.share > 0 else None, recipe, _CFG["batch"], seed, _CFG["channels"], init,
                _CFG["normalise"])
    return (job[0], {domain: evaluate(net, _TEST[domain], _CFG["pixel_mm"], _CFG["normalise"])},
            time.process_time() - t0, None)


def _save_state(path: Path, state: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: torch.save(state, fh))


# ------------------------------------------------------------------------------------ main
def _synth_spec(name: str, ranges: str = "scanner") -> tuple[EngineSpec, Any, str]:
    from ivus_sim.augment.randomise import load_ranges

    scanner = load_ranges(ranges)
    what = f"--randomise {ranges if scanner.name == ranges else f'{ranges} ({scanner.name})'}"
    if name == "physics":
        return EngineSpec(engine=Engine.PHYSICS), scanner, f"physics engine, {what}"
    if name == "learned":
        return EngineSpec(engine=Engine.LEARNED), scanner, f"learned default model, {what}"
    if name == "physics20":
        return EngineSpec(engine=Engine.PHYSICS, preset="20mhz"), None, "physics engine, fixed 20 MHz preset"
    raise IvusSimError(f"--generator {name!r}: expected physics, learned or physics20")


def _finite(v: dict[str, float]) -> dict[str, float | None]:
    return {k: (x if math.isfinite(x) else None) for k, x in v.items()}


def _stats(vals: list[float]) -> tuple[float, float]:
    v = np.asarray(vals, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _fmt(vals: list[float], digits: int) -> str:
    m, s = _stats(vals)
    return "n/a" if not math.isfinite(m) else f"{m:.{digits}f} ± {s:.{digits}f}"


STRATEGY_LABEL = {"real": "real only", "mix": "real + synthetic, {share:.0%} of each batch",
                  "weighted": "real + synthetic, {share:.0%} of each batch, synthetic loss x{weight:g}",
                  "finetune": "synthetic pre-training, then fine-tuning on real", "synthetic": "synthetic only"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=96, help="image side [px]")
    ap.add_argument("--domains", nargs="+", default=["40mhz", "hidden_c", "hidden_d"], choices=sorted(DOMAINS),
                    help="simulated test domains (ignored with --real)")
    ap.add_argument("--n-real", type=int, nargs="+", default=[4, 12, 24], help="real training set sizes")
    ap.add_argument("--n-test", type=int, default=32, help="test images per simulated domain")
    ap.add_argument("--n-synth", type=int, default=1000, help="synthetic images from augment")
    ap.add_argument("--generator", default="physics", choices=["physics", "learned", "physics20"])
    ap.add_argument("--ranges", default="scanner",
                    help="scanner randomisation of the synthetic data: a named range or a YAML (benchmarks/ranges/)")
    ap.add_argument("--strategies", nargs="+", default=["real", "mix", "finetune", "weighted"],
                    choices=["real", "mix", "finetune", "weighted"])
    ap.add_argument("--weighted-k", type=int, nargs="*", default=[4],
                    help="run the 'weighted' strategy only at these k (CPU budget)")
    ap.add_argument("--steps", type=int, default=200, help="steps of real / mix / weighted runs")
    ap.add_argument("--steps-synth", type=int, default=8000,
                    help="steps of the synthetic-only (pre-training) run; 0: no synthetic-only arm (no finetune)")
    ap.add_argument("--steps-ft", type=int, default=100, help="fine-tuning steps")
    ap.add_argument("--synth-share", type=float, default=0.5)
    ap.add_argument("--synth-weight", type=float, default=0.3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-ft", type=float, default=5e-4)
    ap.add_argument("--normalise", default="zscore", choices=["zscore", "histeq"],
                    help="network input of every frame (train and test): per-image z-score, or per-image histogram "
                         "equalisation then z-score")
    ap.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32, 64], help="U-Net channels")
    ap.add_argument("--seeds", type=int, default=2, help="training seeds per arm")
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
    size = args.size
    n_pool = max(args.n_real)
    spec, randomise, gen_desc = _synth_spec(args.generator, args.ranges)
    if randomise is None and args.ranges != "scanner":
        raise IvusSimError(f"--ranges {args.ranges}: --generator {args.generator} does not randomise")
    print("generating data ...")
    domains: dict[str, str] = {}
    if args.real is None:
        for d in args.domains:
            data = _augment(work / f"test_{d}_{size}", args.n_test + n_pool, REAL_SEED,
                            domain_spec(d), size, size, args.workers)
            _TEST[d] = _subset(data, range(args.n_test))
            _REAL[d] = _subset(data, range(args.n_test, args.n_test + n_pool))
            domains[d] = (f"physics engine, preset {Path(DOMAINS[d]).name}, phantom seed {REAL_SEED}"
                          + (" (hidden scanner)" if d.startswith("hidden") else ""))
    else:
        data = _load_pairs(args.real, size)
        if len(data) <= n_pool:
            raise IvusSimError(f"--real: {len(data)} pairs; need more than --n-real {n_pool} to leave a test set")
        order = np.random.default_rng(0).permutation(len(data))
        _TEST["real"] = _subset(data, order[: len(data) - n_pool])
        _REAL["real"] = _subset(data, order[len(data) - n_pool:])
        domains["real"] = f"real data from {args.real} ({len(_TEST['real'])} test images)"
    tag = args.generator if args.ranges == "scanner" else f"{args.generator}_{randomise.name}"
    _SYNTH.append(_augment(work / f"synth_{tag}_{size}", args.n_synth, SYNTH_SEED, spec, size, size, args.workers,
                           randomise))
    _CFG.update(threads=args.threads, batch=args.batch, channels=tuple(args.channels), pixel_mm=10.0 / size,
                normalise=args.normalise)
    t_data = time.perf_counter() - t_start

    rec = {"real": Recipe(args.steps, args.lr), "mix": Recipe(args.steps, args.lr, args.synth_share),
           "weighted": Recipe(args.steps, args.lr, args.synth_share, args.synth_weight),
           "finetune": Recipe(args.steps_ft, args.lr_ft, 0.0, 1.0, "pretrain")}
    synth_recipe = Recipe(args.steps_synth, args.lr, 1.0)
    if args.steps_synth == 0 and "finetune" in args.strategies:
        raise IvusSimError("--steps-synth 0 leaves no synthetic-only model to fine-tune; drop finetune")
    # synthetic-only (pre-trained) models are cached in --work: a later call with other real-data
    # strategies or lengths reuses them instead of training them again
    cache_key = hashlib.sha256(json.dumps(
        {"generator": args.generator, **({"ranges": randomise.to_dict()} if args.ranges != "scanner" else {}),
         "n_synth": args.n_synth, "size": size, "steps": args.steps_synth,
         "lr": args.lr, "batch": args.batch, "channels": list(args.channels), "synth_seed": SYNTH_SEED,
         "recipe_version": RECIPE_VERSION,
         **({"normalise": args.normalise} if args.normalise != "zscore" else {})},
        sort_keys=True).encode()).hexdigest()[:16]

    def cache_path(seed: int) -> Path:
        return work / "pretrained" / f"{cache_key}_seed{seed}.pt"

    results: dict[Job, dict[str, dict[str, float]]] = {}
    pre: dict[int, dict[str, torch.Tensor]] = {}
    phase1: list[tuple[Job, Recipe, None]] = []
    for s in range(args.seeds) if args.steps_synth > 0 else ():
        job_s: Job = ("synthetic", "*", 0, "synthetic", s)
        if cache_path(s).exists():
            pre[s] = torch.load(cache_path(s), weights_only=True)
            net = _unet(tuple(args.channels))
            net.load_state_dict(pre[s])
            results[job_s] = {d: evaluate(net, t, _CFG["pixel_mm"], args.normalise) for d, t in _TEST.items()}
            print(f"  {job_s}: pre-trained model from {cache_path(s)}")
        else:
            phase1.append((job_s, synth_recipe, None))
    phase2: list[Job] = []
    for s in range(args.seeds):
        for d in _TEST:
            for k in sorted(set(args.n_real)):
                for st in args.strategies:
                    if st == "weighted" and args.weighted_k and k not in args.weighted_k:
                        continue
                    if st == "finetune":
                        phase2.append(("run", d, k, st, s))
                    else:
                        phase1.append((("run", d, k, st, s), rec[st], None))
    seconds: dict[str, float] = {}
    print(f"training {len(phase1) + len(phase2)} U-Nets ({args.jobs} at a time, {args.threads} thread(s) each) ...")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.jobs) as pool:
        for job, m, sec, state in pool.imap_unordered(_run_one, phase1):
            results[job] = m
            seconds[job[3]] = seconds.get(job[3], 0.0) + sec
            if state is not None:
                pre[job[4]] = state
                _save_state(cache_path(job[4]), state)
            print(f"  {job}: " + "; ".join(f"{d} lumen {v['dice_lumen']:.3f} wall {v['dice_wall']:.3f}"
                                           for d, v in m.items()) + f" ({sec:.0f} s)", flush=True)
        ft_jobs = [(j, rec["finetune"], pre[j[4]]) for j in phase2]
        for job, m, sec, _ in pool.imap_unordered(_run_one, ft_jobs):
            results[job] = m
            seconds[job[3]] = seconds.get(job[3], 0.0) + sec
            print(f"  {job}: " + "; ".join(f"{d} lumen {v['dice_lumen']:.3f} wall {v['dice_wall']:.3f}"
                                           for d, v in m.items()) + f" ({sec:.0f} s)", flush=True)

    # ---- tables
    def per_seed(d: str, k: int, st: str) -> list[dict[str, float]]:
        if st == "synthetic":
            return [results[("synthetic", "*", 0, "synthetic", s)][d] for s in range(args.seeds)
                    if ("synthetic", "*", 0, "synthetic", s) in results]
        return [results[("run", d, k, st, s)][d] for s in range(args.seeds) if ("run", d, k, st, s) in results]

    label = {st: STRATEGY_LABEL[st].format(share=args.synth_share, weight=args.synth_weight)
             for st in STRATEGY_LABEL}
    norm = "per-image histogram equalisation, then z-score" if args.normalise == "histeq" else "per-image z-score"
    lines = [f"Synthetic data: {args.n_synth} frames, {gen_desc}, seed {SYNTH_SEED}. MONAI UNet "
             f"({'-'.join(map(str, args.channels))}), batch {args.batch}, DiceCE, Adam; real/mix/weighted "
             f"{args.steps} steps at {args.lr:g}, synthetic-only {args.steps_synth} steps, fine-tuning "
             f"{args.steps_ft} steps at {args.lr_ft:g}; rotations, flips and grey-level augmentation (gamma, blur, "
             f"noise) for every strategy; input: {norm}; {size} px ({10.0 / size:.3f} mm/px); mean ± std over "
             f"{args.seeds} training seeds.", ""]
    summary = ["| test domain | k real | best strategy | Dice lumen (real only -> best) | "
               "Dice wall (real only -> best) | never worse (within 1 SD) |", "|---|---|---|---|---|---|"]
    out_json: dict[str, Any] = {}
    for d, desc in domains.items():
        lines += [f"**{d}** ({desc}; {len(_TEST[d])} test images)", "",
                  "| k real | strategy | Dice lumen | Dice wall | HD95 lumen [mm] | HD95 wall [mm] |",
                  "|---|---|---|---|---|---|"]
        rows = [(0, "synthetic")] + [(k, st) for k in sorted(set(args.n_real)) for st in args.strategies]
        out_json[d] = {}
        for k, st in rows:
            rs = per_seed(d, k, st)
            if not rs:
                continue
            out_json[d][f"{k}:{st}"] = [_finite(r) for r in rs]
            lines.append(f"| {k if st != 'synthetic' else 0} | {label[st]} | "
                         f"{_fmt([r['dice_lumen'] for r in rs], 3)} | {_fmt([r['dice_wall'] for r in rs], 3)} | "
                         f"{_fmt([r['hd95_lumen_mm'] for r in rs], 2)} | {_fmt([r['hd95_wall_mm'] for r in rs], 2)} |")
        lines.append("")
        for k in sorted(set(args.n_real)):
            base = per_seed(d, k, "real")
            if not base:
                continue
            cands = [st for st in args.strategies if st != "real" and per_seed(d, k, st)]
            if not cands:
                continue

            def score(st: str, k: int = k, d: str = d) -> float:
                rs = per_seed(d, k, st)
                return _stats([r["dice_lumen"] for r in rs])[0] + _stats([r["dice_wall"] for r in rs])[0]

            best = max(cands, key=score)
            bl, bw = (_stats([r[c] for r in base]) for c in ("dice_lumen", "dice_wall"))
            sl, sw = (_stats([r[c] for r in per_seed(d, k, best)]) for c in ("dice_lumen", "dice_wall"))
            ok = all(s[0] >= b[0] - max(b[1], s[1]) for s, b in ((sl, bl), (sw, bw)))
            summary.append(f"| {d} | {k} | {best} | {bl[0]:.3f} -> {sl[0]:.3f} | {bw[0]:.3f} -> {sw[0]:.3f} | "
                           f"{'yes' if ok else 'no'} |")
    minutes = (time.perf_counter() - t_start) / 60
    cpu = {st: round(v / 60, 2) for st, v in seconds.items()}
    table = "\n".join(lines + summary)
    print("\n" + table + f"\n\n(total {minutes:.1f} min wall; data {t_data / 60:.1f} min; "
          f"training CPU-minutes by strategy {cpu})")
    if args.out:
        atomic_write(args.out / "results.md", lambda fh: fh.write((table + "\n").encode()))
        write_json(args.out / "results.json", {"domains": domains, "generator": gen_desc,
                                               "ranges": randomise.to_dict() if randomise is not None else None,
                                               "minutes": minutes,
                                               "data_minutes": t_data / 60, "training_cpu_minutes": cpu,
                                               "load_average_at_end": os.getloadavg(),
                                               "args": {k: str(v) for k, v in vars(args).items()},
                                               "results": out_json})


if __name__ == "__main__":
    main()
