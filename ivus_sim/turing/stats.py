"""Statistics of a two-alternative forced-choice (2AFC) visual Turing test.

Pure functions on counts and arrays, each a thin wrapper over the reference implementation
in scipy/statsmodels (so results match them exactly; the tests check this):

* :func:`proportion_summary` - accuracy with exact Clopper-Pearson (``proportion_confint``
  ``method='beta'``) and Wilson intervals and the two-sided exact binomial test against 0.5
  (:func:`scipy.stats.binomtest`).
* :func:`holm` - Holm step-down adjustment across readers (``multipletests(method='holm')``).
* :func:`tost` - equivalence test of the proportion to 0.5 within ``+-margin``
  (``statsmodels.stats.proportion.binom_tost``): "indistinguishable" is claimed only when
  this test rejects; a non-significant binomial test is *not* evidence of equivalence.
* :func:`side_bias` - hit rate H = P(choose left | real left), false-alarm rate
  F = P(choose left | real right); sensitivity = H and specificity = 1 - F for the decision
  "the real image is on the left"; d' = (z(H) - z(F)) / sqrt(2) (2AFC) and criterion
  c = -(z(H) + z(F)) / 2 (side bias; 0 = none), with the log-linear correction
  (Hautus 1995: +0.5 to each count, +1 to each total) so 0 % or 100 % rates stay finite.
* :func:`fleiss_kappa_ci` - Fleiss' kappa (``statsmodels.stats.inter_rater.fleiss_kappa``)
  with a percentile bootstrap interval over pairs.
* :func:`roc_auc` - area under the ROC curve of a score against a binary truth, as the
  Mann-Whitney U statistic / (n1 n0) (ties count 1/2), with its two-sided p-value.
* :func:`trend_vs_index` - logistic regression of correctness on trial index (fatigue or
  learning), ``statsmodels`` GLM binomial.
* :func:`mixed_accuracy` - crossed reader and pair random intercepts on the logit of
  correctness, ``BinomialBayesMixedGLM.fit_vb`` (variational Bayes; approximate posterior).
* :func:`runs_test` - Wald-Wolfowitz runs test of a binary sequence (randomisation check).
* :func:`crossed_random_effects` - the population accuracy with readers **and** cases (pairs)
  as crossed random effects, ``y_rc = mu + a_r + b_c + e_rc`` on the reader x case table of
  0/1 correctness: variance components from the two-way ANOVA mean squares (method of
  moments; equal to REML on a complete table when no component is truncated at 0),
  ``Var(mean) = s_a^2/R + s_b^2/C + s_e^2/(RC)`` and a Satterthwaite-t interval - so a few
  readers who differ give the wide interval they should. A two-way bootstrap (readers and
  cases resampled independently) is reported beside it as a cross-check.
* :func:`delong_auc` - AUC with the DeLong (1988) variance (placement values), for the
  single-image mode's rating-scale ROC.

References: Clopper & Pearson 1934; Wilson 1927; Holm 1979; Schuirmann 1987 (TOST);
Macmillan & Creelman, *Detection Theory* (2AFC d'); Fleiss 1971; Hanley & McNeil 1982.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ProportionSummary",
    "TostResult",
    "SideBias",
    "KappaResult",
    "AucResult",
    "TrendResult",
    "MixedResult",
    "proportion_summary",
    "holm",
    "tost",
    "side_bias",
    "fleiss_kappa_ci",
    "roc_auc",
    "roc_curve",
    "trend_vs_index",
    "mixed_accuracy",
    "runs_test",
    "CrossedResult",
    "crossed_random_effects",
    "complete_block",
    "delong_auc",
]


@dataclass(frozen=True)
class ProportionSummary:
    """``k`` successes of ``n`` with intervals at level ``1 - alpha`` and the test against 0.5."""

    k: int
    n: int
    estimate: float
    ci_exact: tuple[float, float]
    ci_wilson: tuple[float, float]
    p_value: float


@dataclass(frozen=True)
class TostResult:
    """Two one-sided tests of ``|p - 0.5| < margin``; ``equivalent`` when ``p_value < alpha``."""

    margin: float
    p_value: float
    p_lower: float
    p_upper: float
    equivalent: bool


@dataclass(frozen=True)
class SideBias:
    """Side-conditional rates of one reader (see the module docstring)."""

    sensitivity: ProportionSummary  # P(choose left | real left)
    specificity: ProportionSummary  # P(choose right | real right)
    left_choices: ProportionSummary  # P(choose left), tested against 0.5
    d_prime: float
    criterion: float


@dataclass(frozen=True)
class KappaResult:
    kappa: float
    ci: tuple[float, float]
    n_subjects: int
    n_raters: int


@dataclass(frozen=True)
class AucResult:
    auc: float
    p_value: float
    n_pos: int
    n_neg: int


@dataclass(frozen=True)
class TrendResult:
    """Logistic regression ``logit P(correct) = a + b * index``; ``slope`` per trial."""

    slope: float
    slope_se: float
    p_value: float
    odds_ratio_per_100: float
    n: int


@dataclass(frozen=True)
class MixedResult:
    """Population accuracy with crossed random reader and pair effects (variational Bayes)."""

    accuracy: float
    ci: tuple[float, float]  # 95 % posterior interval of expit(intercept)
    intercept_mean: float
    intercept_sd: float
    reader_sd: float  # posterior mean of the random-effect standard deviation (logit scale)
    pair_sd: float
    n: int
    method: str = "statsmodels BinomialBayesMixedGLM.fit_vb, crossed reader and pair intercepts"


def proportion_summary(k: int, n: int, alpha: float = 0.05, p0: float = 0.5) -> ProportionSummary:
    """Estimate, exact and Wilson intervals, and the two-sided exact binomial test of ``k/n`` vs ``p0``."""
    from scipy.stats import binomtest
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return ProportionSummary(int(k), int(n), math.nan, (math.nan, math.nan), (math.nan, math.nan), math.nan)
    lo_e, hi_e = proportion_confint(k, n, alpha=alpha, method="beta")
    lo_w, hi_w = proportion_confint(k, n, alpha=alpha, method="wilson")
    p = binomtest(int(k), int(n), p0, alternative="two-sided").pvalue
    return ProportionSummary(int(k), int(n), k / n, (float(lo_e), float(hi_e)), (float(lo_w), float(hi_w)), float(p))


def holm(p_values: list[float], alpha: float = 0.05) -> tuple[list[bool], list[float]]:
    """Holm-adjusted p-values and rejections (NaNs pass through unadjusted and unrejected)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    ok = np.isfinite(p)
    rej = np.zeros(len(p), dtype=bool)
    adj = np.full(len(p), np.nan)
    if ok.any():
        r, a, _, _ = multipletests(p[ok], alpha=alpha, method="holm")
        rej[ok], adj[ok] = r, a
    return [bool(v) for v in rej], [float(v) for v in adj]


def tost(k: int, n: int, margin: float = 0.10, alpha: float = 0.05) -> TostResult:
    """Equivalence of ``k/n`` to 0.5 within ``+-margin`` (``binom_tost``)."""
    from statsmodels.stats.proportion import binom_tost

    if not 0 < margin < 0.5:
        raise ValueError(f"margin must be in (0, 0.5), got {margin}")
    if n <= 0:
        return TostResult(margin, math.nan, math.nan, math.nan, False)
    p, p_lo, p_hi = binom_tost(k, n, 0.5 - margin, 0.5 + margin)
    return TostResult(margin, float(p), float(p_lo), float(p_hi), bool(p < alpha))


def _z(k: int, n: int) -> float:
    from scipy.stats import norm

    return float(norm.ppf((k + 0.5) / (n + 1.0)))


def side_bias(real_left: np.ndarray, chose_left: np.ndarray, alpha: float = 0.05) -> SideBias:
    """Side-conditional accuracy, d' and criterion of one reader (or a pool).

    Args:
        real_left: ``(n,)`` bool, the real image was on the left.
        chose_left: ``(n,)`` bool, the reader chose the left image.
    """
    rl, cl = np.asarray(real_left, bool), np.asarray(chose_left, bool)
    hits, n_l = int((cl & rl).sum()), int(rl.sum())
    fas, n_r = int((cl & ~rl).sum()), int((~rl).sum())
    sens = proportion_summary(hits, n_l, alpha)
    spec = proportion_summary(n_r - fas, n_r, alpha)
    left = proportion_summary(int(cl.sum()), len(cl), alpha)
    if n_l and n_r:
        zh, zf = _z(hits, n_l), _z(fas, n_r)
        d, c = (zh - zf) / math.sqrt(2.0), -(zh + zf) / 2.0
    else:
        d = c = math.nan
    return SideBias(sens, spec, left, d, c)


def fleiss_kappa_ci(table: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> KappaResult:
    """Fleiss' kappa of a ``(subjects, categories)`` count table with a percentile bootstrap CI.

    Every row must sum to the same number of raters. Bootstrap resamples subjects (pairs) with
    replacement from ``ivus_sim.seeding`` stream ``turing-kappa``; degenerate resamples (no
    variation at all) are dropped.
    """
    from statsmodels.stats.inter_rater import fleiss_kappa

    from ivus_sim.seeding import rng

    t = np.asarray(table, dtype=float)
    n_raters = int(t[0].sum())
    if not np.allclose(t.sum(1), n_raters):
        raise ValueError("every subject needs the same number of raters")
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = float(fleiss_kappa(t))
        g = rng(seed, "turing-kappa")
        boots = []
        for _ in range(n_boot):
            v = fleiss_kappa(t[g.integers(0, len(t), len(t))])
            if np.isfinite(v):
                boots.append(v)
    ci = (float(np.quantile(boots, alpha / 2)), float(np.quantile(boots, 1 - alpha / 2))) if boots \
        else (math.nan, math.nan)
    return KappaResult(kappa, ci, len(t), n_raters)


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> AucResult:
    """AUC of ``scores`` for ``truth`` (1 = positive) as Mann-Whitney U / (n1 n0), two-sided p."""
    from scipy.stats import mannwhitneyu

    s, y = np.asarray(scores, float), np.asarray(truth, bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return AucResult(math.nan, math.nan, len(pos), len(neg))
    if np.all(s == s[0]):
        return AucResult(0.5, 1.0, len(pos), len(neg))
    u, p = mannwhitneyu(pos, neg, alternative="two-sided")
    return AucResult(float(u) / (len(pos) * len(neg)), float(p), len(pos), len(neg))


def roc_curve(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ROC curve ``(false-positive rate, true-positive rate)`` over all thresholds."""
    s, y = np.asarray(scores, float), np.asarray(truth, bool)
    thr = np.r_[np.inf, np.unique(s)[::-1]]
    tpr = np.array([(s[y] >= t).mean() if y.any() else np.nan for t in thr])
    fpr = np.array([(s[~y] >= t).mean() if (~y).any() else np.nan for t in thr])
    return fpr, tpr


def trend_vs_index(index: np.ndarray, correct: np.ndarray) -> TrendResult | None:
    """Logistic regression of correctness on trial index; ``None`` if it cannot be fitted."""
    import statsmodels.api as sm

    x, y = np.asarray(index, float), np.asarray(correct, float)
    if len(y) < 3 or y.min() == y.max() or x.min() == x.max():
        return None
    try:
        res = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit()
    except Exception:
        return None
    b, se, p = float(res.params[1]), float(res.bse[1]), float(res.pvalues[1])
    if not (math.isfinite(b) and math.isfinite(se)):
        return None
    return TrendResult(b, se, p, float(math.exp(100 * b)), len(y))


def mixed_accuracy(correct: np.ndarray, reader: list[str], pair: list[Any]) -> MixedResult | None:
    """Accuracy with crossed random reader and pair intercepts (logit scale).

    Model: ``logit P(correct_rp) = mu + u_r + v_p`` with ``u_r ~ N(0, s_r^2)``,
    ``v_p ~ N(0, s_p^2)``, fitted by variational Bayes (``BinomialBayesMixedGLM.fit_vb``).
    The reported accuracy is ``expit(mu)`` (a typical reader on a typical pair) with the 95 %
    interval ``expit(mu +- 1.96 sd(mu))`` of the approximate posterior; reader_sd and pair_sd
    are ``exp`` of the posterior means of the log standard deviations.

    The fit is deterministic (BFGS from zero starting values).

    Returns ``None`` with fewer than 2 readers or 2 pairs, or when the fit fails.
    """
    import pandas as pd
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    y = np.asarray(correct, float)
    if len(set(reader)) < 2 or len(set(pair)) < 2 or len(y) < 4:
        return None
    df = pd.DataFrame({"y": y, "reader": [str(r) for r in reader], "pair": [str(p) for p in pair]})
    try:
        model = BinomialBayesMixedGLM.from_formula("y ~ 1", {"reader": "0 + C(reader)", "pair": "0 + C(pair)"}, df)
        res = model.fit_vb()
    except Exception:
        return None
    mu, sd = float(res.fe_mean[0]), float(res.fe_sd[0])
    names = list(model.vcp_names)
    vc = dict(zip(names, np.exp(np.asarray(res.vcp_mean, float)), strict=True))

    def expit(v: float) -> float:
        return 1.0 / (1.0 + math.exp(-v))

    return MixedResult(expit(mu), (expit(mu - 1.96 * sd), expit(mu + 1.96 * sd)), mu, sd,
                       float(vc.get("reader", math.nan)), float(vc.get("pair", math.nan)), len(y))


def runs_test(sequence: np.ndarray) -> float:
    """Two-sided p-value of the Wald-Wolfowitz runs test of a binary sequence (NaN if constant)."""
    from statsmodels.sandbox.stats.runs import runstest_1samp

    x = np.asarray(sequence, float)
    if len(x) < 2 or x.min() == x.max():
        return math.nan
    _, p = runstest_1samp(x, cutoff=0.5, correction=True)
    return float(p)


@dataclass(frozen=True)
class CrossedResult:
    """Population accuracy with crossed random reader and case effects (see :func:`crossed_random_effects`).

    ``ci`` is the ``1 - alpha`` interval (a difference from 0.5 is significant when it excludes
    0.5); ``ci_equivalence`` the ``1 - 2 alpha`` interval (equivalence within the margin is shown
    when it lies inside ``0.5 +- margin``, the interval form of TOST).
    """

    accuracy: float
    se: float
    df: float
    ci: tuple[float, float]
    ci_equivalence: tuple[float, float]
    reader_var: float
    case_var: float
    residual_var: float
    ms_reader: float
    ms_case: float
    ms_residual: float
    n_readers: int
    n_cases: int
    bootstrap_ci: tuple[float, float] | None
    readers: tuple[str, ...]
    method: str = ("crossed random effects (readers x cases), two-way ANOVA method-of-moments variance components, "
                   "Satterthwaite t interval; two-way bootstrap over readers and cases as a cross-check")


def complete_block(reader: list[str], case: list[Any]) -> tuple[list[str], list[Any]]:
    """The largest complete reader x case block of a (possibly unfinished) study.

    Readers are ranked by how many distinct cases they read; for every ``k >= 2`` the top ``k``
    readers and the cases all of them read form a complete block; the block with the most
    reads (ties: more readers) is returned as ``(readers, cases)`` (empty when none exists).
    """
    seen: dict[str, set[Any]] = {}
    for r, c in zip(reader, case, strict=True):
        seen.setdefault(str(r), set()).add(c)
    ranked = sorted(seen, key=lambda r: (-len(seen[r]), r))
    best: tuple[int, int, list[str], list[Any]] = (0, 0, [], [])
    for k in range(2, len(ranked) + 1):
        common = set.intersection(*(seen[r] for r in ranked[:k]))
        if len(common) >= 2 and (k * len(common), k) > best[:2]:
            best = (k * len(common), k, ranked[:k], sorted(common, key=str))
    return best[2], best[3]


def crossed_random_effects(correct: np.ndarray, reader: list[str], case: list[Any], alpha: float = 0.05,
                           n_boot: int = 2000, seed: int = 0) -> CrossedResult | None:
    """Accuracy with readers and cases as crossed random effects (the MRMC view of a 2AFC study).

    Model: ``y_rc = mu + a_r + b_c + e_rc`` with ``a_r ~ (0, s_a^2)``, ``b_c ~ (0, s_b^2)``,
    ``e_rc ~ (0, s_e^2)`` on the complete reader x case table (:func:`complete_block`; one read
    per cell - a repeated read of a cell is averaged). With the two-way ANOVA mean squares
    ``MS_R``, ``MS_C``, ``MS_E``: ``s_a^2 = max(0, (MS_R - MS_E) / C)``,
    ``s_b^2 = max(0, (MS_C - MS_E) / R)``, ``s_e^2 = MS_E``, and
    ``Var(mean) = s_a^2 / R + s_b^2 / C + s_e^2 / (R C)``, a linear combination of mean squares
    whose degrees of freedom follow Satterthwaite. The interval is
    ``mean +- t(df) sqrt(Var)``, clipped to [0, 1].

    The two-way bootstrap resamples readers and cases independently (``n_boot`` times,
    ``ivus_sim.seeding`` stream ``turing-crossed-boot``) and reports the percentile interval of
    the table mean; with few readers it is narrower than the t interval (it has no
    small-sample correction), which is why the verdict uses the t interval.

    Returns ``None`` when no complete block of at least 2 readers x 2 cases exists.
    """
    from scipy.stats import t as t_dist

    from ivus_sim.seeding import rng

    y = np.asarray(correct, float)
    readers, cases = complete_block(list(reader), list(case))
    if not readers:
        return None
    ri = {r: i for i, r in enumerate(readers)}
    ci_ = {c: j for j, c in enumerate(cases)}
    tot = np.zeros((len(readers), len(cases)))
    cnt = np.zeros_like(tot)
    for v, r, c in zip(y, reader, case, strict=True):
        if str(r) in ri and c in ci_:
            tot[ri[str(r)], ci_[c]] += v
            cnt[ri[str(r)], ci_[c]] += 1
    table = tot / cnt
    n_r, n_c = table.shape
    grand = float(table.mean())
    rm, cm = table.mean(1), table.mean(0)
    ms_r = n_c * float(((rm - grand) ** 2).sum()) / (n_r - 1)
    ms_c = n_r * float(((cm - grand) ** 2).sum()) / (n_c - 1)
    resid = table - rm[:, None] - cm[None, :] + grand
    ms_e = float((resid ** 2).sum()) / ((n_r - 1) * (n_c - 1))
    var_a, var_b = max(0.0, (ms_r - ms_e) / n_c), max(0.0, (ms_c - ms_e) / n_r)
    # Var(mean) = (c_r MS_R + c_c MS_C + c_e MS_E) / (R C); a truncated component drops its MS
    c_r, c_c = float(var_a > 0), float(var_b > 0)
    terms = [(c_r * ms_r, n_r - 1), (c_c * ms_c, n_c - 1), ((1.0 - c_r - c_c) * ms_e, (n_r - 1) * (n_c - 1))]
    lin = sum(v for v, _ in terms)
    var_mean = max(lin, 0.0) / (n_r * n_c)
    se = math.sqrt(var_mean)
    denom = sum(v * v / d for v, d in terms if d > 0)
    df = float(lin * lin / denom) if denom > 0 and lin > 0 else float(max(n_r - 1, 1))

    def interval(level_alpha: float) -> tuple[float, float]:
        h = float(t_dist.ppf(1 - level_alpha / 2, df)) * se
        return max(0.0, grand - h), min(1.0, grand + h)

    boot_ci = None
    if n_boot > 0:
        g = rng(seed, "turing-crossed-boot")
        # mean of table[rs][:, cs] = (w_r^T table w_c) / (R C) with w the resampling counts
        w_r = np.stack([np.bincount(g.integers(0, n_r, n_r), minlength=n_r) for _ in range(n_boot)]).astype(float)
        w_c = np.stack([np.bincount(g.integers(0, n_c, n_c), minlength=n_c) for _ in range(n_boot)]).astype(float)
        means = ((w_r @ table) * w_c).sum(1) / (n_r * n_c)
        boot_ci = (float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2)))
    return CrossedResult(grand, se, df, interval(alpha), interval(2 * alpha), var_a, var_b, ms_e, ms_r, ms_c, ms_e,
                         n_r, n_c, boot_ci, tuple(readers))


def delong_auc(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``(AUC, standard error)`` of ``scores`` for ``truth`` with the DeLong et al. (1988) variance.

    AUC = mean over positive/negative pairs of ``1[s+ > s-] + 0.5 * 1[s+ == s-]`` (equal to
    Mann-Whitney U / (n1 n0)); variance ``var(V10) / n1 + var(V01) / n0`` of the placement
    values. NaN when a class is empty.
    """
    s, y = np.asarray(scores, float), np.asarray(truth, bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan, math.nan
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    auc = float(psi.mean())
    v10, v01 = psi.mean(1), psi.mean(0)
    var = (v10.var(ddof=1) / len(pos) if len(pos) > 1 else 0.0) + (v01.var(ddof=1) / len(neg) if len(neg) > 1
                                                                     else 0.0)
    return auc, float(math.sqrt(var))
