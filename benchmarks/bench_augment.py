"""Throughput of ``ivus-sim augment``: image/label pairs written per second.

Runs :func:`ivus_sim.augment.run_augment` into a temporary folder for each (engine, format)
combination and reports pairs per second (phantom generation + simulation + label mapping +
atomic writes of image, label and sidecar + manifest), and the rate of the simulation alone
for comparison. Intended for 2 CPU cores (``--workers 2``); pin the cores with ``taskset``
for a clean measurement::

    python benchmarks/bench_augment.py --n 64 --size 256 --workers 2
    python benchmarks/bench_augment.py --engines physics --formats nifti png --json out.json
    python benchmarks/bench_augment.py --n 24 --formats nifti --randomise scanner

``--randomise NAME`` (a named range such as ``scanner``, or a YAML file; see docs/augment.md)
also measures every (engine, format) with that scanner randomisation, side by side with the
plain run: the repeats of the two are interleaved (plain, randomised, plain, ...) into fresh
folders, so both see the same machine load, and the table gives the ratio randomised / plain
of both rates (wall clock and per CPU-second). On a loaded machine report the ratios, not the
absolute rates.

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
from ivus_sim.augment.engine import render_scanner
from ivus_sim.augment.randomise import ScannerRanges, load_ranges, sample_scanner
from ivus_sim.phantom.random import random_phantom


def _engine(name: str) -> EngineSpec:
    return EngineSpec(engine=Engine.PHYSICS, preset="20mhz") if name == "physics" else EngineSpec(Engine.LEARNED)


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the augment workers) [s]."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _sim_only_rate(spec: EngineSpec, size: int, n: int, ranges: ScannerRanges | None = None) -> float:
    """Single-thread images/s of the simulator alone (no I/O, phantoms made beforehand), for reference.

    With ``ranges``: every image through its own randomised scanner, as ``augment --randomise``
    renders it (:func:`ivus_sim.augment.engine.render_scanner`; the physics engine builds one
    engine per image, which is part of the cost).
    """
    torch.set_num_threads(1)
    randomised_physics = ranges is not None and spec.engine is Engine.PHYSICS
    sim = None if randomised_physics else spec.build()
    scanners = [sample_scanner(0, i, ranges) if ranges is not None else None for i in range(n)]
    phantoms = [random_phantom(0, size=size, index=i) if sc is None else
                random_phantom(0, size=size, index=i, fov_mm=float(sc["fov_mm"]),
                               catheter_radius_mm=float(sc["catheter_radius_mm"]))
                for i, sc in enumerate(scanners)]

    def one(i: int) -> None:
        sc, ph = scanners[i], phantoms[i]
        if sc is None:
            assert sim is not None
            sim.generate(ph.labels[0], n=1, seed=i, fov_mm=ph.geometry.fov_mm)
        else:
            render_scanner(spec, sim, sc, ph.labels[0], i, ph.geometry.fov_mm, 0, i)

    one(0)  # warm-up
    t0 = time.perf_counter()
    for i in range(n):
        one(i)
    return n / (time.perf_counter() - t0)


def _one_run(spec: EngineSpec, fmt: ImageFormat, n: int, size: int, workers: int, seed: int,
             ranges: ScannerRanges | None) -> tuple[float, float]:
    """One ``run_augment`` into a fresh folder: ``(pairs/s wall clock, pairs per CPU-second)``."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_augment_"))
    try:
        cfg = AugmentConfig(n=n, out=tmp / "ds", seed=seed, engine=spec, size=size, fmt=fmt,
                            labels_map=LabelMapping.builtin("lumen-wall"), randomise=ranges)
        t0, c0 = time.perf_counter(), _cpu_seconds()
        rep = run_augment(cfg, workers=workers, progress=False)
        dt, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        assert rep.complete and rep.written == n
        return n / dt, n / cpu
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(engine: str, fmt: ImageFormat, n: int, size: int, workers: int, repeats: int,
          randomise: ScannerRanges | None = None) -> list[dict[str, Any]]:
    """The plain run and, with ``randomise``, the randomised one (repeats interleaved): one result each."""
    spec = _engine(engine)
    variants: list[ScannerRanges | None] = [None] if randomise is None else [None, randomise]
    rates: dict[int, list[float]] = {k: [] for k in range(len(variants))}
    per_cpu: dict[int, list[float]] = {k: [] for k in range(len(variants))}
    for r in range(repeats):
        # alternate which variant goes first, so neither always gets the cold (first) slot
        order = list(range(len(variants))) if r % 2 == 0 else list(reversed(range(len(variants))))
        for k in order:
            rate, cpu = _one_run(spec, fmt, n, size, workers, r, variants[k])
            rates[k].append(rate)
            per_cpu[k].append(cpu)
    load = os.getloadavg()
    results = []
    for k, ranges in enumerate(variants):
        results.append({
            "engine": spec.describe(), "format": fmt.value, "randomise": ranges.name if ranges is not None else None,
            "n": n, "size": size, "workers": workers, "repeats": repeats,
            "pairs_per_s": float(np.max(rates[k])), "pairs_per_s_first_run": rates[k][0],
            "pairs_per_s_all": rates[k], "pairs_per_cpu_s": float(np.max(per_cpu[k])),
            "pairs_per_cpu_s_all": per_cpu[k], "load_average": load,
            "sim_only_per_s_1_thread": _sim_only_rate(spec, size, min(n, 16), ranges)})
    if randomise is not None:
        plain, rnd = results
        rnd["ratio_pairs_per_s"] = rnd["pairs_per_s"] / plain["pairs_per_s"]
        rnd["ratio_pairs_per_cpu_s"] = rnd["pairs_per_cpu_s"] / plain["pairs_per_cpu_s"]
        rnd["ratio_sim_only"] = rnd["sim_only_per_s_1_thread"] / plain["sim_only_per_s_1_thread"]
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="pairs per run")
    ap.add_argument("--size", type=int, default=256, help="image side [px]")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (the benchmark target is 2 cores)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=["physics", "learned"], choices=["physics", "learned"])
    ap.add_argument("--formats", nargs="+", default=["nifti", "png"], choices=["nifti", "png"])
    ap.add_argument("--randomise", default=None, metavar="NAME_OR_YAML",
                    help="also measure with this scanner randomisation (e.g. scanner), side by side with the plain"
                         " run, and print the ratio randomised / plain")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args()
    ranges = load_ranges(args.randomise) if args.randomise is not None else None

    results: list[dict[str, Any]] = []
    for engine in args.engines:
        for f in args.formats:
            try:
                results.extend(bench(engine, ImageFormat(f), args.n, args.size, args.workers, args.repeats, ranges))
            except Exception as e:  # e.g. the learned default model is not available in this checkout
                print(f"skipped {engine}/{f}: {type(e).__name__}: {e}")
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.workers} workers, {args.size} px, n={args.n}, best of {args.repeats}\n")
    ratio_cols = " randomised / plain (wall clock) | randomised / plain (per CPU-s) | randomised / plain (sim alone) |"
    print(f"| engine | format | randomise | pairs/s ({args.workers} workers, wall clock) | first run incl. start-up |"
          " pairs per CPU-second | simulator alone, 1 thread | load average |" + (ratio_cols if ranges else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|---|---|" if ranges else ""))
    for r in results:
        row = (f"| {r['engine']} | {r['format']} | {r['randomise'] or '-'} | {r['pairs_per_s']:.1f} |"
               f" {r['pairs_per_s_first_run']:.1f} | {r['pairs_per_cpu_s']:.1f} |"
               f" {r['sim_only_per_s_1_thread']:.1f} img/s | {r['load_average'][0]:.1f} |")
        if ranges:
            row += (f" {r['ratio_pairs_per_s']:.2f} | {r['ratio_pairs_per_cpu_s']:.2f} | {r['ratio_sim_only']:.2f} |"
                    if "ratio_pairs_per_s" in r else " 1 | 1 | 1 |")
        print(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
