"""Regenerate a trained hidden-scanner model's test images with z drawn from Gaussians fitted to its
training codes, and evaluate them exactly like the trained arm (plan_session26.md).

Usage (from the repository root, with the run folders of the results JSON on disk)::

    python benchmarks/results/hidden_scanner/fitted_codes_session26/fitted_eval.py \
        benchmarks/results/hidden_scanner/oversample2_seed3.json OUTDIR

For each scanner: the codes of the run's training pairs (its held-out pairs excluded) give a mean
and covariance per stage (+1e-4 I); the generation patches ``LearnedBackend.draw_anchors`` so the
same standard-normal draws become ``mu + L eps``; noise and everything else are as in the trained
arm's recorded commands. Writes ``OUTDIR/fitted.json``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from ivus_sim.simulator import Simulator, learned
from ivus_sim.training.config import load_train_config
from ivus_sim.training.data import discover, load_pair, polar_sample

FIT: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
_orig = learned.LearnedBackend.draw_anchors


def _patched(self: Any, k: int, seed: int, index: int) -> dict[str, torch.Tensor]:
    d = _orig(self, k, seed, index)
    for key in ("z1", "z2"):
        d[key] = FIT[key][0] + d[key] @ FIT[key][1].T
    return d


def main() -> None:
    learned.LearnedBackend.draw_anchors = _patched  # type: ignore[method-assign]
    from ivus_sim.cli.main import app

    res = json.loads(Path(sys.argv[1]).read_text())
    outdir = Path(sys.argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in res["rows"]:
        gen_cmd = shlex.split(r["arms"]["trained"]["generate"]["command"])
        ev_cmd = shlex.split(r["arms"]["trained"]["command"])
        run = Path(gen_cmd[gen_cmd.index("--model") + 1])
        held = set(json.loads((run / "holdout_realism.json").read_text())["pairs"])
        refs = [x for x in discover(run.parent / "train") if x.image.name not in held]
        m = Simulator.from_run(run, device="cpu", precision="fp32").model
        cfg = load_train_config(run / "config.yaml")
        ss = [polar_sample(*load_pair(x), m.polar_shape, cfg.data.target, m.config.scan_conversion) for x in refs]
        b = {k: torch.stack([s[k] for s in ss]) for k in ("labels", "image", "mean")}
        with torch.no_grad():
            codes = {"z1": m.encode1(b["mean"], b["labels"].long()),
                     "z2": m.encode2(b["image"], b["mean"], b["labels"].long())}
        for key, z in codes.items():
            cov = torch.cov(z.T) + 1e-4 * torch.eye(z.shape[1])
            FIT[key] = (z.mean(0), torch.linalg.cholesky(cov))
        fake, rep = outdir / f"{r['scanner']}_fake", outdir / f"{r['scanner']}_report"
        g = gen_cmd[1:]
        g[g.index("--out") + 1] = str(fake)
        app([*g, "--overwrite", "--no-progress"], standalone_mode=False)
        e = ev_cmd[1:]
        e[e.index("--fake") + 1], e[e.index("--out") + 1] = str(fake), str(rep)
        subprocess.run([sys.executable, "-m", "ivus_sim.cli.main", *e, "--quiet"], check=True, capture_output=True)
        acc = json.loads((rep / "realism.json").read_text())["c2st"]["accuracy"]
        rows.append({"scanner": r["scanner"], "n_train_codes": len(refs), "prior": r["arms"]["trained"]["c2st"],
                     "fitted": acc,
                     "z_sd": {k: [round(float(v), 4) for v in torch.diagonal(FIT[k][1])] for k in FIT}})
        print(r["scanner"], len(refs), f"prior {r['arms']['trained']['c2st']:.3f} fitted {acc:.3f}", flush=True)
    (outdir / "fitted.json").write_text(json.dumps({"seed": res["seed"], "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
