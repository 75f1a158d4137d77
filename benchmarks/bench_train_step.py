"""Cost of one training step: optional losses weighted 0 skipped (what the trainer does) vs computed anyway.

The two-stage model returns optional named losses (the own-data texture losses ``s2_texture`` /
``s2_hist``, the calibration losses ``cal_*``); the trainer passes the names its config weights 0,
and a group whose names are all weighted 0 is not computed. This script times ``Trainer.train_step``
on one batch both ways, interleaved (so both see the same machine load), one torch thread.

``--toggle NAME`` instead times the cost of one weighted loss: the config as it is ("on") against
the same step with ``NAME`` skipped ("off"), e.g. ``s2_diversity``, which decodes stage 2 a second
time with other noise.

Usage::

    ivus-sim corpus --n 16 --size 256 --seed 0 --out /tmp/corpus16
    python benchmarks/bench_train_step.py --data /tmp/corpus16 --config cpu_default
    python benchmarks/bench_train_step.py --data /tmp/corpus16 --config cpu_default --toggle s2_diversity
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ivus_sim.training.config import load_train_config
from ivus_sim.training.data import discover, make_dataset
from ivus_sim.training.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="training pairs (e.g. an `ivus-sim corpus` folder)")
    ap.add_argument("--config", default="cpu_default")
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--toggle", default=None, help="time this weighted loss on vs off instead")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_train_config(a.config)
    refs = discover(a.data)[:16]
    ds = make_dataset(refs, (cfg.model.n_angles, cfg.model.n_samples), cfg.data.target,
                      interp=cfg.model.scan_conversion)
    tr = Trainer(cfg, ds, Path(tempfile.mkdtemp()), progress=False)
    skipped = tr.unweighted_losses
    if a.toggle is not None:
        if a.toggle in skipped or tr.weight(a.toggle) == 0:
            raise SystemExit(f"--toggle {a.toggle}: not a weighted loss of config {a.config}")
        sets = {"off": skipped | {a.toggle}, "on": skipped}
    else:
        sets = {"skipped": skipped, "computed": frozenset()}
    m0, m1 = sets
    batch = tr.batch(0, 0)
    tr.train_step(batch)  # warm-up
    times: dict[str, list[float]] = {m0: [], m1: []}
    for rep in range(a.repeats):
        for mode in (m0, m1) if rep % 2 == 0 else (m1, m0):
            tr.unweighted_losses = frozenset(sets[mode])
            t = time.perf_counter()
            tr.train_step(batch)
            times[mode].append(time.perf_counter() - t)
    print(f"{platform.machine()}, torch {torch.__version__}, 1 thread, config {a.config}, "
          f"batch {cfg.train.batch_size}; weighted 0: {', '.join(sorted(skipped)) or '-'}"
          + (f"; toggled: {a.toggle}" if a.toggle else ""))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"  {k:9s} median {v:.3f} s/step  ({', '.join(f'{x:.3f}' for x in times[k])})")
    print(f"  {m1} / {m0}: {med[m1] / med[m0]:.2f}")


if __name__ == "__main__":
    main()
