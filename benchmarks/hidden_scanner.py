"""Hidden-scanner test: does `ivus-sim train` learn a scanner it never saw from 13 frames?

Three scanners the shipped model never saw are made from the stage-0 physics engine with changed
presets (``configs/hidden_scanners/``):

* ``h1_40mhz_blood``: 40 MHz with echogenic blood (its own tissue table: brighter, denser lumen);
* ``h2_30mhz_dr60_wide``: 30 MHz, 60 dB display dynamic range, a wider beam;
* ``h3_20mhz_nurd``: 20 MHz with strong NURD and another tissue table.

For each scanner ``k`` (1, 2, 3) the script, end to end and through the CLI a user would run:

1. draws 25 random phantoms ``random_phantom(seed + 100 k, size=256, fov_mm=10, index=i)``
   and simulates them with the scanner (physics streams ``(seed + 100 k, "physics", i)``):
   phantoms 0-12 are the 13 training pairs (``train/00000_image.png`` + ``_label.png``), phantoms
   13-24 the 12 test frames (``test/frame_XX_image.png`` + ``frame_XX_label.png``): disjoint;
2. ``ivus-sim train --config <config> --data train/ --out run/ --seed <seed> --device cpu`` (the
   config the README names for your own data, ``own_data``, unchanged unless ``--steps``; the
   trainer itself holds 20 % of the pairs out and measures them, recorded as ``holdout``);
3. ``ivus-sim generate --model run/ --phantom test_labels/ --n 1`` and the same with the shipped
   default (no ``--model``) on the 12 test label maps;
4. ``ivus-sim evaluate --real test/ --fake <generated>/ --no-features`` (the classifier two-sample
   test, C2ST, of ``ivus_sim.metrics``: 0.5 = indistinguishable) for both, plus a control: the
   scanner itself with another speckle seed (``floor``, should be ~0.5), and the *grid round
   trip* (``roundtrip``): the real test frames sent to the trained model's polar grid and back with
   its scan conversion (``model.scan_conversion``), what a model that learned the scanner perfectly
   on that grid would show: the best C2ST the trained model can reach.

Target (issue 12): mean C2ST of the trained models <= 0.70 and below the shipped default's.

Every step is resumable (finished steps are skipped, an interrupted training resumes with
``--resume``, a finished one asked for more ``--steps`` is extended; ``--redo default`` measures a
new embedded default on the same frames), seeded, and logged under ``--work`` (default
``runs/hidden_scanner/``, git-ignored). ``--update-default RESULTS.json`` measures a new embedded
default on the frames of an earlier run whose work folder (and trained models) are gone: the
scanner frames are made again from their seeds (checked identical to the stored run by their mean
grey levels), the default arm is generated and evaluated, and only that arm of the JSON is replaced
(the trained, round-trip and floor arms are kept as measured);
results go to ``benchmarks/results/hidden_scanner/results.{json,md}`` and, with
``--write-results``, to the "Hidden-scanner test" section of ``benchmarks/RESULTS.md``.

Usage::

    nice -n 10 python benchmarks/hidden_scanner.py                      # the full benchmark
    nice -n 10 python benchmarks/hidden_scanner.py --write-results      # ... and update RESULTS.md
    python benchmarks/hidden_scanner.py --quick                         # development: 20 training
        # steps, a 2-epoch / 2-fold classifier, work in runs/hidden_scanner_quick/ (numbers meaningless)
    python benchmarks/hidden_scanner.py --scanners h2_30mhz_dr60_wide --steps 300   # one scanner, short
    python benchmarks/hidden_scanner.py --update-default benchmarks/results/hidden_scanner/seed1.json \
        --seed 1 --eval-seed 1 --work runs/hs1_default    # a new default on the frames of an earlier run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _results
import numpy as np
from _results import source_commit

ROOT = Path(__file__).resolve().parents[1]
SCANNER_DIR = ROOT / "configs" / "hidden_scanners"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
OUT_DIR = ROOT / "benchmarks" / "results" / "hidden_scanner"
SECTION = "## Hidden-scanner test"
SCANNERS = ("h1_40mhz_blood", "h2_30mhz_dr60_wide", "h3_20mhz_nurd")
N_TRAIN, N_TEST, SIZE, FOV_MM = 13, 12, 256, 10.0
ARMS = ("trained", "default", "floor", "roundtrip")
TARGET_C2ST = 0.70


def scanner_files(name: str) -> tuple[Path, Path | None]:
    """``(preset yaml, tissue table yaml or None)`` of a hidden scanner."""
    preset = SCANNER_DIR / f"{name}.yaml"
    tissues = SCANNER_DIR / f"{name}_tissues.yaml"
    if not preset.is_file():
        raise SystemExit(f"unknown hidden scanner {name!r}: no {preset}")
    return preset, tissues if tissues.is_file() else None


def _sha(path: Path | None) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path is not None else None


def rel(path: Path | str) -> str:
    """``path`` relative to the repository root when inside it (shorter, copyable commands)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def shown(cmd: list[str]) -> str:
    """A subprocess command as the user would type it (``ivus-sim ...``, relative paths)."""
    parts = ["ivus-sim", *cmd[3:]] if cmd[1:3] == ["-m", "ivus_sim.cli.main"] else cmd
    return shlex.join(rel(x) if x.startswith(str(ROOT)) else x for x in parts)


def cli(*args: str) -> list[str]:
    """The ``ivus-sim`` command of this interpreter."""
    return [sys.executable, "-m", "ivus_sim.cli.main", *args]


def run_logged(cmd: list[str], log: Path, env: dict[str, str]) -> float:
    """Run ``cmd`` with stdout/stderr appended to ``log``; seconds; SystemExit on failure."""
    t0 = time.perf_counter()
    with log.open("a") as fh:
        fh.write(f"\n$ {shlex.join(cmd)}\n")
        fh.flush()
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    if rc != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"command failed (exit {rc}): {shlex.join(cmd)}\n--- {log} (tail) ---\n{tail}")
    return time.perf_counter() - t0


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


class Bench:
    """The state of one run of the benchmark (arguments, work folders, environment)."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.work: Path = a.work
        self.env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
        self._redone: dict[tuple[Path, str], bool] = {}

    # ---------------------------------------------------------------- request identity
    def request(self, name: str, k: int) -> dict[str, Any]:
        preset, tissues = scanner_files(name)
        return {"scanner": name, "index": k, "preset_sha": _sha(preset), "tissues_sha": _sha(tissues),
                "seed": self.a.seed, "phantom_seed": self.a.seed + 100 * k, "n_train": N_TRAIN,
                "n_test": N_TEST, "size": SIZE, "fov_mm": FOV_MM, "config": self.a.config,
                "eval": self.eval_args()}

    def eval_args(self) -> list[str]:
        q = ["--epochs", "2", "--folds", "2"] if self.a.quick else []
        return ["--seed", str(self.a.eval_seed), *q, "--features" if self.a.features else "--no-features"]

    # ---------------------------------------------------------------- steps
    def make_data(self, d: Path, name: str, req: dict[str, Any]) -> dict[str, Any]:
        """The scanner's 13 training pairs, 12 test frames (disjoint phantoms) and a floor set."""
        marker = d / "data.json"
        if marker.exists():
            return json.loads(marker.read_text())
        import torch

        from ivus_sim.config import load_preset, load_tissue_acoustics
        from ivus_sim.io import save_png
        from ivus_sim.phantom.random import random_phantom
        from ivus_sim.physics import PhysicsSimulator
        from ivus_sim.physics.nurd import warp_cartesian

        torch.set_num_threads(self.a.threads)
        preset, tissues = scanner_files(name)
        sim = PhysicsSimulator(preset=load_preset(preset),
                               acoustics=load_tissue_acoustics(tissues) if tissues else None)
        ps = req["phantom_seed"]
        labels = np.stack([random_phantom(ps, size=SIZE, fov_mm=FOV_MM, index=i).labels[0]
                           for i in range(N_TRAIN + N_TEST)])
        res = sim.simulate(labels, seed=ps, fov_mm=FOV_MM)
        imgs = np.asarray(res.image)
        # control: the same test phantoms, the same scanner, other speckle (another physics seed)
        floor = np.asarray(sim.simulate(labels[N_TRAIN:], seed=ps + 1, fov_mm=FOV_MM,
                                        first_index=N_TRAIN).image)
        # the labels as a reader traces them on the displayed frame: with the frame's NURD warp
        labels = np.stack([warp_cartesian(labels[i], res.params["images"][i]["nurd"], order=0)
                           for i in range(len(labels))])
        for sub in ("train", "test", "test_labels", "fake_floor"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for i in range(N_TRAIN):
            save_png(d / "train" / f"{i:05d}_label.png", labels[i])
            save_png(d / "train" / f"{i:05d}_image.png", imgs[i])
        for j in range(N_TEST):
            lab, img = labels[N_TRAIN + j], imgs[N_TRAIN + j]
            save_png(d / "test" / f"frame_{j:02d}_label.png", lab)
            save_png(d / "test" / f"frame_{j:02d}_image.png", img)
            save_png(d / "test_labels" / f"frame_{j:02d}_label.png", lab)
            save_png(d / "fake_floor" / f"frame_{j:02d}_label_seed{ps + 1}_000.png", floor[j])
        info = {"phantoms": f"random_phantom({ps}, size={SIZE}, fov_mm={FOV_MM}, index=i), i = 0..{N_TRAIN - 1} "
                            f"train, {N_TRAIN}..{N_TRAIN + N_TEST - 1} test",
                "images": f"PhysicsSimulator({preset.relative_to(ROOT)}, "
                          f"{tissues.relative_to(ROOT) if tissues else 'shipped tissue table'})"
                          f".simulate(labels, seed={ps}); floor: seed={ps + 1}",
                "mean_grey_train": float(imgs[:N_TRAIN].mean()), "mean_grey_test": float(imgs[N_TRAIN:].mean())}
        write_json(marker, info)
        return info

    def train_config(self, d: Path) -> str:
        """The config passed to ``ivus-sim train``: the named one, or a copy with ``max_steps``."""
        if self.a.steps is None:
            return self.a.config
        import yaml

        from ivus_sim.training.config import train_config_path

        cfg = yaml.safe_load(train_config_path(self.a.config).read_text()) or {}
        t = cfg.setdefault("train", {})
        t["max_steps"] = int(self.a.steps)
        if "epochs" in t:  # let max_steps decide the length with a trainer that still counts epochs
            t["epochs"] = max(int(t["epochs"]), int(self.a.steps))
        t["checkpoint_every"] = min(int(t.get("checkpoint_every", 100)), max(1, self.a.steps // 2))
        cfg.setdefault("name", Path(self.a.config).stem)  # the same config but for its length
        path = d / "train_config.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return str(path)

    def train(self, d: Path) -> dict[str, Any]:
        marker = d / "train.json"
        old = json.loads(marker.read_text()) if marker.exists() else None
        if old is not None and old.get("steps_requested") == self.a.steps:
            return old
        run = d / "run"
        cfg = self.train_config(d)
        cmd = cli("train", "--config", cfg, "--data", str(d / "train"), "--out", str(run),
                  "--seed", str(self.a.seed), "--device", "cpu", "--no-progress")
        log = d / "train.log"
        # an interrupted run, or a finished one asked for other --steps: continue it (the trainer
        # extends a run whose config asks for more steps)
        resumed = run.exists() and any(run.iterdir())
        try:
            secs = run_logged(cmd + (["--resume"] if resumed else []), log, self.env)
        except SystemExit:
            if not resumed:
                raise
            shutil.rmtree(run)  # nothing usable to resume from: start this run afresh
            resumed = False
            secs = run_logged(cmd, log, self.env)
        info = {"command": shown(cmd), "seconds": secs + (old["seconds"] if old else 0.0), "resumed": resumed,
                "steps_requested": self.a.steps, "source_commit": source_commit(),
                "config": rel(cfg) if cfg.endswith(".yaml") else cfg, "run": rel(run)}
        card = next((p for p in (run / "model" / "model.json", run / "model.json") if p.exists()), None)
        if card is not None:
            c = json.loads(card.read_text())
            info["card"] = {k: c[k] for k in ("model_id", "steps", "step", "data") if k in c}
        hold = run / "holdout_realism.json"
        if hold.exists():  # the trainer's own realism check on pairs it held out of the 13
            h = json.loads(hold.read_text())
            info["holdout"] = {"n_pairs": h.get("n_pairs"), "c2st": (h.get("c2st") or {}).get("accuracy"),
                               "summary": h.get("summary")}
        write_json(marker, info)
        return info

    def generate(self, d: Path, arm: str) -> dict[str, Any]:
        out = d / f"fake_{arm}"
        marker = d / f"generate_{arm}.json"
        if arm == "floor":
            return {"command": "physics engine, same scanner, other speckle seed (see data.json)"}
        if arm == "roundtrip":
            return self.round_trip(d)
        model_key = json.loads((d / "train.json").read_text()).get("steps_requested") if arm == "trained" else None
        if arm in self.a.redo and marker.exists() and not self._redone.get((d, arm)):
            marker.unlink()  # --redo ARM (e.g. a new embedded default): generate and evaluate again
            self._redone[(d, arm)] = True
        if marker.exists():
            info = json.loads(marker.read_text())
            if info.get("model_key") == model_key:
                return info
        if out.exists():
            shutil.rmtree(out)  # an interrupted or outdated generate: redo (a few seconds)
        if (d / f"report_{arm}").exists():
            shutil.rmtree(d / f"report_{arm}")
        model = ["--model", str(d / "run")] if arm == "trained" else []
        cmd = cli("generate", "--phantom", str(d / "test_labels"), *model, "--n", "1", "--seed",
                  str(self.a.seed), "--size", str(SIZE), "--fov-mm", str(FOV_MM), "--device", "cpu",
                  "--out", str(out))
        secs = run_logged(cmd, d / "generate.log", self.env)
        side = sorted(out.glob("*.json"))
        rec = json.loads(side[0].read_text()) if side else {}
        model_id = rec.get("model_id")
        if model_id is None and isinstance(rec.get("model"), dict):
            model_id = rec["model"].get("id") or rec["model"].get("model_id")
        info = {"command": shown(cmd), "seconds": secs, "model_id": model_id, "model_key": model_key,
                "images": len(list(out.glob("*.png"))), "source_commit": source_commit()}
        write_json(marker, info)
        return info

    def round_trip(self, d: Path) -> dict[str, Any]:
        """The test frames through the trained model's polar grid and back (its scan conversion)."""
        import yaml

        from ivus_sim.geometry import cart_to_polar, polar_to_cart
        from ivus_sim.image import read_grey
        from ivus_sim.io import save_png
        from ivus_sim.two_stage import ModelConfig

        model = ModelConfig.from_dict(yaml.safe_load((d / "run" / "config.yaml").read_text())["model"])
        interp = model.scan_conversion
        key = f"{model.n_angles}x{model.n_samples} {interp.value}"
        out, marker = d / "fake_roundtrip", d / "generate_roundtrip.json"
        if marker.exists() and json.loads(marker.read_text()).get("model_key") == key:
            return dict(json.loads(marker.read_text()))
        if out.exists():
            shutil.rmtree(out)
        if (d / "report_roundtrip").exists():
            shutil.rmtree(d / "report_roundtrip")
        out.mkdir(parents=True)
        for img_path in sorted((d / "test").glob("frame_*_image.png")):
            img = read_grey(img_path).astype(np.float32) * 255.0
            pol = cart_to_polar(img, model.n_angles, model.n_samples, interp)
            back = np.asarray(polar_to_cart(pol, SIZE, interp, 0.0))
            save_png(out / img_path.name.replace("_image.png", "_label_seed0_000.png"),
                     np.clip(np.round(back), 0, 255).astype(np.uint8))
        info = {"command": f"the test frames -> polar {key} -> display (ivus_sim.geometry)", "model_key": key,
                "images": len(list(out.glob("*.png"))), "interp": interp.value}
        write_json(marker, info)
        return info

    def evaluate(self, d: Path, arm: str) -> dict[str, Any]:
        rep = d / f"report_{arm}"
        res = rep / "realism.json"
        if not res.exists():
            cmd = cli("evaluate", "--real", str(d / "test"), "--fake", str(d / f"fake_{arm}"), "--out", str(rep),
                      *self.eval_args(), "--device", "cpu", "--overwrite", "--quiet")
            run_logged(cmd, d / "evaluate.log", self.env)
        r = json.loads(res.read_text())
        c = r.get("c2st") or {}
        s = r["summary"]
        return {"c2st": s["c2st_accuracy"], "c2st_ci": s.get("c2st_accuracy_ci"), "auc": s.get("c2st_auc"),
                "c2st_ci_bootstrap": c.get("accuracy_ci_bootstrap") or c.get("accuracy_ci_frame_bootstrap"),
                "tissue_js_weighted": s.get("tissue_js_weighted"), "radial_l1": s.get("radial_profile_l1"),
                "frechet_ratio": (s["frechet_fake_vs_real"] / s["frechet_real_vs_real"]
                                  if s.get("frechet_fake_vs_real") and s.get("frechet_real_vs_real") else None),
                "command": shown(shlex.split(r["command"])) if r.get("command") else None,
                "fake_frames": r["inputs"]["fake_frames"],
                "real_frames": r["inputs"]["real_frames"]}

    def prepare(self, name: str, k: int) -> dict[str, Any]:
        """Check the work folder's request and make the data (fast, in this process)."""
        d = self.work / name
        d.mkdir(parents=True, exist_ok=True)
        req = self.request(name, k)
        rpath = d / "request.json"
        if rpath.exists() and json.loads(rpath.read_text()) != req:
            raise SystemExit(f"{d} holds a run with other settings ({rpath}); use another --work or --fresh")
        write_json(rpath, req)
        return {"scanner": name, "request": req, "data": self.make_data(d, name, req)}

    def measure(self, row: dict[str, Any], bar: Any) -> None:
        """Generate and evaluate every arm of one scanner (after its training)."""
        d = self.work / row["scanner"]
        row["arms"] = {}
        for arm in self.a.arms:
            bar.set_postfix_str(f"{row['scanner']}: {arm}")
            g = self.generate(d, arm)
            row["arms"][arm] = {**self.evaluate(d, arm), "generate": g}
            bar.update(1)


def update_default(a: argparse.Namespace) -> None:
    """``--update-default``: the default arm of an earlier run, measured again with today's default."""
    res = json.loads(a.update_default.read_text())
    if res.get("seed") != a.seed or res.get("quick"):
        raise SystemExit(f"{a.update_default} was run with --seed {res.get('seed')} (quick={res.get('quick')}); "
                         f"pass the same --seed and its --eval-seed")
    if a.work is None:
        a.work = ROOT / "runs" / f"hidden_scanner_default_seed{a.seed}"
    a.work.mkdir(parents=True, exist_ok=True)
    a.redo = ["default"]
    bench = Bench(a)
    for row in res["rows"]:
        name = row["scanner"]
        k = int(row["request"]["index"])
        req = bench.request(name, k)
        old = row["request"]
        if req["eval"] != old["eval"]:
            raise SystemExit(f"{name}: this call evaluates with {req['eval']}, the stored run with {old['eval']}")
        d = a.work / name
        d.mkdir(parents=True, exist_ok=True)
        data = bench.make_data(d, name, req)
        for key in ("mean_grey_train", "mean_grey_test"):  # the very frames of the stored run (a few pixels
            # may round to the next grey level: float sums in another order; 0.01 = ~1 % of pixels by 1 level)
            if abs(data[key] - row["data"][key]) > 0.01:
                raise SystemExit(f"{name}: the frames made now differ from the stored run's ({key} "
                                 f"{data[key]:.6f} vs {row['data'][key]:.6f}); the scanner or the engine changed")
        before = row["arms"]["default"]
        g = bench.generate(d, "default")
        row["arms"]["default"] = {**bench.evaluate(d, "default"), "generate": g,
                                  "replaced": {"model_id": before["generate"].get("model_id"), "c2st": before["c2st"],
                                               "measured_at": before["generate"].get("source_commit")}}
        print(f"{name}: default {before['generate'].get('model_id')} {before['c2st']:.3f} -> "
              f"{g.get('model_id')} {row['arms']['default']['c2st']:.3f}")
    res["summary"] = summarise(res["rows"])
    res.setdefault("notes", []).append(
        f"shipped-default arm re-measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at commit "
        f"{source_commit()} with `{shlex.join(['python', 'benchmarks/hidden_scanner.py', *sys.argv[1:]])}` "
        "(frames made again from their seeds, mean grey levels equal to 0.01; other arms as first measured)")
    write_json(a.update_default, res)
    if a.update_default.resolve() == (OUT_DIR / "results.json").resolve():
        (OUT_DIR / "results.md").write_text(markdown(res))


# -------------------------------------------------------------------- report

def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(arm: str) -> float | None:
        v = [r["arms"][arm]["c2st"] for r in rows if arm in r["arms"] and r["arms"][arm]["c2st"] is not None]
        return float(np.mean(v)) if v else None

    s: dict[str, Any] = {f"mean_c2st_{arm}": mean(arm) for arm in ARMS}
    t, dflt = s["mean_c2st_trained"], s["mean_c2st_default"]
    s["target_le_0_70"] = t is not None and t <= TARGET_C2ST
    s["target_below_default"] = t is not None and dflt is not None and t < dflt
    s["met"] = bool(s["target_le_0_70"] and s["target_below_default"])
    return s


def _f(x: Any, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _ci(x: Any) -> str:
    return f" [{x[0]:.2f}, {x[1]:.2f}]" if isinstance(x, (list, tuple)) and len(x) == 2 else ""


def markdown(res: dict[str, Any]) -> str:
    rows, s = res["rows"], res["summary"]
    quick = " **(--quick: development settings, numbers meaningless)**" if res["quick"] else ""
    steps = f"`--steps {res['steps']}` (a copy of `{res['config']}` with `train.max_steps: {res['steps']}`)" \
        if res["steps"] is not None else f"`--config {res['config']}` unchanged"
    folds = "2 folds, 2 epochs (--quick)" if res["quick"] else "4 folds by frame"
    defaults = sorted({str(r["arms"]["default"]["generate"].get("model_id")) for r in rows if "default" in r["arms"]})
    trained_code = sorted({str(r["train"].get("source_commit", "?")) for r in rows})
    lines = [SECTION, "",
             f"Measured {res['date']} with `{res['command']}`{quick}; code {res['commit']} (models trained with "
             f"code {', '.join(trained_code)}), {res['machine']}. "
             f"Three scanners the shipped model never saw, made by the physics engine with the presets in "
             f"`configs/hidden_scanners/` ({N_TRAIN} training pairs + {N_TEST} test frames of disjoint random "
             f"phantoms each, {SIZE} x {SIZE} px). Training: `ivus-sim train` with {steps} on the {N_TRAIN} "
             f"pairs (the trainer holds some out and measures them itself: *held-out C2ST*); test: `ivus-sim "
             f"evaluate --real test/ --fake <generated>/ --no-features` (classifier two-sample test on polar "
             f"patches, {folds}; 0.5 = indistinguishable, [Wilson 95 %]) of each model's images of the {N_TEST} "
             f"test label maps against the scanner's own {N_TEST} test frames. Shipped default: "
             f"{', '.join(f'`{m}`' for m in defaults) or '-'}. *Floor*: the scanner itself with another speckle "
             "seed (what the test gives for a perfect model). *Grid round trip*: the real test frames sent to "
             "the trained model's polar grid and back with its scan conversion (what a model that learned "
             "the scanner perfectly on its grid would give: the best the trained model can reach).",
             "",
             "| hidden scanner | trained on 13 frames: C2ST | shipped default: C2ST | floor (same scanner) | "
             "grid round trip (best possible) | held-out C2ST (pairs) | weighted JS trained / default | "
             "training [steps, min] |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, t = r["arms"], r["train"]

        def cell(arm: str, a: dict[str, Any] = a) -> str:
            return f"{_f(a[arm]['c2st'])}{_ci(a[arm].get('c2st_ci'))}" if arm in a else "-"

        def js(arm: str, a: dict[str, Any] = a) -> str:
            return _f(a[arm].get("tissue_js_weighted")) if arm in a else "-"

        h = t.get("holdout") or {}
        hold = f"{_f(h.get('c2st'))} ({h.get('n_pairs')})" if h else "-"
        n_steps = (t.get("card") or {}).get("steps", res["steps"] or "config")
        lines.append(f"| {r['scanner']} | {cell('trained')} | {cell('default')} | {cell('floor')} | "
                     f"{cell('roundtrip')} | {hold} | "
                     f"{js('trained')} / {js('default')} | {n_steps}, {t['seconds'] / 60:.0f} |")
    lines.append(f"| **mean** | **{_f(s['mean_c2st_trained'])}** | **{_f(s['mean_c2st_default'])}** | "
                 f"{_f(s['mean_c2st_floor'])} | {_f(s['mean_c2st_roundtrip'])} | | | |")
    verdict = ("met" if s["met"] else "**not met**")
    if res.get("notes"):
        lines += ["", *[f"- {n}" for n in res["notes"]]]
    lines += ["", f"Target (issue 12): mean C2ST of the trained models <= {TARGET_C2ST} "
                  f"({'yes' if s['target_le_0_70'] else 'no'}) and below the shipped default's "
                  f"({'yes' if s['target_below_default'] else 'no'}): {verdict}.", ""]
    lines += ["Scanners: " + "; ".join(f"`{r['scanner']}`: {r['description']}" for r in rows) + ".", "",
              f"The commands of one scanner (work folder `{res['work']}`):", "", "```bash"]
    r0 = rows[0] if rows else None
    if r0 is not None:
        lines += [r0["train"]["command"], *(r0["arms"][a]["generate"]["command"] for a in ("trained", "default")
                                           if a in r0["arms"]),
                  *(r0["arms"][a]["command"] for a in r0["arms"] if r0["arms"][a].get("command"))]
        if res.get("work_abs"):
            lines = [ln.replace(res["work_abs"], res["work"]) for ln in lines]
    lines += ["```", ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (see :func:`_results.write_section`)."""
    _results.write_section(text, SECTION)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scanners", nargs="+", default=list(SCANNERS), help="hidden scanners (configs/hidden_scanners)")
    ap.add_argument("--config", default="own_data", help="training config (the README's for your own data)")
    ap.add_argument("--steps", type=int, help="override train.max_steps (default: the config's own)")
    ap.add_argument("--seed", type=int, default=0, help="phantoms, physics and training seed")
    ap.add_argument("--eval-seed", type=int, default=0, help="`ivus-sim evaluate --seed`")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--features", action="store_true", help="also compute Fréchet/KID (slower)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of every step")
    ap.add_argument("--jobs", type=int, default=1, help="trainings run at once (one process each)")
    ap.add_argument("--redo", nargs="+", default=[], choices=("default", "trained"),
                    help="generate and evaluate these arms again (e.g. 'default' after a new embedded default)")
    ap.add_argument("--quick", action="store_true", help="development: 20 steps, 2-epoch 2-fold classifier")
    ap.add_argument("--work", type=Path, help="work folder (default runs/hidden_scanner[_quick]/)")
    ap.add_argument("--fresh", action="store_true", help="delete the work folder first")
    ap.add_argument("--json-out", type=Path, help="results JSON (default benchmarks/results/hidden_scanner/)")
    ap.add_argument("--write-results", action="store_true", help=f"replace '{SECTION}' in {RESULTS}")
    ap.add_argument("--note", action="append", default=[], help="a line for the results (repeatable)")
    ap.add_argument("--update-default", type=Path, metavar="RESULTS_JSON",
                    help="re-measure only the shipped-default arm of an earlier run's results (rewritten in place)")
    a = ap.parse_args()
    if a.update_default is not None:
        update_default(a)
        return
    if a.quick and a.steps is None:
        a.steps = 20
    if a.work is None:
        a.work = ROOT / "runs" / ("hidden_scanner_quick" if a.quick else "hidden_scanner")
    out_dir = a.work if a.quick else OUT_DIR
    json_out = a.json_out or out_dir / "results.json"
    if a.fresh and a.work.exists():
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True, exist_ok=True)
    for n in a.scanners:
        scanner_files(n)
    if "trained" not in a.arms:
        a.arms = ["trained", *a.arms]

    from tqdm.auto import tqdm

    bench = Bench(a)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    from concurrent.futures import ThreadPoolExecutor

    from ivus_sim.config import load_preset

    with tqdm(total=len(a.scanners) * (2 + len(a.arms)), desc="hidden scanners", unit="step") as bar:
        for n in a.scanners:
            bar.set_postfix_str(f"{n}: data")
            k = SCANNERS.index(n) + 1 if n in SCANNERS else 10 + len(rows)
            r = bench.prepare(n, k)
            r["description"] = load_preset(scanner_files(n)[0]).description.split(" - ", 1)[-1].split(" (")[0]
            rows.append(r)
            bar.update(1)
        bar.set_postfix_str(f"training {len(rows)} model(s), {a.jobs} at a time")

        def train_one(r: dict[str, Any]) -> None:
            r["train"] = bench.train(a.work / r["scanner"])
            bar.update(1)

        with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            list(pool.map(train_one, rows))  # re-raises the first failure
        for r in rows:
            bench.measure(r, bar)
    import torch

    commit = source_commit()
    argv = ["python", "benchmarks/hidden_scanner.py", *sys.argv[1:]]
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": shlex.join(argv),
           "commit": commit, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
           f"{a.threads} thread(s)", "quick": a.quick, "config": a.config, "steps": a.steps, "seed": a.seed,
           "work": rel(a.work), "work_abs": str(a.work.resolve()),
           "notes": a.note, "seconds_total_this_call": time.perf_counter() - t0, "target_c2st": TARGET_C2ST,
           "rows": rows, "summary": summarise(rows)}
    json_out.parent.mkdir(parents=True, exist_ok=True)
    write_json(json_out, res)
    text = markdown(res)
    (json_out.parent / "results.md").write_text(text)
    print(text)
    if a.write_results:
        if a.quick:
            raise SystemExit("--write-results is refused with --quick (development numbers)")
        write_section(text)


if __name__ == "__main__":
    main()
