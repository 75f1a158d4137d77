"""Throughput of ``ivus-sim augment``: image/label pairs written per second.

Runs :func:`ivus_sim.augment.run_augment` into a temporary folder for each (engine, format)
combination and reports pairs per second (phantom generation + simulation + label mapping +
atomic writes of image, label and sidecar + manifest), and the rate of the simulation alone
for comparison. Intended for 2 CPU cores (``--workers 2``); pin the cores with ``taskset``
for a clean measurement::

    python benchmarks/bench_augment.py --n 64 --size 256 --workers 2
    python benchmarks/bench_augment.py --engines physics --formats nifti png --json out.json

Each measurement is the best of ``--repeats`` runs into fresh folders (the first includes
worker start-up, which a long run amortises; it is reported separately). On a shared machine
the wall-clock rate depends on the load; *pairs per CPU-second* (CPU time of the parent and the
workers) is the rate of one uncontended core, so ``2 x`` that is what 2 idle cores give.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ivus_sim.augment import AugmentConfig, Engine, EngineSpec, ImageFormat, LabelMapping, run_augment
from ivus_sim.phantom.random import random_phantom


def _engine(name: str) -> EngineSpec:
    return EngineSpec(engine=Engine.PHYSICS, preset="20mhz") if name == "physics" else EngineSpec(Engine.LEARNED)


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the augment workers) [s]."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _sim_only_rate(spec: EngineSpec, size: int, n: int) -> float:
    """Single-thread images/s of the simulator alone (no phantom, no I/O), for reference."""
    torch.set_num_threads(1)
    sim = spec.build()
    labels = [random_phantom(0, size=size, index=i).labels[0] for i in range(n)]
    sim.generate(labels[0], n=1, seed=0)  # warm-up
    t0 = time.perf_counter()
    for i, lab in enumerate(labels):
        sim.generate(lab, n=1, seed=i)
    return n / (time.perf_counter() - t0)


def bench(engine: str, fmt: ImageFormat, n: int, size: int, workers: int, repeats: int) -> dict[str, Any]:
    spec = _engine(engine)
    rates, per_cpu, first = [], [], 0.0
    for r in range(repeats):
        tmp = Path(tempfile.mkdtemp(prefix="bench_augment_"))
        try:
            cfg = AugmentConfig(n=n, out=tmp / "ds", seed=r, engine=spec, size=size, fmt=fmt,
                                labels_map=LabelMapping.builtin("lumen-wall"))
            t0, c0 = time.perf_counter(), _cpu_seconds()
            rep = run_augment(cfg, workers=workers, progress=False)
            dt, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            assert rep.complete and rep.written == n
            rates.append(n / dt)
            per_cpu.append(n / cpu)
            if r == 0:
                first = n / dt
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"engine": spec.describe(), "format": fmt.value, "n": n, "size": size, "workers": workers,
            "pairs_per_s": float(np.max(rates)), "pairs_per_s_first_run": first,
            "pairs_per_cpu_s": float(np.max(per_cpu)), "load_average": os.getloadavg(),
            "sim_only_per_s_1_thread": _sim_only_rate(spec, size, min(n, 16))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="pairs per run")
    ap.add_argument("--size", type=int, default=256, help="image side [px]")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (the benchmark target is 2 cores)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=["physics", "learned"], choices=["physics", "learned"])
    ap.add_argument("--formats", nargs="+", default=["nifti", "png"], choices=["nifti", "png"])
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args()

    results = []
    for engine in args.engines:
        for f in args.formats:
            try:
                results.append(bench(engine, ImageFormat(f), args.n, args.size, args.workers, args.repeats))
            except Exception as e:  # e.g. the learned default model is not available in this checkout
                print(f"skipped {engine}/{f}: {type(e).__name__}: {e}")
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.workers} workers, {args.size} px, n={args.n}\n")
    print(f"| engine | format | pairs/s ({args.workers} workers, wall clock) | first run incl. start-up |"
          " pairs per CPU-second | simulator alone, 1 thread | load average |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['engine']} | {r['format']} | {r['pairs_per_s']:.1f} | {r['pairs_per_s_first_run']:.1f} |"
              f" {r['pairs_per_cpu_s']:.1f} | {r['sim_only_per_s_1_thread']:.1f} img/s |"
              f" {r['load_average'][0]:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
