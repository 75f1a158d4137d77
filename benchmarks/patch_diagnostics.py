"""What tells generated frames from real ones? Paired patch features, the classifier test's own patches.

A development diagnostic beside ``ivus-sim evaluate``'s classifier two-sample test: it draws the
test's own polar patches (:func:`ivus_sim.metrics.patches.extract_patches`, same seed and stream,
so a generated frame and the real frame of the same name are sampled at the same positions) and
compares hand-made features of each pair (fake minus real):

* level: mean, 5th / 50th / 95th percentile, fraction black (< 2) and white (> 250);
* contrast: std, std of the 8 x 8 block means, std around them, skewness;
* grain: normalised autocorrelation at lags 1 and 3 along angle and along depth.

It prints the mean paired difference over all patches (in units of the real features' standard
deviation), per dominant tissue and per depth band (in grey levels), and the accuracy of a
logistic regression on the features, cross-validated with the test's frame folds (a "feature
C2ST"; 0.5 = the features do not separate the sets), with each feature group alone and left out.
A group whose removal drops the accuracy is what the classifier can use.

Usage::

    python benchmarks/patch_diagnostics.py --real runs/hidden_scanner/h1_40mhz_blood/test \\
        --fake runs/hidden_scanner/h1_40mhz_blood/fake_trained [--fake ...] [--json-out F]

The real folder needs label maps (``frame_XX_label.png``); the fakes are matched by frame name.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ivus_sim.errors import IvusSimError
from ivus_sim.metrics.c2st import assign_folds
from ivus_sim.metrics.imageset import base_name, load_image_set, to_polar
from ivus_sim.metrics.patches import PatchConfig, extract_patches
from ivus_sim.tissues import TISSUES, Tissue

GROUPS = {
    "level": ("mean", "p5", "p50", "p95", "black", "white"),
    "contrast": ("std", "std_block", "std_resid", "skew"),
    "grain": ("acf_a1", "acf_a3", "acf_d1", "acf_d3"),
}
SHOWN = ("mean", "std", "std_resid", "p5", "p95", "acf_a1", "acf_d1", "black")
DEPTH_BANDS = ((0.15, 0.375), (0.375, 0.6), (0.6, 0.85))  # patch start, fraction of the FOV radius


def features(patches: np.ndarray) -> dict[str, np.ndarray]:
    """Per-patch features of ``(P, n, n)`` patches in [0, 1] (n divisible by 8); grey levels 0-255."""
    x = patches.astype(np.float64) * 255.0
    p, n = x.shape[0], x.shape[1]
    xc = x - x.mean((1, 2), keepdims=True)
    var = (xc**2).mean((1, 2)) + 1e-6
    q = np.percentile(x.reshape(p, -1), [5, 50, 95], axis=1)
    b = n // 8
    blocks = x.reshape(p, b, 8, b, 8).mean((2, 4))
    resid = x - np.repeat(np.repeat(blocks, 8, 1), 8, 2)

    def acf(lag: int, axis: int) -> np.ndarray:
        a = xc[:, lag:] * xc[:, :-lag] if axis == 1 else xc[:, :, lag:] * xc[:, :, :-lag]
        return a.mean((1, 2)) / var

    return {"mean": x.mean((1, 2)), "std": np.sqrt(var), "p5": q[0], "p50": q[1], "p95": q[2],
            "black": (x < 2).mean((1, 2)), "white": (x > 250).mean((1, 2)),
            "std_block": blocks.std((1, 2)), "std_resid": resid.std((1, 2)),
            "skew": ((xc / np.sqrt(var)[:, None, None]) ** 3).mean((1, 2)),
            "acf_a1": acf(1, 1), "acf_a3": acf(3, 1), "acf_d1": acf(1, 2), "acf_d3": acf(3, 2)}


def _fit_logistic(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-regularised logistic regression ``(w, b)`` on ``x (N, F)``, labels ``y (N,)`` (L-BFGS)."""
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + 1e-3 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)  # type: ignore[arg-type]
    return w.detach(), b.detach()


def logistic_accuracy(x: np.ndarray, y: np.ndarray, fold: np.ndarray) -> float:
    """Out-of-fold accuracy of a logistic regression on standardised features ``x (N, F)``."""
    correct = np.zeros(len(y), dtype=bool)
    for k in np.unique(fold):
        tr, te = fold != k, fold == k
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
        w, b = _fit_logistic(torch.tensor((x[tr] - mu) / sd), torch.tensor(y[tr], dtype=torch.float64))
        score = torch.tensor((x[te] - mu) / sd) @ w + b
        correct[te] = (score.numpy() > 0) == (y[te] == 1)
    return float(correct.mean())


def tissue_name(t: int) -> str:
    try:
        return TISSUES[Tissue(t)].name
    except (ValueError, KeyError):
        return str(t)


def compare(real_dir: Path, fake_dir: Path, seed: int, patch: int, per_frame: int) -> dict[str, Any]:
    """Every number of one fake folder against the real one (see module docstring)."""
    real = load_image_set(real_dir, role="real")
    if not real.has_labels:
        raise IvusSimError(f"{real_dir}: every real frame needs a label map (frame_XX_label.png)")
    pr = to_polar(real)
    assert pr.labels is not None
    cfg = PatchConfig(patch, per_frame)
    rp = extract_patches(pr.images, pr.names, cfg, seed, "learned")
    lp = extract_patches(pr.labels.astype(np.float64), pr.names, cfg, seed, "learned")
    labels = np.rint(lp.data * 255.0).astype(np.int64)
    dominant = np.array([np.bincount(p.ravel(), minlength=256).argmax() for p in labels])
    fake = load_image_set(fake_dir, role="fake")
    pf = to_polar(fake)
    names = [base_name(n) for n in pf.names]
    missing = sorted(set(pr.names) - set(names))
    if missing:
        raise IvusSimError(f"{fake_dir}: no generated frame for {', '.join(missing[:3])}"
                           f"{' ...' if len(missing) > 3 else ''}")
    order = [names.index(n) for n in pr.names]  # one generated frame per real frame, in the real order
    fp = extract_patches(pf.images[order], list(pr.names), cfg, seed, "learned")
    fr, ff = features(rp.data), features(fp.data)
    out: dict[str, Any] = {"fake": str(fake_dir), "patches": len(rp)}
    out["all_in_sd"] = {k: float((ff[k] - fr[k]).mean() / (fr[k].std() + 1e-9)) for k in fr}
    out["by_tissue"] = {}
    for t in sorted(np.unique(dominant)):
        sel = dominant == t
        if sel.sum() >= 12:
            out["by_tissue"][tissue_name(int(t))] = {"n": int(sel.sum()),
                                                    **{k: float((ff[k][sel] - fr[k][sel]).mean()) for k in SHOWN}}
    n_s = pr.images.shape[-1]
    out["by_depth"] = {}
    for lo, hi in DEPTH_BANDS:
        sel = (rp.corner[:, 1] >= round(lo * n_s)) & (rp.corner[:, 1] < round(hi * n_s))
        if sel.any():
            out["by_depth"][f"{lo:.2f}-{hi:.2f}"] = {"n": int(sel.sum()),
                                                    **{k: float((ff[k][sel] - fr[k][sel]).mean()) for k in SHOWN}}
    keys = list(fr)
    x = np.concatenate([np.stack([fr[k] for k in keys], 1), np.stack([ff[k] for k in keys], 1)])
    y = np.r_[np.zeros(len(rp)), np.ones(len(fp))]
    real_fold, fake_fold = assign_folds(list(pr.names), list(pr.names), 4, seed)
    fold = np.r_[[real_fold[pr.names[f]] for f in rp.frame], [fake_fold[pr.names[f]] for f in fp.frame]]
    out["feature_c2st"] = {"all": logistic_accuracy(x, y, fold)}
    for g, cols in GROUPS.items():
        idx = [keys.index(c) for c in cols]
        rest = [i for i in range(len(keys)) if i not in idx]
        out["feature_c2st"][f"only {g}"] = logistic_accuracy(x[:, idx], y, fold)
        out["feature_c2st"][f"without {g}"] = logistic_accuracy(x[:, rest], y, fold)
    return out


def report(r: dict[str, Any]) -> str:
    lines = [f"== {r['fake']} ({r['patches']} patch pairs)",
             "  fake - real, in sd of the real feature: "
             + "  ".join(f"{k} {v:+.2f}" for k, v in r["all_in_sd"].items())]
    for title, rows in (("tissue", r["by_tissue"]), ("depth", r["by_depth"])):
        for name, row in rows.items():
            lines.append(f"  {title} {name:>14} n={row['n']:3d}  " + " ".join(
                f"{k} {row[k]:+.3g}" for k in SHOWN))
    lines.append("  feature C2ST: " + ", ".join(f"{k} {v:.3f}" for k, v in r["feature_c2st"].items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, required=True, help="real frames with label maps")
    ap.add_argument("--fake", type=Path, action="append", required=True, help="generated frames (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="the evaluate --seed whose patches to use")
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--per-frame", type=int, default=32)
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    if args.patch % 8:
        sys.exit("error: --patch must be a multiple of 8")
    torch.set_num_threads(1)
    try:
        results = [compare(args.real, f, args.seed, args.patch, args.per_frame) for f in args.fake]
    except IvusSimError as e:
        sys.exit(f"error: {e}")
    for r in results:
        print(report(r))
    if args.json_out:
        args.json_out.write_text(json.dumps({"real": str(args.real), "seed": args.seed, "results": results}, indent=1))


if __name__ == "__main__":
    main()
