"""Regenerate a trained hidden-scanner model's test images with z from Gaussians fitted to its
training codes (plan_session26.md) and evaluate them like the trained arm. Usage: fitted_eval.py RESULTS_JSON OUTDIR"""
import json, shlex, subprocess, sys
from pathlib import Path
import numpy as np, torch
from ivus_sim.simulator import Simulator
from ivus_sim.simulator import learned
from ivus_sim.training.data import discover, load_pair, polar_sample
from ivus_sim.training.config import load_train_config

res = json.loads(Path(sys.argv[1]).read_text())
outdir = Path(sys.argv[2]); outdir.mkdir(parents=True, exist_ok=True)
orig = learned.LearnedBackend.draw_anchors
FIT = {}

def patched(self, k, seed, index):
    d = orig(self, k, seed, index)
    for key in ("z1", "z2"):
        d[key] = FIT[key][0] + d[key] @ FIT[key][1].T
    return d
learned.LearnedBackend.draw_anchors = patched
from ivus_sim.cli.main import app

rows = []
for r in res["rows"]:
    gen_cmd = shlex.split(r["arms"]["trained"]["generate"]["command"])
    ev_cmd = shlex.split(r["arms"]["trained"]["command"])
    run = Path(gen_cmd[gen_cmd.index("--model") + 1]); work = run.parent
    held = set(json.loads((run / "holdout_realism.json").read_text())["pairs"])
    refs = [x for x in discover(work / "train") if Path(x.image).name not in held]
    sim = Simulator.from_run(run, device="cpu", precision="fp32")
    m = sim.model
    cfg = load_train_config(run / "config.yaml")
    ss = [polar_sample(*load_pair(x), m.polar_shape, cfg.data.target, m.config.scan_conversion) for x in refs]
    b = {k: torch.stack([s[k] for s in ss]) for k in ("labels", "image", "mean")}
    with torch.no_grad():
        codes = {"z1": m.encode1(b["mean"], b["labels"].long()), "z2": m.encode2(b["image"], b["mean"], b["labels"].long())}
    for key, z in codes.items():
        mu = z.mean(0); cov = torch.cov(z.T) + 1e-4 * torch.eye(z.shape[1])
        FIT[key] = (mu, torch.linalg.cholesky(cov))
    fake = outdir / f"{r['scanner']}_fake"
    g = list(gen_cmd[1:]); g[g.index("--out") + 1] = str(fake); g += ["--overwrite", "--no-progress"]
    app(g, standalone_mode=False)
    e = list(ev_cmd); rep = outdir / f"{r['scanner']}_report"
    e[e.index("--fake") + 1] = str(fake); e[e.index("--out") + 1] = str(rep)
    subprocess.run([sys.executable, "-m", "ivus_sim.cli.main", *e[1:], "--quiet"], check=True, capture_output=True)
    acc = json.loads((rep / "realism.json").read_text())["c2st"]["accuracy"]
    rows.append({"scanner": r["scanner"], "n_train_codes": len(refs), "prior": r["arms"]["trained"]["c2st"], "fitted": acc,
                 "z_sd": {k: [round(float(v), 4) for v in torch.diagonal(FIT[k][1])] for k in FIT}})
    print(r["scanner"], len(refs), "prior %.3f fitted %.3f" % (r["arms"]["trained"]["c2st"], acc), flush=True)
(outdir / "fitted.json").write_text(json.dumps({"seed": res["seed"], "rows": rows}, indent=1))
