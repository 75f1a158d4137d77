"""Analysis of a reader study: every statistic of :mod:`ivus_sim.turing.stats`, per reader and pooled.

Definitions (main trials only unless stated; catch trials are analysed separately):

* ``correct``: the reader chose the real image. Accuracy 0.5 = chance, i.e. the simulation
  fools the readers; a *significantly low* accuracy means readers systematically took the
  simulated image for the real one (they can tell them apart, with the labels reversed).
* per reader: accuracy (exact and Wilson 95 % intervals), two-sided exact binomial test vs 0.5
  (Holm-adjusted across readers), TOST equivalence within ``+-margin``, sensitivity /
  specificity of the "real image is on the left" decision, left-choice rate, d' and criterion,
  consistency on repeated (side-swapped) pairs = the same *image* chosen both times, accuracy
  on obvious-fake catch trials, left-choice rate on real-vs-real trials, ROC AUC of the signed
  confidence (``+c`` for "left", ``-c`` for "right", against "real is left"; trials without a
  confidence are left out, never imputed), logistic trend of correctness on trial index.
* pooled: the same on all main reads (a pooled binomial treats reads as independent; the
  reader-and-pair random-effects estimate below accounts for the clustering).
* agreement: Fleiss' kappa over readers on the main pairs every answering reader has read
  (category: chose the real / the simulated image), percentile bootstrap over pairs.
* random effects: readers and pairs as crossed random effects on correctness
  (:func:`ivus_sim.turing.stats.crossed_random_effects`: two-way ANOVA variance components,
  Satterthwaite t interval; a two-way bootstrap beside it).
* schedule check: exact real-left balance and a runs test of each reader's real-left sequence.
* verdict: :mod:`ivus_sim.turing.verdict` - per reader first, then the random-effects interval.
* single-image mode (trials with a ``truth``): the same tables with "left" read as "real"
  (sensitivity = P(real | real frame), specificity = P(simulated | simulated frame), AUC of the
  signed rating), and the verdict from :mod:`ivus_sim.turing.single_analysis` (per-reader AUC).
* integrity: nothing is analysed unless :meth:`ivus_sim.turing.store.Store.verify_integrity`
  passes (the chain, the answer key, every answer, the anchor file and an optional external
  head); ``allow_tampered=True`` analyses anyway and records the problems.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.turing import stats as st
from ivus_sim.turing.store import DB_NAME, Store
from ivus_sim.turing.verdict import Verdict, decide, reader_call

__all__ = ["ReaderResult", "StudyAnalysis", "analyze_study", "load_reads", "integrity_error"]


@dataclass
class ReaderResult:
    """Statistics of one reader (or of the pool, ``reader_id == "pooled"``)."""

    reader_id: str
    n_trials_scheduled: int
    n_answered: int
    accuracy: st.ProportionSummary
    tost: st.TostResult
    side: st.SideBias
    auc: st.AucResult | None
    n_confidence: int
    trend: st.TrendResult | None
    consistency: st.ProportionSummary | None
    obvious: st.ProportionSummary | None
    real_real_left: st.ProportionSummary | None
    median_rt_ms: float | None
    p_holm: float | None = None
    reject_holm: bool | None = None
    schedule_balanced: bool | None = None
    schedule_runs_p: float | None = None


@dataclass
class StudyAnalysis:
    """Everything :func:`analyze_study` computed (``reads`` holds one dict per answered trial)."""

    study: str
    study_id: str
    margin: float
    alpha: float
    n_boot: int
    seed: int
    readers: list[ReaderResult]
    pooled: ReaderResult
    kappa: st.KappaResult | None
    mixed: st.CrossedResult | None  # readers-and-pairs random effects (the name is kept for old notebooks)
    chain_ok: bool
    audit: dict[str, Any]
    audit_forced: bool
    conclusion: str
    verdict: Verdict | None = None
    integrity: dict[str, Any] = field(default_factory=dict)
    mode: str = "2afc"
    single: Any = None  # SingleImageAnalysis in the single-image mode
    reads: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("reads")
        d["random_effects"] = d.pop("mixed")
        d["verdict"] = None if self.verdict is None else self.verdict.to_dict()
        d["single"] = None if self.single is None else self.single.to_dict()
        return d


def load_reads(study: str | Path, anchor: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every answered trial with derived fields, and study facts (meta, schedules, integrity check)."""
    store = Store(Path(study) / DB_NAME)
    try:
        integrity = store.verify_integrity(anchor)
        reads = store.reads()
        from ivus_sim.turing.readers import revoked_answers

        revoked = revoked_answers(store)  # answers given through a link revoked later: kept, flagged
        for r in reads:
            r["link_revoked"] = int((r["reader_id"], r["position"]) in revoked)
        pairs = {int(r["pair_id"]): (int(r["real_image"]), int(r["fake_image"]))
                 for r in store.query("SELECT * FROM pairs")}
        sched = [dict(r) for r in store.query("SELECT * FROM trials ORDER BY reader_id, position")]
        for t in sched:  # the "positive" side of the schedule: real on the left (2AFC) / a real frame (single)
            t["x_truth"] = t.get("truth") == "real" if t.get("truth") is not None else t["real_side"] == "left"
        facts = {
            "study_id": store.meta("study_id", ""),
            "audit": store.meta("leakage_audit", {}),
            "audit_forced": bool(store.meta("audit_forced", False)),
            "integrity": integrity,
            "readers": [rid for rid, _ in store.readers()],
            "schedule": sched,
            "pairs": pairs,
        }
    finally:
        store.close()
    for r in reads:
        c = r["confidence"]
        if r.get("truth") is not None:  # single-image mode: "left" <-> "real" in the shared statistics
            r["chosen_image"] = (r["left_image"], r["choice"])  # consistency: the same response to the same image
            r["correct"] = int(r["choice"] == r["truth"])
            r["x_truth"], r["x_said"] = r["truth"] == "real", r["choice"] == "real"
        else:
            r["chosen_image"] = r["left_image"] if r["choice"] == "left" else r["right_image"]
            r["correct"] = None if r["real_side"] is None else int(r["choice"] == r["real_side"])
            r["x_truth"], r["x_said"] = r["real_side"] == "left", r["choice"] == "left"
        r["signed_score"] = None if c is None else (c if r["x_said"] else -c)
    return reads, facts


def _reader_result(rid: str, reads: list[dict[str, Any]], schedule: list[dict[str, Any]], margin: float,
                   alpha: float) -> ReaderResult:
    main = [r for r in reads if r["kind"] == "main"]
    k, n = sum(r["correct"] for r in main), len(main)
    real_left = np.array([r["x_truth"] for r in main], bool)
    chose_left = np.array([r["x_said"] for r in main], bool)
    conf = [r for r in main if r["signed_score"] is not None]
    auc = st.roc_auc(np.array([r["signed_score"] for r in conf], float),
                     np.array([r["x_truth"] for r in conf], bool)) if conf else None
    trend = st.trend_vs_index(np.array([r["position"] for r in main]), np.array([r["correct"] for r in main]))
    by_pos = {(r["reader_id"], r["position"]): r for r in reads}
    rep: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for r in reads:
        orig = by_pos.get((r["reader_id"], r["repeat_of"])) if r["kind"] == "repeat" else None
        if orig is not None:
            rep.append((r, orig))
    consistency = st.proportion_summary(sum(a["chosen_image"] == b["chosen_image"] for a, b in rep), len(rep),
                                        alpha) if rep else None
    obv = [r for r in reads if r["kind"] == "obvious"]
    obvious = st.proportion_summary(sum(r["correct"] for r in obv), len(obv), alpha) if obv else None
    rr = [r for r in reads if r["kind"] == "real_real"]
    real_real = st.proportion_summary(sum(r["choice"] == "left" for r in rr), len(rr), alpha) if rr else None
    rts = [r["rt_ms"] for r in reads if r["rt_ms"] is not None]
    sched_main = [s for s in schedule if s["kind"] == "main"]
    left_seq = np.array([s["x_truth"] for s in sched_main], float)
    balanced = bool(abs(2 * left_seq.sum() - len(left_seq)) <= 1) if len(left_seq) else None
    return ReaderResult(
        reader_id=rid, n_trials_scheduled=len(schedule), n_answered=len(reads),
        accuracy=st.proportion_summary(k, n, alpha), tost=st.tost(k, n, margin, alpha),
        side=st.side_bias(real_left, chose_left, alpha), auc=auc, n_confidence=len(conf), trend=trend,
        consistency=consistency, obvious=obvious, real_real_left=real_real,
        median_rt_ms=float(np.median(rts)) if rts else None, schedule_balanced=balanced,
        schedule_runs_p=st.runs_test(left_seq) if len(left_seq) else None)


def _kappa(reads: list[dict[str, Any]], pairs: dict[int, tuple[int, int]], n_boot: int, alpha: float,
           seed: int) -> st.KappaResult | None:
    main = [r for r in reads if r["kind"] == "main"]
    raters = sorted({r["reader_id"] for r in main})
    if len(raters) < 2:
        return None
    per_pair: dict[int, dict[str, int]] = {}
    for r in main:
        cat = int(r["x_said"]) if r.get("truth") is not None else int(r["chosen_image"] == pairs[int(r["item"])][0])
        per_pair.setdefault(int(r["item"]), {})[r["reader_id"]] = cat
    rows = [[sum(v.values()), len(v) - sum(v.values())] for v in per_pair.values() if len(v) == len(raters)]
    if len(rows) < 2:
        return None
    table = np.array(rows, float)
    res = st.fleiss_kappa_ci(table, n_boot=n_boot, alpha=alpha, seed=seed)
    return res if math.isfinite(res.kappa) else None


def _pooled_text(p: ReaderResult) -> str:
    a = p.accuracy
    if a.n == 0:
        return ""
    return (f" Pooled accuracy {a.estimate:.3f} ({a.k}/{a.n}; exact 95% CI {a.ci_exact[0]:.3f}-{a.ci_exact[1]:.3f}; "
            "treats every read as independent, so it is descriptive only).")


def _conclusion(verdict: Verdict, p: ReaderResult, forced: bool) -> str:
    text = verdict.sentence + _pooled_text(p)
    if forced:
        text += " WARNING: the study was built with --force despite a failed leakage audit."
    return text


def integrity_error(problems: list[str]) -> str:
    """The one-line message for a failed integrity check."""
    more = f" (+{len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    return f"study integrity check failed: {problems[0]}{more}; the answers are not analysed"


def analyze_study(study: str | Path, *, margin: float = 0.10, alpha: float = 0.05, n_boot: int = 2000,
                  seed: int = 0, mixed: bool = True, anchor: str | None = None,
                  allow_tampered: bool = False) -> StudyAnalysis:
    """Analyse the answers stored in a study folder.

    Args:
        study: the study folder.
        margin: equivalence margin around 0.5 for the TOST.
        alpha: test level (intervals are ``1 - alpha``).
        n_boot: bootstrap resamples for the kappa interval and the two-way bootstrap.
        seed: drives the bootstrap.
        mixed: compute the readers-and-pairs random-effects analysis.
        anchor: a chain head kept outside the study (see :meth:`Store.verify_integrity`).
        allow_tampered: analyse even when the integrity check fails (recorded, and the
            conclusion starts with a warning); by default that raises.

    Returns:
        :class:`StudyAnalysis`.

    Raises:
        IvusSimError: the integrity check failed (one line naming the first problem).
    """
    reads, facts = load_reads(study, anchor)
    integrity = facts["integrity"]
    if not integrity.ok and not allow_tampered:
        raise IvusSimError(integrity_error(integrity.problems))
    # practice trials (answered with feedback) are kept in the exports but never analysed
    schedule = [s for s in facts["schedule"] if s["kind"] != "practice"]
    analysed = [r for r in reads if r["kind"] != "practice"]
    results = []
    for rid in facts["readers"]:
        mine = [r for r in analysed if r["reader_id"] == rid]
        results.append(_reader_result(rid, mine, [s for s in schedule if s["reader_id"] == rid], margin, alpha))
    rej, adj = st.holm([r.accuracy.p_value for r in results], alpha)
    for r, j, a in zip(results, rej, adj, strict=True):
        r.reject_holm, r.p_holm = j, (a if math.isfinite(a) else None)
    pooled = _reader_result("pooled", analysed, schedule, margin, alpha)
    pooled.schedule_balanced = all(r.schedule_balanced for r in results if r.schedule_balanced is not None)
    pooled.schedule_runs_p = None
    main = [r for r in reads if r["kind"] == "main"]
    crossed = st.crossed_random_effects(np.array([r["correct"] for r in main], float), [r["reader_id"] for r in main],
                                        [r["item"] for r in main], alpha=alpha, n_boot=n_boot,
                                        seed=seed) if mixed and main else None
    single = None
    if any(r.get("truth") is not None for r in main):  # single-image mode: per-reader AUC of the rating scale
        from ivus_sim.turing.single_analysis import analyze_single_image, reads_from_store_rows

        single = analyze_single_image(reads_from_store_rows(main), margin=margin, alpha=alpha,
                                      readers=list(facts["readers"]), n_boot=n_boot, seed=seed)
        verdict = single.verdict
    else:
        calls = [reader_call(r.reader_id, r.accuracy.n, r.accuracy.estimate if r.accuracy.n else None, r.p_holm,
                             r.tost.p_value, alpha) for r in results]
        verdict = decide(calls, crossed, margin, alpha)
    conclusion = _conclusion(verdict, pooled, facts["audit_forced"])
    if not integrity.ok:
        conclusion = f"WARNING: {integrity_error(integrity.problems)} (analysed anyway on request). {conclusion}"
    return StudyAnalysis(
        study=str(study), study_id=str(facts["study_id"]), margin=margin, alpha=alpha, n_boot=n_boot, seed=seed,
        readers=results,
        pooled=pooled, kappa=_kappa(reads, facts["pairs"], n_boot, alpha, seed), mixed=crossed,
        chain_ok=integrity.ok, audit=facts["audit"], audit_forced=facts["audit_forced"], conclusion=conclusion,
        verdict=verdict, integrity=integrity.to_dict(), mode="single" if single is not None else "2afc",
        single=single, reads=reads)
