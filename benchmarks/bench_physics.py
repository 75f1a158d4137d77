"""Benchmark of the stage-0 physics engine (not a timed test).

Measures, on random phantoms:

* batch throughput for 256 x 256 and 512 x 512 output on the CPU (and on CUDA when available);
* peak resident memory of one 512 x 512 simulation (fresh subprocess, ``ru_maxrss``, minus the
  same process's footprint after imports);
* side by side, a physics reference - PyMUST's SIMUS (``pip install pymust``) - on the same
  phantom: a few small scatterer counts are timed, the time per scatterer is fitted
  (``t = a + b n``) and extrapolated to the scatterer count of fully developed speckle over the
  same 10 mm field, for one plane-wave transmit (a focused 512-line image would need 512 transmits).

    python benchmarks/bench_physics.py [--quick] [--pymust-scatterers 200,500] [--no-pymust]

Prints a Markdown summary to paste into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch

from ivus_sim.phantom.random import random_phantom
from ivus_sim.physics import PhysicsSimulator


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def throughput(sim: PhysicsSimulator, size: int, batch: int, repeats: int, device: str) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU-second of this process)."""
    labels = np.concatenate([random_phantom(0, size=size, index=i).labels for i in range(batch)])
    sim.simulate(labels[:2], seed=0)  # warm-up (FFT plans, grids)
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for r in range(repeats):
        sim.simulate(labels, seed=r)
    if device == "cuda":
        torch.cuda.synchronize()
    n = batch * repeats
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def _worker(size: int, batch: int, repeats: int, barrier: Any, out: Any) -> None:
    torch.set_num_threads(1)
    sim = PhysicsSimulator()
    labels = np.concatenate([random_phantom(0, size=size, index=i).labels for i in range(batch)])
    sim.simulate(labels[:2], seed=0)  # warm-up
    barrier.wait()
    t0 = time.perf_counter()
    for r in range(repeats):
        sim.simulate(labels, seed=r)
    out.put((t0, time.perf_counter()))


def parallel_throughput(size: int, batch: int, repeats: int, workers: int) -> float:
    """Images per wall-clock second of ``workers`` single-thread processes simulating at once."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(size, batch, repeats, barrier, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    spans = [out.get() for _ in procs]
    for p in procs:
        p.join()
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    return workers * batch * repeats / (end - start)


_MEM_SCRIPT = """
import json
import numpy as np, torch
from ivus_sim.phantom.random import random_phantom
from ivus_sim.physics import PhysicsSimulator
torch.set_num_threads({threads})

def hwm_mb():
    f = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return int(f["VmHWM"].split()[0]) / 1024, int(f["VmRSS"].split()[0]) / 1024

lab = random_phantom(0, size={size}).labels
sim = PhysicsSimulator()
base_hwm, base_rss = hwm_mb()
sim.simulate(lab, seed=0)
peak, _ = hwm_mb()
print(json.dumps({{"base_rss_mb": base_rss, "base_hwm_mb": base_hwm, "peak_mb": peak}}))
"""


def peak_memory_mb(size: int, threads: int) -> dict[str, float]:
    """Peak RSS (VmHWM) of one simulation in a fresh process, and its increase over the process before it."""
    out = subprocess.run([sys.executable, "-c", _MEM_SCRIPT.format(size=size, threads=threads)],
                         capture_output=True, text=True, check=True).stdout
    d = json.loads(out.strip().splitlines()[-1])
    return {"peak_rss_mb": d["peak_mb"], "increase_mb": d["peak_mb"] - max(d["base_hwm_mb"], d["base_rss_mb"])}


def pymust_reference(counts: list[int], fov_mm: float = 10.0) -> dict[str, Any] | None:
    """Time SIMUS on scatterers drawn from the same phantom; extrapolate to fully developed speckle."""
    try:
        import pymust
    except ImportError:
        return None
    sim = PhysicsSimulator()
    ph = random_phantom(0, size=256)
    lab = ph.labels[0]
    n = lab.shape[0]
    bsc = sim.table.backscatter.cpu().numpy()
    param = pymust.getparam("L11-5v")  # 128 elements; retuned to a 20 MHz array (pitch ~ 1.3 wavelengths)
    param.fc = 20e6
    param.kerf = 0.01e-3
    param.width = 0.09e-3
    param.pitch = 0.1e-3
    rng = np.random.default_rng(0)
    times: list[float] = []
    walls: list[float] = []
    for c in counts:
        iy, ix = rng.integers(0, n, (2, c))
        xs = (ix / n - 0.5) * fov_mm * 1e-3
        zs = (iy / n) * fov_mm * 1e-3 + 1e-3
        rc = np.sqrt(bsc[lab[iy, ix]]) * rng.standard_normal(c)
        txdel = pymust.txdelay(param, 0)
        t0, c0 = time.perf_counter(), time.process_time()
        pymust.simus(xs, zs, rc, txdel, param)
        walls.append(time.perf_counter() - t0)
        times.append(time.process_time() - c0)  # CPU seconds: robust to other load on the machine
    b, a = np.polyfit(counts, times, 1) if len(counts) > 1 else (times[0] / counts[0], 0.0)
    if a < 0:  # noisy timings: fall back to a line through the origin
        b, a = float(np.dot(counts, times) / np.dot(counts, counts)), 0.0
    # fully developed speckle: >= 10 scatterers per resolution cell (~0.1 mm x 0.3 mm at 20 MHz)
    needed = int(fov_mm**2 / (0.1 * 0.3) * 10)
    return {"counts": counts, "seconds": times, "wall_seconds": walls, "per_scatterer_s": float(b),
            "overhead_s": float(a),
            "speckle_scatterers": needed, "extrapolated_s": float(a + b * needed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--pymust-scatterers", default="200,500", help="SIMUS scatterer counts to time")
    ap.add_argument("--no-pymust", action="store_true", help="skip the SIMUS reference")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="also time this many single-thread worker processes at once (default: all cores)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    reps = 1 if a.quick else 3
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPU cores visible, torch threads {threads}, "
          f"torch {torch.__version__}, python {platform.python_version()}, load average {load:.1f}")
    rows: list[tuple[str, str, int, float, float, int | None]] = []
    sim = PhysicsSimulator()
    t256 = throughput(sim, 256, 16, reps, "cpu")
    rows.append(("CPU", "256 x 256", 16, *t256, 50))
    t512 = throughput(sim, 512, 8, reps, "cpu")
    rows.append(("CPU", "512 x 512", 8, *t512, 10))
    if torch.cuda.is_available():
        gsim = PhysicsSimulator(device="cuda")
        name = f"CUDA ({torch.cuda.get_device_name(0)})"
        rows.append((name, "256 x 256", 64, *throughput(gsim, 256, 64, reps, "cuda"), None))
        rows.append((name, "512 x 512", 32, *throughput(gsim, 512, 32, reps, "cuda"), None))
    par = {size: parallel_throughput(size, batch, 2 * reps, a.workers) for size, batch in ((256, 16), (512, 8))}
    mem = peak_memory_mb(512, threads)
    print("\n| device | output | batch | images/s (wall clock) | images per CPU-second | target (2 cores) |"
          "\n|---|---|---|---|---|---|")
    for dev, size, batch, ips, ipc, target in rows:
        tgt = f">= {target}" if target else "-"
        print(f"| {dev} | {size} | {batch} | {ips:.1f} | {ipc:.1f} | {tgt} |")
    print("\n(images per CPU-second = the rate on one uncontended core; wall clock depends on the load of the machine)")
    for side, rate in par.items():
        print(f"{a.workers} single-thread worker processes at once, {side} x {side}: {rate:.1f} images/s (wall clock)")
    print(f"\npeak RSS for one 512 x 512 image: {mem['peak_rss_mb']:.0f} MB in total, "
          f"{mem['increase_mb']:.0f} MB above the process after imports (target < 500 MB)")
    if not a.no_pymust:
        counts = [int(c) for c in a.pymust_scatterers.split(",") if c.strip()]
        ref = pymust_reference(counts)
        if ref is None:
            print("\npymust not installed: `pip install pymust` to time the SIMUS reference")
        else:
            per_image = 1 / t256[1]  # CPU seconds per 256 x 256 image
            print("\nSIMUS (pymust, 128-element 20 MHz linear array, one plane-wave transmit, RF only):")
            for c, s, w in zip(ref["counts"], ref["seconds"], ref["wall_seconds"], strict=True):
                print(f"  {c} scatterers: {s:.1f} CPU-s ({w:.1f} s wall clock)")
            print(f"  fit: {ref['overhead_s']:.1f} s + {ref['per_scatterer_s'] * 1e3:.1f} ms/scatterer; "
                  f"{ref['speckle_scatterers']} scatterers (10 per resolution cell over 10 x 10 mm) -> "
                  f"~{ref['extrapolated_s']:.0f} s per transmit")
            print(f"  speed ratio (CPU-seconds) vs one 256 x 256 physics image: measured {ref['counts'][0]}-scatterer "
                  f"SIMUS run {ref['seconds'][0] / per_image:,.0f}x slower; extrapolated speckle-density transmit "
                  f"~{ref['extrapolated_s'] / per_image:,.0f}x slower")


if __name__ == "__main__":
    main()
