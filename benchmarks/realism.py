"""Realism table: the physics engine and the learned default model against real 20 MHz figures.

Real IVUS images cannot be shipped, so the table compares simulated images with the published
calibration figures (``ivus_sim/metrics/real_20mhz_vh.json``: 13 real 20 MHz frames with VH
tissue maps; definitions in ``shared/calibration/README.md``), measured the reference way by
:mod:`ivus_sim.metrics.calibration`, on random phantoms
(``random_phantom(seed, size=400, fov_mm=10, index=i)``, the size of the real frames), plus the
figures of :mod:`ivus_sim.metrics` that need no real images (Nakagami m, calcium shadow,
diversity). Rows:

* ``physics``: :class:`ivus_sim.physics.PhysicsSimulator` with the ``20mhz`` preset;
* ``learned``: ``Simulator.default()`` (skipped with a note when no embedded weights are present);
* ``baseline``: a strawman that knows the reference's per-tissue mean brightness and nothing
  else (reference mean x Rayleigh speckle per tissue, no PSF, no depth effects), to show what
  the figures reward.

Each engine is run for ``--seeds`` independent seeds (phantoms and speckle both change); the
table gives mean ± sd over seeds.

Usage::

    python benchmarks/realism.py                      # JSON to benchmarks/results/realism/, print Markdown
    python benchmarks/realism.py --write-results      # also replace the section in RESULTS.md
    python benchmarks/realism.py --engines learned --reuse benchmarks/results/realism/results.json \
        --write-results                               # add one engine to an earlier run
    python benchmarks/realism.py --export sim/        # also write the images + label maps in the
                                                      # `ivus-sim evaluate` folder convention

Users with their own real frames (``frame_XX_image.png`` + ``frame_XX_label.png``) run the full
evaluation, with the classifier test and feature distances, against them::

    mkdir -p labels && cp real/frame_*_label.png labels/
    ivus-sim generate --engine physics --phantom labels/ --n 1 --size 400 --out sim/physics/
    ivus-sim evaluate --real real/ --fake sim/physics/ --out report_physics/
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import _results
import numpy as np
from _results import source_commit

from ivus_sim.metrics.calibration import compare_stats, load_reference_stats, polar_stats
from ivus_sim.metrics.diversity import pairwise_diversity
from ivus_sim.metrics.imageset import ImageSet, tissue_masks, to_polar
from ivus_sim.metrics.profile import shadow_profile
from ivus_sim.metrics.speckle import speckle_stats
from ivus_sim.seeding import rng

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
ENGINE_ORDER = ("physics", "learned", "baseline")
JSON_OUT = ROOT / "benchmarks" / "results" / "realism" / "results.json"
SECTION = "## Realism"
SIZE, FOV_MM = 400, 10.0
KEY_TISSUES = ("perivascular", "lumen_beyond_ringdown", "fibrous", "necrotic_core", "dense_calcium", "media")
USER_COMMANDS = [
    "mkdir -p labels && cp real/frame_*_label.png labels/",
    "ivus-sim generate --engine physics --phantom labels/ --n 1 --size 400 --out sim/physics/",
    "ivus-sim generate --phantom labels/ --n 1 --size 400 --out sim/learned/",
    "ivus-sim evaluate --real real/ --fake sim/physics/ --out report_physics/",
    "ivus-sim evaluate --real real/ --fake sim/learned/ --out report_learned/",
]


def phantoms(seed: int, n: int) -> np.ndarray:
    """``(n, 400, 400)`` random phantom label maps of one seed."""
    from ivus_sim.phantom.random import random_phantom

    return np.stack([random_phantom(seed, size=SIZE, fov_mm=FOV_MM, index=i).labels[0] for i in range(n)])


class Engine:
    """One row of the table: ``images(labels, seed) -> (B, N, N) uint8`` and ``samples(label, seed, k)``."""

    name = ""
    key = ""  # folder name for --export
    note = ""

    def images(self, labels: np.ndarray, seed: int) -> np.ndarray:
        raise NotImplementedError

    def samples(self, label: np.ndarray, seed: int, k: int) -> np.ndarray:
        raise NotImplementedError


class Physics(Engine):
    name = "physics (20mhz preset)"
    key = "physics"

    def __init__(self, device: str) -> None:
        from ivus_sim.config import load_preset
        from ivus_sim.physics import PhysicsSimulator

        self.sim = PhysicsSimulator(preset=load_preset("20mhz"), device=device)

    def images(self, labels: np.ndarray, seed: int) -> np.ndarray:
        return np.asarray(self.sim.simulate(labels, seed=seed, fov_mm=FOV_MM).image)

    def samples(self, label: np.ndarray, seed: int, k: int) -> np.ndarray:
        return np.asarray(self.sim.simulate(np.repeat(label[None], k, 0), seed=seed + 1000, fov_mm=FOV_MM).image)


class Learned(Engine):
    name = "learned default model"
    key = "learned"

    def __init__(self, device: str) -> None:
        from ivus_sim import Simulator

        self.sim = Simulator.default(device=device)
        self.note = f"model {self.sim.model_id}"

    def images(self, labels: np.ndarray, seed: int) -> np.ndarray:
        return np.stack([self.sim.generate(lab, n=1, seed=seed, fov_mm=FOV_MM, first_index=i).images[0]
                         for i, lab in enumerate(labels)])

    def samples(self, label: np.ndarray, seed: int, k: int) -> np.ndarray:
        return np.asarray(self.sim.generate(label, n=k, seed=seed + 1000, fov_mm=FOV_MM).images)


class Baseline(Engine):
    name = "baseline: reference tissue means x Rayleigh"
    key = "baseline"

    def __init__(self, reference: dict[str, Any]) -> None:
        from ivus_sim.metrics.imageset import EVAL_TISSUES

        self.lut = np.zeros(256)
        for name, tid in EVAL_TISSUES.items():
            if name in reference["tissues"]:
                self.lut[tid] = reference["tissues"][name]["mean"]
        if "lumen_beyond_ringdown" in reference["tissues"]:  # most lumen lies beyond the ring-down
            self.lut[1] = reference["tissues"]["lumen_beyond_ringdown"]["mean"]
        self.lut[[8, 9]] = 200.0  # guidewire / stent struts: bright
        self.lut[7] = 0.0

    def images(self, labels: np.ndarray, seed: int) -> np.ndarray:
        out = []
        for i, lab in enumerate(labels):
            speckle = rng(seed, "baseline", i).rayleigh(1.0, lab.shape) / np.sqrt(np.pi / 2)
            img = np.clip(self.lut[lab] * speckle, 0, 255)
            img[lab == 255] = 0
            out.append(img.round().astype(np.uint8))
        return np.stack(out)

    def samples(self, label: np.ndarray, seed: int, k: int) -> np.ndarray:
        return self.images(np.repeat(label[None], k, 0), seed + 1000)


def measure(engine: Engine, seeds: list[int], n_phantoms: int, n_div: int, k_div: int,
            reference: dict[str, Any], export: Path | None) -> dict[str, Any]:
    """Every figure of one engine, per seed."""
    per_seed = []
    for s in seeds:
        labels = phantoms(s, n_phantoms)
        t0 = time.perf_counter()
        imgs = engine.images(labels, s)
        dt = (time.perf_counter() - t0) / len(labels)
        stats = polar_stats(list(imgs), list(labels))
        cmp_ = compare_stats(stats, reference)
        pol = to_polar(ImageSet([f"p{i:02d}" for i in range(len(labels))], list(imgs.astype(np.float64)),
                                list(labels)))
        assert pol.labels is not None
        masks = tissue_masks(pol.labels)
        sp = speckle_stats(pol.images, {k: v for k, v in masks.items() if k in ("perivascular", "fibrous")})
        sh = shadow_profile(pol.images, pol.labels)
        div_groups = []
        for i in range(n_div):
            smp = engine.samples(labels[i], s, k_div)
            pl = to_polar(ImageSet([f"s{j}" for j in range(k_div)], list(smp.astype(np.float64)),
                                   [labels[i]] * k_div))
            div_groups.append(pl.images)
        div = pairwise_diversity(div_groups)
        if export is not None:
            _export(export, engine, s, imgs, labels)
        per_seed.append({
            "seed": s, "seconds_per_image": dt, "compare": cmp_,
            "nakagami_m_perivascular": sp["perivascular"]["nakagami_m"],
            "nakagami_m_fibrous": sp.get("fibrous", {}).get("nakagami_m"),
            "shadow_ratio": sh["shadow_ratio"] if sh else None,
            "diversity_l1": div["mean_l1"], "diversity_1_minus_ssim": div["mean_1_minus_ssim"],
        })
    return {"engine": engine.name, "key": engine.key, "note": engine.note, "per_seed": per_seed}


def _export(root: Path, engine: Engine, seed: int, imgs: np.ndarray, labels: np.ndarray) -> None:
    from ivus_sim.io import save_png

    tag = engine.key
    for i, (im, lab) in enumerate(zip(imgs, labels, strict=True)):
        save_png(root / tag / f"s{seed}_p{i:02d}.png", im)
        save_png(root / "labels" / f"s{seed}_p{i:02d}.png", lab)


def self_check(physics: Engine, others: list[Engine], n_phantoms: int, seed: int) -> dict[str, Any]:
    """The full `ivus-sim evaluate` at real size, against the physics engine as "real".

    "Real" = the physics engine on phantoms of ``seed``. Where the answer is known it checks the
    metrics: the physics engine with other speckle on the same phantoms must be indistinguishable
    (C2ST ~0.5, Fréchet near the real-vs-real floor) and the baseline must be told apart (C2ST ~1).
    For the learned model (trained on physics-simulated images) it measures how well it imitates
    its teacher.
    """
    from ivus_sim.metrics.evaluate import EvaluateConfig, evaluate

    labels = phantoms(seed, n_phantoms)
    names = [f"p{i:02d}" for i in range(n_phantoms)]

    def as_set(imgs: np.ndarray) -> ImageSet:
        return ImageSet(names, list(imgs.astype(np.float64)), list(labels))

    real = as_set(physics.images(labels, seed))
    out = {}
    for e in others:
        name = "physics, other speckle seed" if e is physics else e.name
        imgs = physics.images(labels, seed + 100) if e is physics else e.images(labels, seed)
        t0 = time.perf_counter()
        r = evaluate(as_set(imgs), real, None, EvaluateConfig(seed=0), progress=False).results
        out[name] = {"summary": r["summary"], "c2st": r["c2st"], "features": r["features"],
                     "seconds": time.perf_counter() - t0}
    return out


CLI_PHANTOM_SEED = 3
CLI_WORK = ROOT / "runs" / "realism_cli"


def cli_commands(n: int, model: str | None) -> list[tuple[str, list[str]]]:
    """The issue-12 headline check as a user runs it: ``(name, argv)`` in order (cwd = the work folder)."""
    m = ["--model", model] if model else []
    return [
        ("phantoms", ["phantom", "random", "--n", str(n), "--seed", str(CLI_PHANTOM_SEED), "--out", "phantoms"]),
        ("physics", ["generate", "--engine", "physics", "--phantom", "phantoms/", "--n", "1", "--device", "cpu",
                     "--out", "physics/"]),
        ("physics_seed1", ["generate", "--engine", "physics", "--phantom", "phantoms/", "--n", "1", "--seed", "1",
                           "--device", "cpu", "--out", "physics_seed1/"]),
        ("learned", ["generate", "--phantom", "phantoms/", *m, "--n", "1", "--device", "cpu", "--out", "learned/"]),
        ("report_learned", ["evaluate", "--real", "physics/", "--fake", "learned/", "--out", "report_learned/",
                            "--quiet"]),
        ("report_physics_floor", ["evaluate", "--real", "physics/", "--fake", "physics_seed1/", "--out",
                                  "report_physics_floor/", "--quiet"]),
    ]


def cli_check(work: Path, n: int, model: str | None, model_id: str | None) -> dict[str, Any]:
    """``ivus-sim evaluate --real <physics> --fake <learned>`` on ``phantom random --n 13 --seed 3``.

    Runs the CLI exactly as a user would (each step skipped when its output exists, so the physics
    half is reused when only the model changed: ``learned/`` and its report are redone when its
    sidecars name another model than ``model_id``). Also evaluates the physics engine with another
    speckle seed against itself (the floor).
    """
    import shutil
    import subprocess
    import sys

    work.mkdir(parents=True, exist_ok=True)
    side = sorted((work / "learned").glob("*.json"))
    if side and model_id is not None and json.loads(side[0].read_text()).get("model_id") != model_id:
        for sub in ("learned", "report_learned"):
            if (work / sub).exists():
                shutil.rmtree(work / sub)
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    shown = []
    for name, argv in cli_commands(n, model):
        shown.append("ivus-sim " + " ".join(argv))
        if (work / name).exists():
            continue
        with (work / "cli.log").open("a") as log:
            rc = subprocess.run([sys.executable, "-m", "ivus_sim.cli.main", *argv], cwd=work, env=env,
                                stdout=log, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            raise SystemExit(f"ivus-sim {' '.join(argv)} failed (exit {rc}); see {work / 'cli.log'}")
    out: dict[str, Any] = {"commands": shown, "n": n, "phantom_seed": CLI_PHANTOM_SEED, "model": model}
    for key in ("report_learned", "report_physics_floor"):
        r = json.loads((work / key / "realism.json").read_text())
        s, c = r["summary"], r.get("c2st") or {}
        out[key] = {"c2st": s["c2st_accuracy"], "c2st_ci": s["c2st_accuracy_ci"], "auc": s["c2st_auc"],
                    "auc_ci": c.get("auc_ci_bootstrap"), "frechet": s["frechet_fake_vs_real"],
                    "frechet_real": s["frechet_real_vs_real"], "kid": s["kid_fake_vs_real"],
                    "kid_real": s["kid_real_vs_real"]}
    side = sorted((work / "learned").glob("*.json"))
    out["model_id"] = json.loads(side[0].read_text()).get("model_id") if side else None
    return out


def targets(res: dict[str, Any]) -> list[str]:
    """The issue-12 targets, measured in this run: one line each, met or not."""
    summ = {r["key"]: r for r in res["rows"]}
    lines = []

    def per_seed(key: str, f: Any) -> list[float]:
        return [v for v in (f(p) for p in summ[key]["per_seed"]) if v is not None] if key in summ else []

    def js(p: dict[str, Any]) -> float:
        return float(p["compare"]["tissue_js_weighted"])

    def spk(p: dict[str, Any], k: str) -> float | None:
        v = (p["compare"].get("speckle_sim") or {}).get(k)
        return None if v is None else float(v)

    cc = res.get("cli_check")
    if cc:
        a = cc["report_learned"]["c2st"]
        lines.append(f"C2ST learned default vs its physics teacher (`ivus-sim evaluate`, 13 phantoms of seed 3) "
                     f"<= 0.65: {a:.3f} -> {'met' if a <= 0.65 else '**not met**'}")
    lj, pj = per_seed("learned", js), per_seed("physics", js)
    if lj and pj:
        ok = np.mean(lj) <= np.mean(pj)
        lines.append(f"weighted JS no worse than the physics engine's: learned {np.mean(lj):.3f} vs physics "
                     f"{np.mean(pj):.3f} -> {'met' if ok else '**not met**'}")
    ft = per_seed("learned", lambda p: spk(p, "fwhm_theta_px_of_360"))
    fr = per_seed("learned", lambda p: spk(p, "fwhm_r_px_of_160"))
    if ft and fr:
        ok = round(float(np.mean(ft))) == 7 and round(float(np.mean(fr))) == 5
        lines.append(f"speckle FWHM 7 / 5 px: learned {np.mean(ft):.1f} / {np.mean(fr):.1f} -> "
                     f"{'met' if ok else '**not met**'}")
    snr = per_seed("learned", lambda p: spk(p, "snr_mean_over_std"))
    if snr:
        ref = float(res["reference"]["speckle_perivascular"]["snr_mean_over_std"])
        ok = abs(np.mean(snr) / ref - 1) <= 0.10
        lines.append(f"patch mean/std within 10 % of the real {ref:.2f}: learned {np.mean(snr):.2f} "
                     f"({100 * (np.mean(snr) / ref - 1):+.0f} %) -> {'met' if ok else '**not met**'}")
    return lines


def previous_summary(prev: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of an earlier run's learned row (for the 'Before' table)."""
    if prev.get("previous") and not any(r["key"] == "learned" for r in prev["rows"]):
        return dict(prev["previous"])
    summ = prev["summary"]
    lname = next(r["engine"] for r in prev["rows"] if r["key"] == "learned")
    pname = next((r["engine"] for r in prev["rows"] if r["key"] == "physics"), None)
    ls = summ[lname]
    cc = prev.get("cli_check") or {}
    note = next((r["note"] for r in prev["rows"] if r["key"] == "learned"), "")
    return {"model": cc.get("model_id") or note.replace("model ", ""), "date": prev["date"],
            "commit": prev.get("commit", "?"),
            "c2st": f"{cc['report_learned']['c2st']:.3f}" if cc else "-",
            "floor": f"{cc['report_physics_floor']['c2st']:.3f}" if cc else "-",
            "js": ls["js_weighted"], "js_physics": summ[pname]["js_weighted"] if pname else "-",
            "fwhm": f"{ls['fwhm_theta']} / {ls['fwhm_r']}", "snr": ls["snr"], "nakagami": ls["nakagami_peri"]}


def _ms(vals: list[float | None], fmt: str = ".3f") -> str:
    v = np.array([x for x in vals if x is not None], dtype=float)
    if v.size == 0:
        return "-"
    if v.size == 1:
        return format(v[0], fmt)
    return f"{format(v.mean(), fmt)} ± {format(v.std(ddof=1), fmt)}"


def summarise(rows: list[dict[str, Any]], reference: dict[str, Any]) -> dict[str, Any]:
    """Mean ± sd over seeds of the headline figures, per engine."""
    out = {}
    for r in rows:
        ps = r["per_seed"]
        c = [p["compare"] for p in ps]
        spk = [x["speckle_sim"] or {} for x in c]
        out[r["engine"]] = {
            "js_weighted": _ms([x["tissue_js_weighted"] for x in c]),
            "js_max": _ms([x["tissue_js_max"] for x in c]),
            "radial_l1": _ms([x["radial_profile_l1"] for x in c], ".1f"),
            "fwhm_theta": _ms([s.get("fwhm_theta_px_of_360") for s in spk], ".1f"),
            "fwhm_r": _ms([s.get("fwhm_r_px_of_160") for s in spk], ".1f"),
            "snr": _ms([s.get("snr_mean_over_std") for s in spk], ".2f"),
            "nakagami_peri": _ms([p["nakagami_m_perivascular"] for p in ps], ".2f"),
            "shadow": _ms([p["shadow_ratio"] for p in ps], ".2f"),
            "div_l1": _ms([p["diversity_l1"] for p in ps], ".3f"),
            "div_ssim": _ms([p["diversity_1_minus_ssim"] for p in ps], ".2f"),
            "sec": _ms([p["seconds_per_image"] for p in ps], ".2f"),
            "tissues": {t: {"js": _ms([x["tissues"][t]["js"] for x in c if t in x["tissues"]], ".3f"),
                            "mean_diff": _ms([x["tissues"][t]["mean_diff"] for x in c if t in x["tissues"]], ".1f")}
                        for t in KEY_TISSUES if t in reference["tissues"]},
        }
    return out


def markdown(res: dict[str, Any]) -> str:
    ref = res["reference"]
    rs = ref["speckle_perivascular"]
    summ = res["summary"]
    lines = [SECTION, "",
             f"Measured {res['date']} with `{res.get('command', 'python benchmarks/realism.py')}` (commit "
             f"{res.get('commit', '?')}; {res['n_phantoms']} random phantoms "
             f"`random_phantom(seed, size=400, fov_mm=10, index=i)` per seed, seeds {res['seeds']}; mean ± sd over "
             f"seeds) against the real 20 MHz calibration figures ({ref['frames']} frames, "
             "`ivus_sim/metrics/real_20mhz_vh.json`), measured the reference way (`ivus_sim.metrics.calibration`). "
             "JS: histogram Jensen-Shannon divergence in bits, weighted by the reference's tissue pixels; radial L1: "
             "mean |difference| of the 10-bin radial profile [grey levels]; speckle: perivascular autocorrelation "
             "FWHM along angle (of 360) and radius (of 160) and patch mean/std. Nakagami m (perivascular, display "
             "values), shadow ratio (intensity behind calcium / same tissue and depth elsewhere) and diversity "
             f"(pairwise L1 and 1-SSIM of {res['k_div']} samples of each of {res['n_div']} phantoms) have no real "
             "counterpart in the figures and are given for comparison between engines.",
             "",
             f"Machine: {res['machine']}.",
             ""]
    cc = res.get("cli_check")
    if cc:
        rl, rp = cc["report_learned"], cc["report_physics_floor"]
        lines += ["**Learned default vs its physics teacher, as a user measures it** (the whole `ivus-sim evaluate`, "
                  f"{cc['n']} random phantoms of `ivus-sim phantom random --seed {cc['phantom_seed']}` at 256 x 256; "
                  f"model `{cc['model_id']}`; C2ST 0.5 = indistinguishable, target <= 0.65):", "",
                  "| `--fake` (against `--real physics/`) | C2ST accuracy [Wilson 95%] | AUC | Fréchet fake/real "
                  "(real/real) | KID fake/real (real/real) |", "|---|---|---|---|---|"]
        for name, r in (("learned default (`learned/`)", rl), ("physics, other speckle seed (`physics_seed1/`)", rp)):
            lines.append(f"| {name} | {r['c2st']:.3f} [{r['c2st_ci'][0]:.3f}, {r['c2st_ci'][1]:.3f}] | "
                         f"{r['auc']:.3f} | {r['frechet']:.3g} ({r['frechet_real']:.3g}) | "
                         f"{r['kid']:.3g} ({r['kid_real']:.3g}) |")
        lines += ["", "```bash", *cc["commands"], "```", ""]
    tl = targets(res)
    if tl:
        lines += ["Issue-12 targets, measured in this run:", "", *[f"- {t}" for t in tl], ""]
    lines += ["Against the real calibration figures:", "",
              "| engine | weighted JS | max JS | radial L1 | FWHM θ | FWHM r | mean/std | Nakagami m | shadow ratio "
              "| diversity L1 | 1-SSIM | s/image |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|",
              f"| real (reference figures) | 0 | 0 | 0 | {rs['fwhm_theta_px_of_360']} | {rs['fwhm_r_px_of_160']} | "
              f"{rs['snr_mean_over_std']} | - | - | - | - | - |"]
    for name, s in summ.items():
        lines.append(f"| {name} | {s['js_weighted']} | {s['js_max']} | {s['radial_l1']} | {s['fwhm_theta']} | "
                     f"{s['fwhm_r']} | {s['snr']} | {s['nakagami_peri']} | {s['shadow']} | {s['div_l1']} | "
                     f"{s['div_ssim']} | {s['sec']} |")
    tissues = [t for t in KEY_TISSUES if t in ref["tissues"]]
    lines += ["", "Per tissue: JS / mean difference (simulated - real) [grey levels]; real mean in the header.", "",
              "| engine | " + " | ".join(f"{t} ({ref['tissues'][t]['mean']:.0f})" for t in tissues) + " |",
              "|---|" + "---|" * len(tissues)]
    for name, s in summ.items():
        lines.append(f"| {name} | " + " | ".join(f"{s['tissues'][t]['js']} / {s['tissues'][t]['mean_diff']}"
                                                 for t in tissues) + " |")
    lines += ["", "The baseline is given the real per-tissue means, so its mean differences are ~0 by construction "
              "and its JS comes from the histogram shape alone (uncorrelated speckle, no point-spread function, no "
              "depth effects): a low per-tissue JS alone does not make an image realistic."]
    if res["notes"]:
        lines += [""] + [f"- {n}" for n in res["notes"]]
    if res.get("self_check"):
        lines += ["", "The whole `ivus-sim evaluate` at full size with \"real\" = the physics engine on "
                  f"{res['n_phantoms']} phantoms of seed 0 (default settings: 32x32 polar patches, 32 per frame, "
                  "4 folds by frame, 15 epochs). Where the answer is known it checks the metrics (other physics "
                  "speckle: indistinguishable; baseline: told apart); for the learned model, trained on "
                  "physics-simulated images, it measures how well it imitates its teacher:", "",
                  "| simulated set | C2ST accuracy [Wilson 95%] | AUC [frame bootstrap 95%] | Fréchet fake/real "
                  "(real/real) | KID fake/real (real/real) | weighted JS | run time [s] |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in res["self_check"].items():
            c, f, s = r["c2st"], r["features"], r["summary"]
            lines.append(
                f"| {name} | {c['accuracy']:.3f} [{c['accuracy_ci_wilson'][0]:.3f}, {c['accuracy_ci_wilson'][1]:.3f}]"
                f" | {c['auc']:.3f} [{c['auc_ci_bootstrap'][0]:.3f}, {c['auc_ci_bootstrap'][1]:.3f}] | "
                f"{f['fake_vs_real']['frechet']:.3g} ({f['real_vs_real']['frechet']:.3g}) | "
                f"{f['fake_vs_real']['kid']:.3g} ({f['real_vs_real']['kid']:.3g}) | {s['tissue_js_weighted']:.3f} | "
                f"{r['seconds']:.0f} |")
    prev = res.get("previous")
    if prev:
        lines += ["", f"### Before: the previous default (`{prev['model']}`)", "",
                  f"Measured {prev['date']} (commit {prev.get('commit', '?')}) with the same command, before it "
                  "was replaced (its CLI check and the physics engine in its row as they were at that commit):", "",
                  "| previous default | C2ST vs physics (floor) | weighted JS (physics in that run) | FWHM θ / r | "
                  "mean/std | Nakagami m |", "|---|---|---|---|---|---|"]
        lines.append(f"| `{prev['model']}` | {prev['c2st']} ({prev['floor']}) | {prev['js']} ({prev['js_physics']}) | "
                     f"{prev['fwhm']} | {prev['snr']} | {prev['nakagami']} |")
    lines += ["", "With your own real frames in `real/` (`frame_XX_image.png` + `frame_XX_label.png`), simulate "
              "the same label maps and run the full evaluation, which adds the classifier two-sample test and "
              "feature distances (simulated frames pair with the real frame they were made from; see "
              "`docs/evaluate.md`):", "", "```bash", *USER_COMMANDS, "```", ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (see :func:`_results.write_section`)."""
    _results.write_section(text, SECTION)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phantoms", type=int, default=13, help="phantoms per seed (13 = the real frame count)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--diversity-phantoms", type=int, default=3)
    ap.add_argument("--diversity-samples", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--engines", nargs="+", default=list(ENGINE_ORDER), choices=ENGINE_ORDER)
    ap.add_argument("--no-self-check", action="store_true", help="skip the full-size metric sanity check")
    ap.add_argument("--export", type=Path, help="also write images + labels for `ivus-sim evaluate`")
    ap.add_argument("--write-results", action="store_true", help=f"replace '{SECTION}' in {RESULTS}")
    ap.add_argument("--json-out", type=Path, default=JSON_OUT, help="where to save the full JSON results")
    ap.add_argument("--no-cli-check", action="store_true", help="skip the `ivus-sim evaluate` headline check "
                    "(13 phantoms of `phantom random --seed 3`, learned vs physics, via the CLI)")
    ap.add_argument("--cli-work", type=Path, default=CLI_WORK, help="work folder of the CLI check (resumable)")
    ap.add_argument("--previous", type=Path, help="results JSON of an earlier run with another (the previous) "
                    "default model: its headline figures are kept in a 'Before' table")
    ap.add_argument("--reuse", type=Path, help="previous JSON results: rows of engines not run now and the "
                    "self-check (when skipped) are taken from it, e.g. to add the learned model later")
    a = ap.parse_args()

    reference = load_reference_stats()
    notes: list[str] = []
    engines: list[Engine] = []
    for name in a.engines:
        if name == "physics":
            engines.append(Physics(a.device))
        elif name == "learned":
            try:
                engines.append(Learned(a.device))
            except Exception as err:  # no embedded weights yet: skip with a note
                notes.append(f"learned default model skipped: {type(err).__name__}: {err}")
        elif name == "baseline":
            engines.append(Baseline(reference))
    rows = [measure(e, a.seeds, a.phantoms, a.diversity_phantoms, a.diversity_samples, reference, a.export)
            for e in engines]
    previous = json.loads(a.reuse.read_text()) if a.reuse else None
    if previous is not None:
        if previous["seeds"] != a.seeds or previous["n_phantoms"] != a.phantoms:
            raise SystemExit(f"--reuse {a.reuse}: other seeds/phantoms than this run")
        run = {r["key"] for r in rows}
        rows = sorted(rows + [r for r in previous["rows"] if r["key"] not in run],
                      key=lambda r: ENGINE_ORDER.index(r["key"]))
        notes += [n for n in previous["notes"] if "skipped" not in n and n not in notes]
    for e in engines:
        if e.note:
            notes.append(f"{e.name}: {e.note}")
    check = dict(previous.get("self_check") or {}) if previous is not None else {}
    if not a.no_self_check:
        phys = next((e for e in engines if isinstance(e, Physics)), None) or Physics(a.device)
        order = [phys] + [e for e in engines if not isinstance(e, Physics)]
        todo = [e for e in order if (e.name if e is not phys else "physics, other speckle seed") not in check
                or e in engines]
        check.update(self_check(phys, todo, a.phantoms, a.seeds[0]))
        check = {k: check[k] for k in sorted(check, key=lambda k: (0 if k.startswith("physics") else
                                                                    1 if k.startswith("learned") else 2))}
    cli = previous.get("cli_check") if previous is not None else None
    learned = next((e for e in engines if isinstance(e, Learned)), None)
    if not a.no_cli_check:
        cli = cli_check(a.cli_work, a.phantoms, None, learned.sim.model_id if learned else None)
    elif cli is not None and learned is not None and cli.get("model_id") != learned.sim.model_id:
        notes.append(f"the CLI check of the earlier run measured {cli.get('model_id')}, not this model: dropped "
                     "(run without --no-cli-check)")
        cli = None
    import sys

    import torch

    commit = source_commit()
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", "benchmarks/realism.py", *sys.argv[1:]]), "commit": commit,
        "cli_check": cli,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, device {a.device}",
        "seeds": a.seeds, "n_phantoms": a.phantoms, "n_div": a.diversity_phantoms, "k_div": a.diversity_samples,
        "reference": {k: v for k, v in reference.items() if k != "tissues"} | {"tissues": {
            t: {"mean": v["mean"], "pixels": v["pixels"]} for t, v in reference["tissues"].items()}},
        "rows": rows, "summary": summarise(rows, reference), "notes": notes, "user_commands": USER_COMMANDS,
        "self_check": check or None,
    }
    if a.previous is not None:
        res["previous"] = previous_summary(json.loads(a.previous.read_text()))
    a.json_out.parent.mkdir(parents=True, exist_ok=True)
    a.json_out.write_text(json.dumps(res, indent=1, default=float) + "\n")
    text = markdown(res)
    print(text)
    if a.write_results:
        write_section(text)


if __name__ == "__main__":
    main()
