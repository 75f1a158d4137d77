"""Realism report: ``realism.json`` (every number) and ``realism.html`` (tables and plots).

The HTML is self-contained: plots are matplotlib figures embedded as base64 PNG, no scripts,
no CDN, so it can be archived or mailed. Both files are written atomically; the JSON holds
the inputs (with image hashes), the configuration and the seed, so the report can be
regenerated with ``ivus-sim evaluate``.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.io import atomic_write, check_writable, write_json
from ivus_sim.metrics.evaluate import Evaluation

__all__ = ["REPORT_JSON", "REPORT_HTML", "render_html", "write_report"]

REPORT_JSON = "realism.json"
REPORT_HTML = "realism.html"
_REAL, _FAKE, _REF = "#0072B2", "#D55E00", "#009E73"  # Okabe-Ito


def _png(fig: Any) -> str:
    from ivus_sim import plotting as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _plt() -> Any:
    from ivus_sim import plotting

    return plotting


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return html.escape(str(v))


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _hist_grid(hists: dict[str, list[tuple[str, list[float], str]]], title: str) -> str:
    plt = _plt()
    names = list(hists)
    if not names:
        return ""
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    centres = (np.arange(32) + 0.5) * 8
    for ax, name in zip(axes.flat, names, strict=False):
        for label, h, colour in hists[name]:
            ax.step(centres, h, where="mid", color=colour, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 256)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _profile_plot(curves: list[tuple[str, list[float], str]], title: str, xlabel: str, ylabel: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    for label, y, colour in curves:
        arr = np.array([np.nan if v is None else v for v in y], dtype=float)
        x = (np.arange(arr.size) + 0.5) / arr.size if "radius" in xlabel else np.arange(1, arr.size + 1)
        ax.plot(x, arr, color=colour, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _autocorr_plot(speckle: dict[str, Any]) -> str:
    plt = _plt()
    sets = [(k, c) for k, c in (("real", _REAL), ("fake", _FAKE)) if k in speckle]
    tissues = [t for t in speckle[sets[0][0]] if speckle[sets[0][0]][t].get("ac_angle") is not None]
    if not tissues:
        return ""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    styles = ["-", "--", ":", "-."]
    for ti, t in enumerate(tissues[:4]):
        for key, colour in sets:
            st = speckle[key].get(t)
            if not st or st.get("ac_angle") is None:
                continue
            for ax, prof in zip(axes, (st["ac_angle"], st["ac_depth"]), strict=True):
                ax.plot(np.arange(len(prof)), prof, styles[ti], color=colour, label=f"{key} {t}")
    axes[0].set_title("autocorrelation along angle", fontsize=10)
    axes[1].set_title("autocorrelation along A-line (depth)", fontsize=10)
    for ax in axes:
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set_xlabel("lag [polar samples]")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _patch_grid(patches: np.ndarray, info: list[dict[str, Any]]) -> str:
    plt = _plt()
    k = len(patches)
    cols = min(8, k)
    rows = (k + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p, meta in zip(axes.flat, patches, info, strict=False):
        ax.imshow(p.T, cmap="gray", vmin=0, vmax=1, origin="upper")  # depth downwards
        ax.set_title(f"{meta['frame']}\n{meta['angle']}°", fontsize=6)
    fig.suptitle("simulated patches the classifier found most 'fake' (angle across, depth down)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def render_html(ev: Evaluation) -> str:
    """The HTML report of an evaluation (self-contained)."""
    r = ev.results
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>ivus-sim realism report</title><style>",
             "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
             "font-size:13px;text-align:right}th{background:#eee}img{max-width:100%}",
             "</style></head><body><h1>ivus-sim realism report</h1>"]
    inp = r["inputs"]
    parts.append(f"<p>simulated: <code>{html.escape(str(inp['fake']))}</code> ({inp['fake_frames']} frames); "
                 f"real: <code>{html.escape(str(inp['real']))}</code> ({inp['real_frames']} frames); "
                 f"reference figures: <code>{html.escape(str(inp.get('reference_stats')))}</code>; "
                 f"seed {r['config']['seed']}; ivus-sim {r['ivus_sim_version']}</p>")
    parts.append(f"<p><small>Geometry: {html.escape(r['geometry'])}</small></p>")
    parts.append("<h2>Summary</h2>" + _table([[k, v] for k, v in r["summary"].items()], ["figure", "value"]))
    parts.append("<p><small>C2ST accuracy/AUC: 0.5 = indistinguishable, 1 = trivially told apart. Fréchet/KID: "
                 "compare fake-vs-real with the real-vs-real floor. JS in bits (0-1), W1 in grey levels.</small></p>")
    if r["notes"]:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in r["notes"]) + "</ul>")

    it = r.get("intensity")
    cal = r.get("calibration") or {}
    if it:
        rows = [[n, t["pixels_real"], t["pixels_fake"], t["js"], t["w1"], t["mean_real"], t["mean_fake"],
                 t["std_real"], t["std_fake"], t["quantile_diff"]] for n, t in it["tissues"].items()]
        parts.append("<h2>Per-tissue intensity</h2>" + _table(
            rows, ["tissue", "px real", "px fake", "JS", "W1", "mean real", "mean fake", "std real", "std fake",
                   "q5/25/50/75/95 diff"]))
        parts.append(f"<p>pixel-weighted JS {_fmt(it['js_weighted'])}, W1 {_fmt(it['w1_weighted'])}, "
                     f"|mean diff| {_fmt(it['abs_mean_diff_weighted'])}; max JS {_fmt(it['js_max'])}</p>")
        parts.append(_hist_grid({n: [("real", t["hist_real"], _REAL), ("simulated", t["hist_fake"], _FAKE)]
                                 for n, t in it["tissues"].items()}, "display-value histograms per tissue"))
    if cal.get("fake_vs_reference") and ev.reference is not None:
        cmp_ = cal["fake_vs_reference"]
        rows = [[n, t["js"], t["mean_ref"], t["mean_sim"], t["std_ref"], t["std_sim"], t["quantile_diff"]]
                for n, t in cmp_["tissues"].items()]
        parts.append("<h2>Against the reference figures</h2>" + _table(
            rows, ["tissue", "JS", "mean ref", "mean sim", "std ref", "std sim", "q diff"]))
        parts.append(f"<p>weighted JS {_fmt(cmp_['tissue_js_weighted'])}, max JS {_fmt(cmp_['tissue_js_max'])}, "
                     f"radial profile L1 {_fmt(cmp_['radial_profile_l1'])}; speckle sim "
                     f"{_fmt(str(cmp_['speckle_sim']))} vs ref {_fmt(str(cmp_['speckle_ref']))}</p>")
        fs = cal["fake_stats"]["tissues"]
        parts.append(_hist_grid({n: [("reference", t["hist32"], _REF), ("simulated", fs[n]["hist32"], _FAKE)]
                                 for n, t in ev.reference["tissues"].items() if n in fs},
                                "histograms vs reference figures"))
    sp = r.get("speckle")
    if sp:
        keys = ["patches", "mean_over_std", "nakagami_m", "nakagami_omega", "nakagami_m_pooled", "fwhm_angle_px",
                "fwhm_depth_px"]
        rows = [[f"{s} {t}", *[st.get(k) for k in keys]] for s in ("real", "fake") if s in sp
                for t, st in sp[s].items()]
        parts.append("<h2>Speckle</h2>" + _table(rows, ["set / tissue", *keys]))
        if sp.get("comparison"):
            parts.append(f"<p>mean |ln(fake/real)| over tissues and figures: "
                         f"{_fmt(sp['comparison']['mean_abs_log_ratio'])}</p>")
        parts.append(_autocorr_plot(sp))
    rp = r.get("radial_profile")
    if rp:
        curves = [("simulated", rp["fake_full"], _FAKE)]
        if "real_full" in rp:
            curves.insert(0, ("real", rp["real_full"], _REAL))
        parts.append("<h2>Radial profile and shadowing</h2>")
        if "l1_10" in rp:
            parts.append(f"<p>10-bin profile L1 {_fmt(rp['l1_10'])} grey levels</p>")
        parts.append(_profile_plot(curves, "mean intensity vs depth", "depth [fraction of FOV radius]",
                                   "mean display value"))
    sh = r.get("shadow") or {}
    sc = [(k, sh[k]["ratio"], c) for k, c in (("real", _REAL), ("fake", _FAKE)) if sh.get(k)]
    if sc:
        parts.append(_table([[k, sh[k]["shadow_ratio"], sh[k]["shadow_depth_px"], sh[k]["alines"]]
                             for k, _, _ in sc], ["set", "shadow ratio", "shadow depth [px of 160]", "A-lines"]))
        parts.append(_profile_plot(sc, "intensity behind calcium / same tissue & depth elsewhere",
                                   "samples behind calcium", "ratio"))
    c = r.get("c2st")
    if c:
        parts.append("<h2>Classifier two-sample test</h2>")
        parts.append(_table([[c["accuracy"], c["accuracy_ci_wilson"], c["accuracy_ci_bootstrap"], c["auc"],
                              c["auc_ci_bootstrap"], c["patches_real"], c["folds"], c["distinguishable"]]],
                            ["accuracy", "Wilson 95%", "frame bootstrap 95%", "AUC", "AUC 95%", "patches/class",
                             "folds", "distinguishable"]))
        if ev.most_fake is not None and len(ev.most_fake):
            parts.append(_patch_grid(ev.most_fake, c["most_fake"]))
    f = r.get("features")
    if f:
        parts.append("<h2>Feature distances</h2>")
        parts.append(_table([[k, f[k]["frechet"], f[k]["kid"], f[k]["kid_std"], f[k]["mmd_linear"]]
                             for k in ("fake_vs_real", "real_vs_real")],
                            ["pair", "Fréchet", "KID", "KID std", "MMD (linear)"]))
        parts.append(f"<p><small>{html.escape(f['extractor'])}; {f['n_per_set']} patches per set, "
                     f"{f['dims']} dims</small></p>")
    d = r.get("diversity")
    if d:
        parts.append("<h2>Diversity</h2>" + _table([[d["mean_l1"], d["mean_1_minus_ssim"], d["groups"], d["pairs"]]],
                                                    ["mean L1", "mean 1-SSIM", "groups", "pairs"]))
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)


def _finite(obj: Any) -> Any:
    """Replace non-finite floats by ``None`` (strict JSON has no NaN/Infinity)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float | np.floating) and not np.isfinite(obj):
        return None
    return obj


def write_report(out_dir: str | Path, ev: Evaluation, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``realism.json`` and ``realism.html`` into ``out_dir`` (atomically).

    Raises:
        IvusSimError: when a report exists there and ``overwrite`` is false.
    """
    out = Path(out_dir)
    jp, hp = out / REPORT_JSON, out / REPORT_HTML
    check_writable(jp, overwrite)
    check_writable(hp, overwrite)
    text = render_html(ev)  # render first: a plotting failure leaves no partial report
    write_json(jp, _finite(ev.results))
    atomic_write(hp, lambda fh: fh.write(text.encode()))
    return jp, hp
