"""Speed and memory of generation with the learned default model (issue: embedded default).

Measures, for the embedded default (or ``--model RUN``):

1. **Batched inference throughput** on the CPU with 1 and ``--threads`` torch threads (default 2)
   at ``--size`` (default 256 x 256): images/s of :meth:`Simulator.generate` (phantom -> uint8
   image, no file I/O), best of ``--repeats`` timed runs after a warm-up, for each ``--batch``
   size, plus the process **CPU time per image**. On a shared machine the wall-clock rate depends
   on everyone else's load; the CPU time does not (much): with one thread, ``1000 / cpu_ms`` is
   the rate of one uncontended core, and two cores give up to twice that (two processes).
   Target: >= 20 images/s on 2 CPU cores.
2. The same on the GPU when CUDA is present (``torch.cuda.synchronize`` around the timing).
3. **One-image CLI call end to end**: ``ivus-sim generate --phantom examples/calcified_plaque.png
   --n 1 --out x.png --device cpu`` as a fresh process, from process start until it exits with the
   PNG on disk (wall clock), and the child's **peak RSS** (``ru_maxrss`` from ``os.wait4`` on that
   one process). Targets: < 5 s and < 1.5 GB. Median and max over ``--cli-runs`` runs.
4. **Fast start**: the same one-image call and ``python -c "import torch"`` run side by side,
   alternating, ``--cli-runs`` times each in one run of this script (same machine, same load):
   the ratio of the median wall times (and of the median CPU times, which a busy machine disturbs
   less). Target: one-image ``generate`` <= 1.5x ``import torch``. ``--startup-only`` measures just this.
5. **Learned vs physics, side by side**: CPU time per image of the learned default and of the
   stage-0 physics engine (20 MHz preset) on the same phantom, one torch thread, batch 8, at
   ``--size``, the two interleaved ``--repeats`` x 2 times in this process (same machine, same
   load; median). Target (issue 12): the learned default costs no more than the physics engine.

Usage::

    python benchmarks/bench_generate.py                          # print JSON + a Markdown section
    python benchmarks/bench_generate.py --write-results          # also replace the section in RESULTS.md
    python benchmarks/bench_generate.py --startup-only --write-results   # only the fast-start ratio
    python benchmarks/bench_generate.py --side-by-side a=RUN_A b=RUN_B   # only: trained runs vs physics, interleaved
    python benchmarks/bench_generate.py --render R.json --write-results  # a saved result into RESULTS.md
    taskset -c 0,1 python benchmarks/bench_generate.py           # pin two cores on a bigger machine

The machine is described in the output (CPU model, cores visible, load average at start, torch
version, GPU name): on a shared machine the load average says how much the numbers are worth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _results
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Generation (learned default)"
STARTUP_SECTION = "## Fast start (one-image generate vs import torch)"
SIDE_SECTION = "## Generation: trained models side by side"
EXAMPLE = ROOT / "examples" / "calcified_plaque.png"


def machine() -> dict[str, Any]:
    """CPU model, visible cores, load, torch version, GPU (if any)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores_visible": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def _simulator(model: str | None, device: str) -> Any:
    from ivus_sim.simulator import Simulator

    return Simulator.from_run(model, device=device) if model else Simulator.default(device=device)


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def throughput(model: str | None, device: str, size: int, batches: list[int], n_images: int,
               repeats: int, threads: int) -> list[dict[str, Any]]:
    """Images/s of ``Simulator.generate`` for each batch size (best of ``repeats``), with the CPU time used.

    On a shared machine the wall-clock rate depends on the other load; the process CPU time per
    image does not (much): ``1000 / cpu_ms_per_image`` is the rate of one uncontended core.
    """
    from ivus_sim.phantom.reader import read_phantom

    torch.set_num_threads(threads)
    sim = _simulator(model, device)
    ph = read_phantom(EXAMPLE, size=size)
    rows = []
    for b in batches:
        sim.generate(ph, n=b, seed=0, batch_size=b)  # warm-up (allocations, cuDNN autotune)
        best = float("inf")
        best_cpu = float("inf")
        for r in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            c0 = _cpu_seconds()
            t0 = time.perf_counter()
            done = 0
            while done < n_images:
                k = min(b, n_images - done)
                sim.generate(ph, n=k, seed=r, first_index=done, batch_size=b)
                done += k
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, _cpu_seconds() - c0)
        rows.append({"device": device, "precision": sim.describe()["precision"], "threads": threads, "size": size,
                     "batch": b, "images": n_images, "images_per_s": round(n_images / best, 2),
                     "ms_per_image": round(1000 * best / n_images, 2),
                     "cpu_ms_per_image": round(1000 * best_cpu / n_images, 2)})
    return rows


def cli_end_to_end(model: str | None, runs: int) -> dict[str, Any]:
    """Wall time, CPU time and peak RSS of one-image ``ivus-sim generate`` runs as fresh processes.

    Measured by GNU time (``/usr/bin/time -f``) when present: ``ru_maxrss`` of a child forked from this
    (already large) process would include the parent's footprint, so it is only the fallback.
    """
    exe = shutil.which("ivus-sim")
    cmd = [exe] if exe else [sys.executable, "-m", "ivus_sim.cli.main"]
    gnu_time = Path("/usr/bin/time")
    walls, rss, cpus = [], [], []
    env = dict(os.environ)  # as a user runs it (the CLI picks its own --threads default)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            out = Path(tmp) / f"one_{i}.png"
            args = [*cmd, "generate", "--phantom", str(EXAMPLE), "--n", "1", "--out", str(out), "--device", "cpu"]
            if model:
                args += ["--model", model]
            timed = [str(gnu_time), "-f", "TIME %e %U %S %M", *args] if gnu_time.exists() else args
            t0 = time.perf_counter()
            proc = subprocess.Popen(timed, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            err = proc.stderr.read().decode() if proc.stderr else ""
            if proc.returncode != 0 or not out.is_file():
                raise SystemExit(f"CLI run failed ({proc.returncode}): {err.strip()}")
            line = next((ln for ln in err.splitlines() if ln.startswith("TIME ")), None)
            if line is not None:
                e, u, sy, m = line.split()[1:]
                walls.append(float(e))
                cpus.append(float(u) + float(sy))
                rss.append(float(m) / 1024)  # KiB -> MiB
            else:
                walls.append(wall)
                cpus.append(usage.ru_utime + usage.ru_stime)
                rss.append(usage.ru_maxrss / 1024)
    shown = ["ivus-sim", *args[len(cmd):]]
    shown[shown.index("--out") + 1] = "one.png"
    return {"command": " ".join(shown).replace(str(ROOT) + "/", ""),
            "runs": runs, "wall_s_median": round(statistics.median(walls), 2), "wall_s_max": round(max(walls), 2),
            "wall_s_all": [round(w, 2) for w in walls], "cpu_s_median": round(statistics.median(cpus), 2),
            "peak_rss_mib_max": round(max(rss), 1), "measured_with": "GNU time" if gnu_time.exists() else "wait4"}


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall [s], CPU [s] (user + system) and peak RSS [MiB] of one fresh process (GNU time when present)."""
    gnu_time = Path("/usr/bin/time")
    timed = [str(gnu_time), "-f", "TIME %e %U %S %M", *args] if gnu_time.exists() else args
    t0 = time.perf_counter()
    proc = subprocess.Popen(timed, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {err.strip()}")
    line = next((ln for ln in err.splitlines() if ln.startswith("TIME ")), None)
    if line is not None:
        e, u, sy, m = line.split()[1:]
        return float(e), float(u) + float(sy), float(m) / 1024
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def startup(model: str | None, runs: int) -> dict[str, Any]:
    """One-image ``ivus-sim generate`` vs ``python -c "import torch"``, alternating, ``runs`` times each.

    Returns the median wall and CPU times of both and their ratios (target: wall ratio <= 1.5).
    """
    exe = shutil.which("ivus-sim")
    cmd = [exe] if exe else [sys.executable, "-m", "ivus_sim.cli.main"]
    env = dict(os.environ)
    rows: dict[str, list[tuple[float, float, float]]] = {"torch": [], "generate": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            rows["torch"].append(_timed([sys.executable, "-c", "import torch"], env))
            out = Path(tmp) / f"one_{i}.png"
            args = [*cmd, "generate", "--phantom", str(EXAMPLE), "--n", "1", "--out", str(out), "--device", "cpu"]
            rows["generate"].append(_timed([*args, *(["--model", model] if model else [])], env))
            if not out.is_file():
                raise SystemExit("the one-image generate wrote no PNG")
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in rows.items()}
    return {"runs": runs, "command": "ivus-sim generate --phantom examples/calcified_plaque.png --n 1 --out one.png "
            "--device cpu", "torch_wall_s": round(med["torch"][0], 2), "torch_cpu_s": round(med["torch"][1], 2),
            "generate_wall_s": round(med["generate"][0], 2), "generate_cpu_s": round(med["generate"][1], 2),
            "wall_ratio": round(med["generate"][0] / med["torch"][0], 2),
            "cpu_ratio": round(med["generate"][1] / med["torch"][1], 2),
            "wall_s_all": {k: [round(r[0], 2) for r in v] for k, v in rows.items()}}


def startup_markdown(res: dict[str, Any]) -> str:
    m, s = res["machine"], res["startup"]
    return "\n".join([
        STARTUP_SECTION, "",
        f"Measured {res['date']} with `python benchmarks/bench_generate.py --startup-only` on {m['cpu']}, "
        f"{m['cores_visible']} cores visible, torch {m['torch']}, Python {m['python']}, load average "
        f"{m['load_average_1min']} at start" + (f"; GPU {m['gpu']} (not used)" if m["gpu"] else "; no GPU") + ".",
        "",
        f"`{s['command']}` (a fresh process, from start to the PNG on disk) and `python -c \"import torch\"`, "
        f"alternating, {s['runs']} runs each (medians):", "",
        "| | wall [s] | CPU [s] |", "|---|---|---|",
        f"| `python -c \"import torch\"` | {s['torch_wall_s']} | {s['torch_cpu_s']} |",
        f"| one-image `ivus-sim generate` | {s['generate_wall_s']} | {s['generate_cpu_s']} |",
        f"| ratio | **{s['wall_ratio']}x** | {s['cpu_ratio']}x |", "",
        "Target: <= 1.5x (wall). Generation imports neither MONAI nor training, plotting, pandas, scipy.stats, "
        "scikit-image nor the reader study (tested in tests/test_generate_cli.py), and the console script "
        "imports only the module of the command it runs. Where the time above `import torch` goes (CPU "
        "seconds, in one process on this machine): `scipy.ndimage` ~0.3 (the sketch reader's palette "
        "snapping: distance transform), reading and snapping the 400 x 400 sketch ~0.13, typer's option "
        "parsing ~0.09, the package modules ~0.1, the model load 0.03, one 256 x 256 image 0.07, writing "
        "~0.02.",
    ]) + "\n"


def side_by_side(models: dict[str, str | None], size: int, n_images: int, repeats: int,
                 batch: int = 8) -> dict[str, Any]:
    """CPU ms per image of several learned models and the physics engine, interleaved (median).

    ``models`` maps a name to a run folder (``None``: the embedded default). One torch thread,
    batch ``batch``, one phantom at ``size``; every engine runs ``n_images`` images per timing,
    ``2 * repeats`` timings each, and the order of the engines rotates from one repeat to the next,
    so a change in the machine's load falls on all of them alike.
    """
    from ivus_sim.phantom.reader import read_phantom
    from ivus_sim.physics import PhysicsSimulator

    torch.set_num_threads(1)
    ph = read_phantom(EXAMPLE, size=size)
    labels = np.repeat(ph.labels[:1], batch, 0)
    runners: dict[str, Any] = {}
    ids: dict[str, str] = {}
    for name, run in models.items():
        sim = _simulator(run, "cpu")
        ids[name] = sim.model_id

        def run_learned(r: int, sim: Any = sim) -> None:
            for done in range(0, n_images, batch):
                sim.generate(ph, n=batch, seed=r, first_index=done, batch_size=batch)
        runners[name] = run_learned
    physics = PhysicsSimulator()

    def run_physics(r: int) -> None:
        for done in range(0, n_images, batch):
            physics.simulate(labels, seed=r, first_index=done, fov_mm=ph.geometry.fov_mm)
    runners["physics"] = run_physics

    for fn in runners.values():  # warm-up
        fn(0)
    names = list(runners)
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(2 * repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            c0 = _cpu_seconds()
            runners[name](r)
            cpu[name].append(1000 * (_cpu_seconds() - c0) / n_images)
    med = {k: round(statistics.median(v), 2) for k, v in cpu.items()}
    return {"size": size, "batch": batch, "images": n_images, "repeats": 2 * repeats, "threads": 1,
            "models": {k: (str(v) if v else None) for k, v in models.items()}, "model_ids": ids,
            "cpu_ms_per_image": med}


def versus_physics(model: str | None, size: int, n_images: int, repeats: int, batch: int = 8) -> dict[str, Any]:
    """CPU ms per image, learned vs physics engine, one thread, interleaved on one phantom (median)."""
    res = side_by_side({"learned": model}, size, n_images, repeats, batch)
    med = res["cpu_ms_per_image"]
    return res | {"ratio_learned_over_physics": round(med["learned"] / med["physics"], 3)}


def side_by_side_markdown(res: dict[str, Any]) -> str:
    """Markdown section of a ``--side-by-side`` run (``--write-results``: section :data:`SIDE_SECTION`)."""
    v = res["side_by_side"]
    m = res["machine"]
    lines = [SIDE_SECTION, "",
             f"Measured {res['date']} with `{res['command']}`; {m['cpu']}, {m['cores_visible']} cores visible, "
             f"torch {m['torch']}, load average {m['load_average_1min']} at start. One thread, batch {v['batch']}, "
             f"{v['size']} x {v['size']}, {v['images']} images per timing, the engines interleaved "
             f"{v['repeats']} times in one process; median CPU ms per image.", "",
             "| engine | model | CPU ms / image | x physics |", "|---|---|---|---|"]
    phys = v["cpu_ms_per_image"]["physics"]
    for name, ms in v["cpu_ms_per_image"].items():
        mid = v["model_ids"].get(name, "20 MHz preset")
        lines.append(f"| {name} | `{mid}` | {ms} | {ms / phys:.2f} |")
    return "\n".join(lines) + "\n"


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [SECTION, "",
             f"Measured {res['date']} with `python benchmarks/bench_generate.py` (model `{res['model_id']}`).",
             "",
             f"Machine: {m['cpu']}, {m['cores_visible']} cores visible, torch {m['torch']} with "
             f"{res['threads']} threads, load average {m['load_average_1min']} at start"
             + (f"; GPU {m['gpu']}" if m["gpu"] else "; no GPU") + ".", "",
             "| device | precision | threads | size | batch | images/s (wall) | ms/image (wall) | CPU ms/image |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["throughput"]:
        lines.append(f"| {r['device']} | {r['precision']} | {r['threads']} | {r['size']} | {r['batch']} | "
                     f"{r['images_per_s']} | {r['ms_per_image']} | {r['cpu_ms_per_image']} |")
    if any(r["threads"] > 1 for r in res["throughput"] if r["device"] == "cpu"):
        lines += ["", "Rows with more than one thread: when the other core is busy, torch's OpenMP threads wait for "
                  "each other and the CPU time per image rises; this is why `ivus-sim generate` defaults to "
                  "`--threads 1` (use one process per core for throughput)."]
    one = [r for r in res["throughput"] if r["device"] == "cpu" and r["threads"] == 1]
    if one:
        best = min(one, key=lambda r: r["cpu_ms_per_image"])
        rate = 1000 / best["cpu_ms_per_image"]
        lines += ["", f"CPU cost: {best['cpu_ms_per_image']} ms of CPU time per image "
                  f"(1 thread, batch {best['batch']}), "
                  f"i.e. {rate:.0f} images per CPU-second: one uncontended core gives ~{rate:.0f} images/s and two "
                  f"cores (two processes, or two threads) up to ~{2 * rate:.0f} images/s."]
    v = res.get("versus_physics")
    if v:
        m_ = v["cpu_ms_per_image"]
        lines += ["", f"**Learned default vs physics engine, side by side** (one thread, batch {v['batch']}, "
                  f"{v['size']} x {v['size']}, {v['images']} images per timing, the two interleaved {v['repeats']} "
                  f"times; median CPU ms per image): learned {m_['learned']}, physics {m_['physics']}: "
                  f"ratio **{v['ratio_learned_over_physics']}** (target <= 1: "
                  f"{'met' if v['ratio_learned_over_physics'] <= 1 else 'not met'})."]
    c = res.get("cli")
    if c:
        lines += ["", f"One-image CLI call end to end (`{c['command']}`, fresh process, {c['runs']} runs): "
                  f"median {c['wall_s_median']} s wall (max {c['wall_s_max']} s), {c['cpu_s_median']} s of CPU time "
                  f"(user + system); peak RSS {c['peak_rss_mib_max']} MiB. Wall time above CPU time is time spent "
                  "waiting for a core (see the load average); on an idle machine the call takes about its CPU time.",
                  "", "Targets: >= 20 images/s batched on 2 CPU cores at 256 x 256; CLI < 5 s; peak RSS < 1.5 GB."]
    return "\n".join(lines) + "\n"


def write_section(text: str, section: str = SECTION) -> None:
    """Replace this benchmark's section of RESULTS.md (see :func:`_results.write_section`)."""
    _results.write_section(text, section)


def _emit(res: dict[str, Any], md: str, json_path: Path | None) -> None:
    """Print a run's JSON and Markdown, and write the JSON to ``json_path`` if given."""
    print(json.dumps(res, indent=2))
    print(md)
    if json_path:
        json_path.write_text(json.dumps(res, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a trained run instead of the embedded default")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--gpu-batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--images", type=int, default=64, help="images per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cli-runs", type=int, default=5)
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--startup-only", action="store_true", help="only the fast-start ratio (section "
                    f"'{STARTUP_SECTION}')")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    ap.add_argument("--write-results", action="store_true", help=f"replace '{SECTION}' in {RESULTS}")
    ap.add_argument("--render", type=Path, default=None, help="only re-render a --json result as Markdown")
    ap.add_argument("--side-by-side", nargs="+", metavar="NAME=RUN", default=None,
                    help="only: CPU time per image of these trained runs ('default' for the embedded one) and "
                    f"the physics engine, interleaved (--write-results: section '{SIDE_SECTION}')")
    a = ap.parse_args()
    if a.side_by_side:
        models: dict[str, str | None] = {}
        for item in a.side_by_side:
            name, sep, run = item.partition("=")
            if not sep or not name or not run:
                ap.error(f"--side-by-side takes NAME=RUN, got {item!r}")
            models[name] = None if run == "default" else run
        sbs: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                               "command": "python benchmarks/bench_generate.py " + " ".join(sys.argv[1:]),
                               "side_by_side": side_by_side(models, a.size, a.images, a.repeats)}
        md = side_by_side_markdown(sbs)
        _emit(sbs, md, a.json)
        if a.write_results:
            write_section(md, section=SIDE_SECTION)
        return
    if a.render:
        done = json.loads(a.render.read_text())
        if "side_by_side" in done:
            md, section = side_by_side_markdown(done), SIDE_SECTION
        elif "throughput" in done:
            md, section = markdown(done), SECTION
        else:
            md, section = startup_markdown(done), STARTUP_SECTION
        print(md)
        if a.write_results:
            write_section(md, section=section)
        return

    res: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                           "threads": a.threads}
    if a.startup_only:
        res["startup"] = startup(a.model, a.cli_runs)
        md = startup_markdown(res)
        _emit(res, md, a.json)
        if a.write_results:
            write_section(md, section=STARTUP_SECTION)
        return
    if not a.no_cli:  # first, while this process is small
        res["cli"] = cli_end_to_end(a.model, a.cli_runs)
        res["startup"] = startup(a.model, a.cli_runs)
    res["model_id"] = _simulator(a.model, "cpu").model_id
    res["throughput"] = []
    for th in sorted({1, a.threads}):
        res["throughput"] += throughput(a.model, "cpu", a.size, a.batch, a.images, a.repeats, th)
    res["versus_physics"] = versus_physics(a.model, a.size, a.images, a.repeats)
    if torch.cuda.is_available():
        res["throughput"] += throughput(a.model, "cuda", a.size, a.gpu_batch, max(a.images, 4 * max(a.gpu_batch)),
                                        a.repeats, a.threads)
    md = markdown(res)
    _emit(res, md, a.json)
    if a.write_results:
        write_section(md)
        if "startup" in res:
            write_section(startup_markdown(res), section=STARTUP_SECTION)
    best_cpu = max((r["images_per_s"] for r in res["throughput"] if r["device"] == "cpu"), default=np.nan)
    print(f"best CPU throughput {best_cpu} images/s (wall clock)", file=sys.stderr)


if __name__ == "__main__":
    main()
