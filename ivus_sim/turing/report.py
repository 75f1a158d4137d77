"""Reports of a reader study: CSV exports, a JSON summary and a self-contained HTML page.

Files written by :func:`write_report` into the report folder:

* ``reads.csv`` - one row per answered trial. The first four columns follow the iMRMC
  layout (``readerID, caseID, modalityID, score``): the case is the trial's pair
  (``pair0007``; catch items ``obvious0001`` / ``realreal0001``), the modality ``turing2afc``
  and the score the signed confidence that the *left* image is real (``+c`` chose left,
  ``-c`` chose right; empty when no confidence was given). Then: trial index, block, kind,
  side of the real image, choice, whether the real image was chosen, confidence, response time.
* ``imrmc.csv`` - iMRMC-style per-image ratings for ROC analysis of the main trials: every
  image is a case with a **numeric** case id (the study's image id; iMRMC and RJafroc reject
  text ids), truth 1 = real, 0 = simulated in rows with ``readerID -1`` and ``modalityID
  truth``; each reader scores it ``+c`` when they chose it as real and ``-c`` when not; reads
  without a confidence are left out. ``imrmc_input.txt`` is the file iMRMC reads: a free-text
  description, ``N0:``, ``N1:``, ``NR:``, ``NM:``, ``BEGIN DATA:``, then the same rows as
  ``readerID,caseID,modalityID,score`` without a header line.
* ``mrmcaov.csv`` - the same per-image reads for R's MRMCaov, one row per reader and case:
  ``reader, treatment, case, truth, rating`` (e.g. ``mrmc(empirical_auc(truth, rating),
  treatment, reader, case, data = read.csv("mrmcaov.csv"))``).
* ``readers.csv`` - one row per reader (and ``pooled``) with every statistic.
* ``analysis.json`` - everything, machine-readable; ``verdict`` is the structured verdict
  (:mod:`ivus_sim.turing.verdict`), ``integrity`` the integrity check with the chain head.
* ``chain_head.txt`` - the audit-log head the results were computed from (keep it: a later
  ``turing analyze --anchor`` proves the answers analysed here were not changed since).
* ``report.html`` - the tables plus plots embedded as base64 PNG (no external assets).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.io import atomic_write, write_json
from ivus_sim.turing.analysis import ReaderResult, StudyAnalysis
from ivus_sim.turing.stats import roc_curve

__all__ = ["write_report", "reads_rows", "imrmc_rows", "reader_rows", "mrmcaov_rows", "imrmc_input_text"]

MODALITY = "turing2afc"


def _case_id(r: dict[str, Any]) -> str:
    kind = r["kind"]
    if r.get("truth") is not None and kind in ("main", "repeat"):
        return f"img{int(r['left_image']):04d}"  # single-image mode: the image is the case
    if kind in ("main", "repeat"):
        return f"pair{int(r['item']):04d}"
    return f"{'obvious' if kind == 'obvious' else 'realreal'}{int(r['item']):04d}"


def reads_rows(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    """Rows of ``reads.csv``."""
    import datetime as dt

    rows = []
    for r in analysis.reads:
        chose_real = "" if r["correct"] is None else int(r["correct"])
        rows.append({
            "readerID": r["reader_id"], "caseID": _case_id(r), "modalityID": MODALITY,
            "score": "" if r["signed_score"] is None else r["signed_score"],
            "trial_index": r["position"], "block": r["block"], "kind": r["kind"],
            "real_side": r["real_side"] or ("both" if r.get("truth") is None else ""),
            "truth": r.get("truth") or "", "choice": r["choice"], "chose_real": chose_real,
            "confidence": "" if r["confidence"] is None else r["confidence"],
            "rt_ms": "" if r["rt_ms"] is None else round(float(r["rt_ms"]), 1),
            "answered_utc": dt.datetime.fromtimestamp(r["answered_ns"] / 1e9, dt.timezone.utc).isoformat(),
            "times_shown": r["n_shown"], "repeat_of_trial": "" if r["repeat_of"] is None else r["repeat_of"],
            "left_image": f"img{int(r['left_image']):04d}",
            "right_image": "" if r["right_image"] is None else f"img{int(r['right_image']):04d}",
            "zoom": "" if r.get("zoom") is None else r["zoom"], "dpr": "" if r.get("dpr") is None else r["dpr"],
            "link_revoked": r.get("link_revoked", 0),
        })
    return rows


def _image_reads(analysis: StudyAnalysis) -> tuple[dict[int, int], list[tuple[str, int, int]]]:
    """Truth per image id and ``(reader, image id, signed rating)`` of the main trials with a confidence."""
    truth: dict[int, int] = {}
    ratings = []
    for r in analysis.reads:
        if r["kind"] != "main":
            continue
        if r.get("truth") is not None:  # single-image mode: the image is the case, rated directly
            img = int(r["left_image"])
            truth[img] = int(r["truth"] == "real")
            if r["confidence"] is not None:
                ratings.append((str(r["reader_id"]), img, int(r["signed_score"])))
            continue
        real_img = int(r["left_image"] if r["real_side"] == "left" else r["right_image"])
        fake_img = int(r["right_image"] if r["real_side"] == "left" else r["left_image"])
        truth[real_img], truth[fake_img] = 1, 0
        if r["confidence"] is None:
            continue
        c = int(r["confidence"])
        for img in (real_img, fake_img):
            ratings.append((str(r["reader_id"]), img, c if int(r["chosen_image"]) == img else -c))
    return truth, ratings


def imrmc_rows(analysis: StudyAnalysis) -> list[tuple[str, int, str, int]]:
    """``(readerID, caseID, modalityID, score)`` rows: truth rows first, then per-image ratings (numeric case ids)."""
    truth, ratings = _image_reads(analysis)
    return ([("-1", case, "truth", t) for case, t in sorted(truth.items())]
            + [(rid, case, MODALITY, score) for rid, case, score in ratings])


def imrmc_input_text(analysis: StudyAnalysis) -> str:
    """The iMRMC input file: description, ``N0/N1/NR/NM``, ``BEGIN DATA:``, then the rows of :func:`imrmc_rows`."""
    rows = imrmc_rows(analysis)
    truth = [t for t in rows if t[0] == "-1"]
    n_readers = len({t[0] for t in rows if t[0] != "-1"})
    head = (f"ivus-sim reader study {analysis.study_id} - per-image ratings of the main 2AFC trials\n"
            "case = image id; truth 1 = real, 0 = simulated; score = +confidence if the reader chose the image as "
            "real, -confidence otherwise\n"
            f"N0: {sum(1 for t in truth if t[3] == 0)}\nN1: {sum(1 for t in truth if t[3] == 1)}\n"
            f"NR: {n_readers}\nNM: 1\nBEGIN DATA:\n")
    return head + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows)


def mrmcaov_rows(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    """Rows of ``mrmcaov.csv``: ``reader, treatment, case, truth, rating`` (one per reader and image)."""
    truth, ratings = _image_reads(analysis)
    return [{"reader": rid, "treatment": MODALITY, "case": case, "truth": truth[case], "rating": score}
            for rid, case, score in ratings]


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
    return str(v)


def reader_rows(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    """Rows of ``readers.csv`` (one per reader, then ``pooled``)."""
    out = []
    for r in [*analysis.readers, analysis.pooled]:
        a = r.accuracy
        out.append({
            "reader": r.reader_id, "answered": r.n_answered, "scheduled": r.n_trials_scheduled,
            "main_correct": a.k, "main_n": a.n, "accuracy": a.estimate,
            "ci_exact_low": a.ci_exact[0], "ci_exact_high": a.ci_exact[1],
            "ci_wilson_low": a.ci_wilson[0], "ci_wilson_high": a.ci_wilson[1],
            "p_binomial": a.p_value, "p_holm": r.p_holm, "reject_holm": r.reject_holm,
            "tost_margin": r.tost.margin, "p_tost": r.tost.p_value, "equivalent": r.tost.equivalent,
            "sensitivity": r.side.sensitivity.estimate, "specificity": r.side.specificity.estimate,
            "left_rate": r.side.left_choices.estimate, "p_left_bias": r.side.left_choices.p_value,
            "d_prime": r.side.d_prime, "criterion": r.side.criterion,
            "auc": None if r.auc is None else r.auc.auc, "p_auc": None if r.auc is None else r.auc.p_value,
            "n_confidence": r.n_confidence,
            "consistency": None if r.consistency is None else r.consistency.estimate,
            "consistency_n": None if r.consistency is None else r.consistency.n,
            "obvious_accuracy": None if r.obvious is None else r.obvious.estimate,
            "obvious_n": None if r.obvious is None else r.obvious.n,
            "real_real_left_rate": None if r.real_real_left is None else r.real_real_left.estimate,
            "trend_odds_ratio_per_100": None if r.trend is None else r.trend.odds_ratio_per_100,
            "p_trend": None if r.trend is None else r.trend.p_value,
            "median_rt_ms": r.median_rt_ms, "schedule_balanced": r.schedule_balanced,
            "schedule_runs_p": r.schedule_runs_p,
        })
    return out


def _csv_bytes(header: list[str], rows: list[Any], prefix: str = "") -> bytes:
    buf = io.StringIO()
    buf.write(prefix)
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(header)
    for row in rows:
        w.writerow([row[h] for h in header] if isinstance(row, dict) else list(row))
    return buf.getvalue().encode()


def _png(fig: Any) -> str:
    from ivus_sim import plotting as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(an: StudyAnalysis) -> dict[str, str]:
    from ivus_sim import plotting as plt

    plots: dict[str, str] = {}
    rows: list[ReaderResult] = [*an.readers, an.pooled]
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(rows) + 1.2))
    ax.axvspan(0.5 - an.margin, 0.5 + an.margin, color="tab:green", alpha=0.15, label=f"0.5 ± {an.margin:.2f}")
    ax.axvline(0.5, color="k", lw=0.8)
    for i, r in enumerate(rows):
        a = r.accuracy
        if a.n:
            ax.errorbar(a.estimate, i, xerr=[[a.estimate - a.ci_exact[0]], [a.ci_exact[1] - a.estimate]], fmt="o",
                        color="tab:red" if r.reader_id == "pooled" else "tab:blue", capsize=3)
    ax.set_yticks(range(len(rows)), [r.reader_id for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (chose the real image), exact 95% CI")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    plots["forest"] = _png(fig)

    main = [r for r in an.reads if r["kind"] == "main"]
    if main:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        pos = np.array([r["position"] for r in main])
        cor = np.array([r["correct"] for r in main], float)
        width = max(5, math.ceil((pos.max() + 1) / 10))
        bins = pos // width
        xs = [(b + 0.5) * width for b in np.unique(bins)]
        ys = [cor[bins == b].mean() for b in np.unique(bins)]
        ns = [int((bins == b).sum()) for b in np.unique(bins)]
        se = [math.sqrt(max(y * (1 - y), 1e-9) / n) for y, n in zip(ys, ns, strict=True)]
        ax.errorbar(xs, ys, yerr=se, fmt="o-", capsize=3, label="all readers (±1 SE)")
        ax.axhline(0.5, color="k", lw=0.8)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"trial index (bins of {width})")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=8)
        plots["trend"] = _png(fig)

        conf = [r for r in main if r["signed_score"] is not None]
        if conf:
            fig, axs = plt.subplots(1, 2, figsize=(9, 3.6))
            s = np.array([r["signed_score"] for r in conf], float)
            y = np.array([r["real_side"] == "left" for r in conf], bool)
            fpr, tpr = roc_curve(s, y)
            axs[0].plot(fpr, tpr, "-o", ms=3, label=f"pooled AUC {an.pooled.auc.auc:.2f}" if an.pooled.auc else "")
            for rr in an.readers:
                mine = [r for r in conf if r["reader_id"] == rr.reader_id]
                if mine and rr.auc is not None:
                    f2, t2 = roc_curve(np.array([r["signed_score"] for r in mine], float),
                                       np.array([r["real_side"] == "left" for r in mine], bool))
                    axs[0].plot(f2, t2, lw=0.8, alpha=0.6, label=f"{rr.reader_id} {rr.auc.auc:.2f}")
            axs[0].plot([0, 1], [0, 1], "k:", lw=0.8)
            axs[0].set_xlabel("P(say left | real right)")
            axs[0].set_ylabel("P(say left | real left)")
            axs[0].set_title("ROC of signed confidence")
            axs[0].legend(fontsize=7)
            c = np.array([r["confidence"] for r in conf])
            k = np.array([r["correct"] for r in conf], bool)
            levels = np.arange(1, 6)
            axs[1].bar(levels - 0.2, [(c[k] == v).sum() for v in levels], 0.4, label="chose real")
            axs[1].bar(levels + 0.2, [(c[~k] == v).sum() for v in levels], 0.4, label="chose simulated")
            axs[1].set_xlabel("confidence")
            axs[1].set_ylabel("reads")
            axs[1].legend(fontsize=8)
            plots["roc"] = _png(fig)
    rts = np.array([r["rt_ms"] for r in an.reads if r["rt_ms"] is not None], float)
    if len(rts):
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(rts / 1000.0, bins=30)
        ax.set_xlabel("response time [s] (server-side, from last display to answer)")
        ax.set_ylabel("reads")
        plots["rt"] = _png(fig)
    return plots


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(an: StudyAnalysis, plots: dict[str, str]) -> str:
    e = html.escape
    summary_cols = ["reader", "main_correct", "main_n", "accuracy", "ci_exact_low", "ci_exact_high", "ci_wilson_low",
                    "ci_wilson_high", "p_binomial", "p_holm", "reject_holm", "p_tost", "equivalent"]
    side_cols = ["reader", "sensitivity", "specificity", "left_rate", "p_left_bias", "d_prime", "criterion", "auc",
                 "p_auc", "n_confidence"]
    catch_cols = ["reader", "consistency", "consistency_n", "obvious_accuracy", "obvious_n", "real_real_left_rate",
                  "trend_odds_ratio_per_100", "p_trend", "median_rt_ms", "schedule_balanced", "schedule_runs_p"]
    rows = reader_rows(an)
    audit_ok = bool(an.audit.get("passed", False))
    lvl, lvl_eq = round(100 * (1 - an.alpha)), round(100 * (1 - 2 * an.alpha))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Reader study report</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:1rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}"
        "td,th{border:1px solid #ccc;padding:.2rem .4rem}"
        ".warn{background:#fee;border:1px solid #c00;padding:.5rem}.concl{background:#eef;padding:.5rem}",
        "</style></head><body>",
        f"<h1>Reader study report</h1><p>study {e(an.study)} (id {e(an.study_id)})</p>",
        f"<p class='concl'>{e(an.conclusion)}</p>",
    ]
    if an.audit_forced or not audit_ok:
        parts.append("<p class='warn'>The leakage audit of this study failed and the build was forced: results may "
                     "reflect non-realism cues (see the audit below).</p>")
    if not an.chain_ok:
        problems = "; ".join(an.integrity.get("problems", []))
        parts.append("<p class='warn'>The integrity check FAILED (the database was modified outside the server; "
                     f"analysed anyway on request): {e(problems)}</p>")
    if an.verdict is not None:
        v = an.verdict
        parts.append(f"<h2>Verdict: {e(v.verdict)}</h2><p>Rule applied: {e(v.rule)}.</p>")
        parts.append(_table([{"reader": c.reader, "n": c.n, "estimate": c.estimate, "p_holm": c.p_difference,
                              "p_tost": c.p_equivalence, "call": c.call} for c in v.per_reader]))
        parts.append("<p>Rules: per reader first - any reader significantly above or below 0.5 (exact binomial, "
                     "Holm-adjusted) or a random-effects interval excluding 0.5 makes the frames distinguishable; "
                     "they are indistinguishable only when every reader is equivalent to chance (TOST) or the "
                     "readers-and-cases random-effects interval lies inside the margin; otherwise inconclusive. "
                     "The pooled binomial below treats reads as independent and is descriptive only.</p>")
    parts.append(f"<h2>Accuracy (margin ±{an.margin:.2f}, alpha {an.alpha})</h2>")
    parts.append(_table([{k: r[k] for k in summary_cols} for r in rows]))
    if "forest" in plots:
        parts.append(f"<img alt='accuracy per reader' src='{plots['forest']}'>")
    parts.append("<h2>Side bias and confidence</h2><p>sensitivity = P(choose left | real left), specificity = "
                 "P(choose right | real right); criterion c &gt; 0 means a preference for the right side.</p>")
    parts.append(_table([{k: r[k] for k in side_cols} for r in rows]))
    if "roc" in plots:
        parts.append(f"<img alt='ROC' src='{plots['roc']}'>")
    parts.append("<h2>Catch trials, trend, timing, schedule</h2>")
    parts.append(_table([{k: r[k] for k in catch_cols} for r in rows]))
    if "trend" in plots:
        parts.append(f"<img alt='accuracy vs trial index' src='{plots['trend']}'>")
    if "rt" in plots:
        parts.append(f"<img alt='response times' src='{plots['rt']}'>")
    parts.append("<h2>Agreement and random effects</h2>")
    if an.kappa is not None:
        k = an.kappa
        parts.append(f"<p>Fleiss' kappa {k.kappa:.3f} (bootstrap 95% CI {k.ci[0]:.3f} to {k.ci[1]:.3f}; "
                     f"{k.n_subjects} pairs x {k.n_raters} readers)</p>")
    else:
        parts.append("<p>Fleiss' kappa: not estimable (needs 2+ readers sharing 2+ answered pairs)</p>")
    if an.mixed is not None:
        m = an.mixed
        boot = "" if m.bootstrap_ci is None else (f"; two-way bootstrap {lvl}% interval {m.bootstrap_ci[0]:.3f} to "
                                                  f"{m.bootstrap_ci[1]:.3f}")
        parts.append(f"<p>Readers-and-pairs random-effects accuracy {m.accuracy:.3f} ({lvl}% interval {m.ci[0]:.3f} "
                     f"to {m.ci[1]:.3f}, {lvl_eq}% interval {m.ci_equivalence[0]:.3f} to {m.ci_equivalence[1]:.3f}; "
                     f"SE {m.se:.3f}, {m.df:.1f} df){boot}; variance components readers {m.reader_var:.4f}, pairs "
                     f"{m.case_var:.4f}, residual {m.residual_var:.4f}; {m.n_readers} readers x {m.n_cases} pairs "
                     f"(the largest complete block); {e(m.method)}</p>")
    else:
        parts.append("<p>Random-effects analysis: not estimable (needs 2+ readers sharing 2+ answered pairs)</p>")
    parts.append("<h2>Leakage audit</h2>")
    checks = an.audit.get("checks", [])
    parts.append(_table([{"cue": c["name"], "flagged": c["flagged"], "auc": c.get("auc"), "p": c.get("p_value"),
                          "detail": c.get("detail", "")} for c in checks]))
    ig = an.integrity
    parts.append(f"<h2>Integrity</h2><p>{'verified' if an.chain_ok else 'FAILED'}: chain of {ig.get('n_entries')} "
                 f"entries, head {e(str(ig.get('head_hash')))} (entry {ig.get('head_seq')}); "
                 f"{ig.get('anchored_entries')} entries matched the anchor file"
                 f"{'; external anchor checked' if ig.get('external_anchor') else ''}. "
                 f"{e(' '.join(ig.get('warnings', [])))}</p></body></html>")
    return "".join(parts)


def write_report(analysis: StudyAnalysis, out: str | Path, *, plots: bool = True) -> dict[str, Path]:
    """Write the CSV exports, ``analysis.json`` and ``report.html`` into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    reads = reads_rows(analysis)
    header = list(reads[0]) if reads else ["readerID", "caseID", "modalityID", "score"]
    paths["reads"] = atomic_write(out / "reads.csv", lambda fh: fh.write(_csv_bytes(header, reads)))
    im = imrmc_rows(analysis)
    im_header = ["readerID", "caseID", "modalityID", "score"]
    paths["imrmc"] = atomic_write(out / "imrmc.csv", lambda fh: fh.write(_csv_bytes(im_header, im)))
    text = imrmc_input_text(analysis)
    paths["imrmc_input"] = atomic_write(out / "imrmc_input.txt", lambda fh: fh.write(text.encode()))
    mr = mrmcaov_rows(analysis)
    mr_header = ["reader", "treatment", "case", "truth", "rating"]
    paths["mrmcaov"] = atomic_write(out / "mrmcaov.csv", lambda fh: fh.write(_csv_bytes(mr_header, mr)))
    ig = analysis.integrity
    head = (f"{ig.get('head_hash', '')}\n# audit-log head (entry {ig.get('head_seq')}) of study "
            f"{analysis.study_id} when these results were computed; verify later with "
            "`ivus-sim turing analyze STUDY --anchor <head>`\n")
    paths["chain_head"] = atomic_write(out / "chain_head.txt", lambda fh: fh.write(head.encode()))
    rr = reader_rows(analysis)
    paths["readers"] = atomic_write(out / "readers.csv", lambda fh: fh.write(_csv_bytes(list(rr[0]), rr)))
    paths["json"] = write_json(out / "analysis.json", json.loads(json.dumps(analysis.to_dict(), default=str)))
    doc = _html(analysis, _plots(analysis) if plots else {})
    paths["html"] = atomic_write(out / "report.html", lambda fh: fh.write(doc.encode()))
    return paths
