"""Statistics match scipy/statsmodels reference values (and published numbers) on fixed data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from statsmodels.stats.inter_rater import fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import binom_tost, proportion_confint

from ivus_sim.turing import stats as st
from ivus_sim.turing.power import plan_study, power_difference

# Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa = 0.210
FLEISS_TABLE = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                         [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])


@pytest.mark.parametrize(("k", "n"), [(140, 250), (0, 12), (12, 12), (37, 60), (18, 50)])
def test_proportion_summary_matches_scipy_statsmodels(k: int, n: int) -> None:
    s = st.proportion_summary(k, n)
    assert s.estimate == k / n
    assert s.p_value == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-12)
    assert s.ci_exact == pytest.approx(proportion_confint(k, n, method="beta"), rel=1e-12)
    assert s.ci_wilson == pytest.approx(proportion_confint(k, n, method="wilson"), rel=1e-12)
    ci = binomtest(k, n).proportion_ci(method="exact")
    assert s.ci_exact == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-12)


def test_not_significant_is_not_equivalent() -> None:
    s = st.proportion_summary(140, 250)
    assert s.p_value == pytest.approx(0.066, abs=5e-4)
    t = st.tost(140, 250, margin=0.10)
    assert t.p_value == pytest.approx(0.110, abs=5e-4)
    assert t.p_value == pytest.approx(binom_tost(140, 250, 0.4, 0.6)[0], rel=1e-12)
    assert not t.equivalent
    assert st.tost(125, 250, margin=0.10).equivalent


def test_holm_matches_multipletests() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.001]
    rej, adj = st.holm(p, alpha=0.05)
    r_ref, a_ref, _, _ = multipletests(p, alpha=0.05, method="holm")
    assert rej == list(r_ref) and adj == pytest.approx(list(a_ref), rel=1e-12)
    assert st.holm([0.01, 0.04, 0.03])[1] == pytest.approx([0.03, 0.06, 0.06])
    rej2, adj2 = st.holm([0.01, math.nan, 0.02])
    assert math.isnan(adj2[1]) and not rej2[1] and adj2[0] == pytest.approx(0.02)


def test_fleiss_kappa_published_value_and_bootstrap() -> None:
    res = st.fleiss_kappa_ci(FLEISS_TABLE, n_boot=200, seed=1)
    assert res.kappa == pytest.approx(fleiss_kappa(FLEISS_TABLE), rel=1e-12)
    assert res.kappa == pytest.approx(0.210, abs=5e-4)
    assert res.ci[0] < res.kappa < res.ci[1]
    assert res == st.fleiss_kappa_ci(FLEISS_TABLE, n_boot=200, seed=1)  # seeded
    # perfect agreement on a balanced table: kappa 1
    perfect = np.array([[3, 0], [0, 3], [3, 0], [0, 3]])
    assert st.fleiss_kappa_ci(perfect, n_boot=50).kappa == pytest.approx(1.0)


def test_side_bias_dprime() -> None:
    real_left = np.array([1] * 20 + [0] * 20, bool)
    chose_left = np.array([1] * 15 + [0] * 5 + [1] * 8 + [0] * 12, bool)
    sb = st.side_bias(real_left, chose_left)
    assert sb.sensitivity.estimate == 15 / 20 and sb.specificity.estimate == 12 / 20
    zh, zf = norm.ppf(15.5 / 21), norm.ppf(8.5 / 21)
    assert sb.d_prime == pytest.approx((zh - zf) / math.sqrt(2))
    assert sb.criterion == pytest.approx(-(zh + zf) / 2)
    assert sb.left_choices.k == 23
    # an "always left" reader: no sensitivity, strong bias, finite thanks to the log-linear correction
    always = st.side_bias(real_left, np.ones(40, bool))
    assert abs(always.d_prime) < 1e-12 and always.criterion < -1 and math.isfinite(always.criterion)
    assert always.left_choices.p_value < 1e-6


def test_auc_equals_pairwise_probability() -> None:
    g = np.random.default_rng(0)
    y = g.integers(0, 2, 60).astype(bool)
    s = np.where(y, 1, -1) * g.integers(1, 6, 60) * (g.random(60) < 0.7) * 1.0
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]])
    res = st.roc_auc(s, y)
    assert res.auc == pytest.approx(brute)
    assert st.roc_auc(-s, y).auc == pytest.approx(1 - brute)
    fpr, tpr = st.roc_curve(s, y)
    assert np.trapezoid(tpr, fpr) == pytest.approx(brute)


def test_trend_and_runs_match_statsmodels() -> None:
    import statsmodels.api as sm
    from statsmodels.sandbox.stats.runs import runstest_1samp

    idx = np.arange(80)
    correct = (np.sin(idx / 5.0) + idx / 60.0 > 0.3).astype(float)
    res = st.trend_vs_index(idx, correct)
    ref = sm.Logit(correct, sm.add_constant(idx.astype(float))).fit(disp=0)
    assert res is not None
    assert res.slope == pytest.approx(ref.params[1], rel=1e-6)
    assert res.p_value == pytest.approx(ref.pvalues[1], rel=1e-5)
    assert res.slope > 0  # learning
    seq = np.array([0, 1] * 10, float)
    assert st.runs_test(seq) == pytest.approx(runstest_1samp(seq, cutoff=0.5, correction=True)[1])
    assert st.trend_vs_index(idx, np.ones(80)) is None


def test_mixed_model_orders_accuracies() -> None:
    g = np.random.default_rng(3)
    readers = [f"R{r}" for r in range(4) for _ in range(60)]
    pairs = [p for _ in range(4) for p in range(60)]
    hi = st.mixed_accuracy((g.random(240) < 0.85).astype(float), readers, pairs)
    lo = st.mixed_accuracy((g.random(240) < 0.5).astype(float), readers, pairs)
    assert hi is not None and lo is not None
    assert hi.ci[0] > 0.7 and lo.ci[0] < 0.5 < lo.ci[1]
    assert hi.reader_sd > 0 and hi.pair_sd > 0
    assert st.mixed_accuracy(np.ones(5), ["a"] * 5, list(range(5))) is None  # one reader: not estimable


def test_power_reference_values() -> None:
    plan = plan_study(margin=0.10, power=0.8, alpha=0.05)
    assert plan.trials_equivalence == 227 and plan.trials_equivalence_first == 214
    assert plan_study(margin=0.15).trials_equivalence == 100
    d = plan_study(margin=None, detect=0.7)
    assert d.trials_difference_first == 49 and d.trials_difference is not None and d.trials_difference >= 49
    assert power_difference(199, 0.6) >= 0.8 > power_difference(198, 0.6)
    r = plan_study(margin=0.10, readers=5, icc=0.1)
    assert r.design_effect == pytest.approx(1.4) and r.pairs_equivalence == math.ceil(227 * 1.4 / 5)


def test_analysis_end_to_end(tmp_path: Path) -> None:
    from ivus_sim.turing.analysis import analyze_study
    from ivus_sim.turing.demo import make_demo_images
    from ivus_sim.turing.simulate import simulate_readers
    from ivus_sim.turing.study import StudyConfig, build_study

    make_demo_images(tmp_path / "real", 46, size=24, stream="real", prefix="real")
    make_demo_images(tmp_path / "fake", 40, size=24, stream="fake", prefix="sim")
    build_study(tmp_path / "real", tmp_path / "fake", tmp_path / "study",
                StudyConfig(n_readers=3, size=24, seed=5, n_catch=2), progress=False)
    simulate_readers(tmp_path / "study", accuracy={"R01": 0.95, "R02": 0.55, "R03": 0.5}, seed=2)
    an = analyze_study(tmp_path / "study", n_boot=100)
    by = {r.reader_id: r for r in an.readers}
    assert all(r.accuracy.n == 40 and r.n_answered == 46 for r in an.readers)
    assert by["R01"].accuracy.estimate > 0.85 and by["R01"].reject_holm
    # Holm across readers on exactly the per-reader exact binomial p-values
    ps = [binomtest(r.accuracy.k, r.accuracy.n).pvalue for r in an.readers]
    assert [r.p_holm for r in an.readers] == pytest.approx(list(multipletests(ps, method="holm")[1]))
    assert by["R01"].auc is not None and by["R01"].auc.auc > 0.9
    assert all(r.schedule_balanced for r in an.readers)
    assert all(r.obvious is not None and r.obvious.n == 2 for r in an.readers)
    assert all(r.consistency is not None and r.consistency.n == 2 for r in an.readers)
    pooled_k = sum(r.accuracy.k for r in an.readers)
    assert an.pooled.accuracy.k == pooled_k and an.pooled.accuracy.n == 120
    assert an.kappa is not None and an.mixed is not None and an.chain_ok
    assert an.verdict is not None and an.verdict.verdict == "distinguishable"
    assert an.verdict.per_reader[0].call == "better" and an.conclusion.startswith("Distinguishable")


def _reads(accs: list[float], n_cases: int, seed: int = 0) -> tuple[np.ndarray, list[str], list[int]]:
    """Readers with exactly the given accuracy on the same cases (correct reads at random cases)."""
    g = np.random.default_rng(seed)
    y: list[float] = []
    readers: list[str] = []
    cases: list[int] = []
    for i, a in enumerate(accs):
        v = np.zeros(n_cases)
        v[g.permutation(n_cases)[:round(a * n_cases)]] = 1
        y += list(v)
        readers += [f"R{i + 1}"] * n_cases
        cases += list(range(n_cases))
    return np.array(y), readers, cases


def test_crossed_random_effects_matches_reml_reference() -> None:
    """Balanced crossed design: the moment estimates equal statsmodels' REML fit (MixedLM, crossed vc)."""
    import warnings

    import pandas as pd
    import statsmodels.api as sm

    g = np.random.default_rng(1)
    n_r, n_c = 5, 30
    y = 0.3 + g.normal(0, 0.8, n_r)[:, None] + g.normal(0, 0.5, n_c)[None, :] + g.normal(0, 1, (n_r, n_c))
    readers = [f"R{i}" for i in range(n_r) for _ in range(n_c)]
    cases = [j for _ in range(n_r) for j in range(n_c)]
    res = st.crossed_random_effects(y.ravel(), readers, cases, n_boot=200)
    assert res is not None and res.n_readers == n_r and res.n_cases == n_c
    df = pd.DataFrame({"y": y.ravel(), "reader": readers, "case": cases})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MixedLM.from_formula("y ~ 1", groups=np.ones(len(df)), re_formula="0", data=df,
                                      vc_formula={"reader": "0 + C(reader)", "case": "0 + C(case)"}).fit(reml=True)
    vc = dict(zip(ref.model.exog_vc.names, ref.vcomp, strict=True))
    assert res.accuracy == pytest.approx(float(ref.params.iloc[0]), rel=1e-9)
    assert res.se == pytest.approx(float(ref.bse.iloc[0]), rel=1e-4)
    assert res.reader_var == pytest.approx(vc["reader"], rel=1e-4)
    assert res.case_var == pytest.approx(vc["case"], rel=1e-4)
    assert res.residual_var == pytest.approx(ref.scale, rel=1e-4)
    # the mean squares are the two-way ANOVA's (statsmodels anova_lm)
    import statsmodels.formula.api as smf

    aov = sm.stats.anova_lm(smf.ols("y ~ C(reader) + C(case)", df).fit())
    assert res.ms_reader == pytest.approx(aov["mean_sq"].iloc[0], rel=1e-10)
    assert res.ms_case == pytest.approx(aov["mean_sq"].iloc[1], rel=1e-10)
    assert res.ms_residual == pytest.approx(aov["mean_sq"].iloc[2], rel=1e-10)


def test_reader_variance_widens_the_interval() -> None:
    y, readers, cases = _reads([0.5, 0.6, 0.8, 0.3], 100)
    res = st.crossed_random_effects(y, readers, cases)
    assert res is not None and res.accuracy == pytest.approx(0.55)
    # readers as random: 0.55 +- t(3 df) * sqrt(MS_R / (R C)) with the case component truncated at 0
    se = math.sqrt(100 * np.var([0.5, 0.6, 0.8, 0.3], ddof=1) / 400)
    assert res.se == pytest.approx(se, rel=1e-9) and res.df == pytest.approx(3.0)
    from scipy.stats import t

    assert res.ci == pytest.approx((0.55 - t.ppf(0.975, 3) * se, 0.55 + t.ppf(0.975, 3) * se), rel=1e-9)
    assert res.ci[0] < 0.25 and res.ci[1] > 0.85  # roughly 0.22-0.88, not the pooled 0.48-0.62
    assert res.bootstrap_ci is not None and res.bootstrap_ci[0] < 0.45 and res.bootstrap_ci[1] > 0.65
    pooled = st.proportion_summary(int(y.sum()), len(y))
    assert res.ci[1] - res.ci[0] > 4 * (pooled.ci_exact[1] - pooled.ci_exact[0])


def test_complete_block_of_an_unfinished_study() -> None:
    readers = ["A"] * 10 + ["B"] * 10 + ["C"] * 3
    cases = list(range(10)) + list(range(10)) + [0, 1, 2]
    assert st.complete_block(readers, cases) == (["A", "B"], list(range(10)))
    assert st.crossed_random_effects(np.ones(3), ["A"] * 3, [0, 1, 2]) is None  # one reader: not estimable


@pytest.mark.parametrize(("accs", "expect", "calls"), [
    ([0.8, 0.2], "distinguishable", ["better", "reversed"]),  # opposite directions do not cancel
    ([0.5, 0.6, 0.8, 0.3], "distinguishable", None),
    ([0.85, 0.15], "distinguishable", ["better", "reversed"]),
    ([0.5, 0.5, 0.5], "indistinguishable", ["equivalent"] * 3),
    ([0.5, 0.6], "inconclusive", None),
])
def test_verdict_rules(accs: list[float], expect: str, calls: list[str] | None) -> None:
    from ivus_sim.turing.verdict import decide, reader_call

    n = 300 if expect == "indistinguishable" else 60
    y, readers, cases = _reads(accs, n)
    ks = [int(y[np.array(readers) == f"R{i + 1}"].sum()) for i in range(len(accs))]
    _, p_holm = st.holm([st.proportion_summary(k, n).p_value for k in ks])
    rc = [reader_call(f"R{i + 1}", n, k / n, p, st.tost(k, n).p_value, 0.05)
          for i, (k, p) in enumerate(zip(ks, p_holm, strict=True))]
    v = decide(rc, st.crossed_random_effects(y, readers, cases, n_boot=0), 0.10, 0.05)
    assert v.verdict == expect, v.sentence
    if calls is not None:
        assert [c.call for c in v.per_reader] == calls
    d = v.to_dict()
    assert d["verdict"] == expect and d["rule"] and d["per_reader"][0]["reader"] == "R1"
    assert d["random_effects"]["method"].startswith("crossed random effects")
    # the pooled binomial alone would have said "no difference" for the opposite readers
    if accs == [0.8, 0.2]:
        assert st.proportion_summary(int(y.sum()), len(y)).p_value > 0.5


def test_verdict_from_random_effects_alone() -> None:
    """Many readers each a little above chance: none significant alone, the random-effects interval excludes 0.5."""
    from ivus_sim.turing.verdict import decide, reader_call

    accs = [0.6] * 8
    y, readers, cases = _reads(accs, 40)
    rc = [reader_call(f"R{i + 1}", 40, 0.6, 0.9, 0.5, 0.05) for i in range(8)]
    v = decide(rc, st.crossed_random_effects(y, readers, cases, n_boot=0), 0.10, 0.05)
    assert v.verdict == "distinguishable" and "random-effects" in v.rule
    # ... and equivalence shown only by the random-effects interval
    y, readers, cases = _reads([0.5] * 8, 100)
    rc = [reader_call(f"R{i + 1}", 100, 0.5, 1.0, 0.06, 0.05) for i in range(8)]
    v = decide(rc, st.crossed_random_effects(y, readers, cases, n_boot=0), 0.10, 0.05)
    assert v.verdict == "indistinguishable" and "random-effects" in v.rule


def _single_reads(d_prime: dict[str, float], n_cases: int = 80, seed: int = 0, bias: float = 0.0) -> list:
    """Simulated single-image readers: x = d' (real) or 0 (simulated) + bias + N(0,1); rating from |x - d'/2|."""
    from ivus_sim.turing.single_analysis import SingleRead

    g = np.random.default_rng(seed)
    truth = np.arange(n_cases) % 2 == 0
    out = []
    for rid, d in d_prime.items():
        x = np.where(truth, d, 0.0) + bias + g.normal(size=n_cases) - d / 2
        for c in range(n_cases):
            out.append(SingleRead(rid, c, bool(truth[c]), "real" if x[c] > 0 else "simulated",
                                  1 + min(4, int(abs(x[c]) / 0.5))))
    return out


def test_single_image_analysis() -> None:
    from ivus_sim.turing.single_analysis import SingleRead, analyze_single_image

    reads = _single_reads({"A": 2.5, "B": 0.0, "C": -2.5})
    an = analyze_single_image(reads, n_boot=100)
    by = {r.reader: r for r in an.readers}
    # AUC of the signed rating = Mann-Whitney U / (n1 n0), DeLong SE from placement values
    mine = [r for r in reads if r.reader == "A"]
    s = np.array([r.score for r in mine])
    y = np.array([r.is_real for r in mine])
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]])
    assert by["A"].auc == pytest.approx(brute) and by["A"].auc > 0.9 and by["C"].auc < 0.1
    v10 = np.array([np.mean([(a > b) + 0.5 * (a == b) for b in s[~y]]) for a in s[y]])
    v01 = np.array([np.mean([(a > b) + 0.5 * (a == b) for a in s[y]]) for b in s[~y]])
    assert by["A"].auc_se == pytest.approx(math.sqrt(v10.var(ddof=1) / len(v10) + v01.var(ddof=1) / len(v01)))
    said = np.array([r.said_real for r in mine])
    assert by["A"].sensitivity.estimate == pytest.approx(said[y].mean())
    assert by["A"].specificity.estimate == pytest.approx((~said[~y]).mean())
    assert an.verdict.verdict == "distinguishable"
    assert [c.call for c in an.verdict.per_reader] == ["better", "inconclusive", "reversed"]
    d = an.to_dict()
    assert d["verdict"]["measure"] == "AUC" and d["readers"][0]["auc_basis"] == "rating"
    # chance readers with many cases: every AUC equivalent to 0.5 within 0.15 -> indistinguishable
    null = analyze_single_image(_single_reads({"A": 0.0, "B": 0.0}, n_cases=400, seed=3), margin=0.15, n_boot=0)
    assert null.verdict.verdict == "indistinguishable", null.verdict.sentence
    # a reader without ratings is scored on the response: AUC = (sens + spec) / 2
    bare = [SingleRead(r.reader, r.case, r.is_real, r.response, None) for r in reads if r.reader == "A"]
    res = analyze_single_image(bare, n_boot=0).readers[0]
    assert res.auc_basis == "response"
    assert res.auc == pytest.approx((res.sensitivity.estimate + res.specificity.estimate) / 2)
    with pytest.raises(ValueError):
        SingleRead("A", 1, True, "left", 3)


def test_single_image_study_end_to_end(tmp_path: Path) -> None:
    """A single-mode study answered through the store is analysed with per-reader AUC and its own verdict."""
    from ivus_sim.turing.analysis import analyze_study
    from ivus_sim.turing.demo import make_demo_images
    from ivus_sim.turing.modes import StudyMode
    from ivus_sim.turing.report import imrmc_rows, write_report
    from ivus_sim.turing.store import DB_NAME, Store
    from ivus_sim.turing.study import StudyConfig, build_study

    make_demo_images(tmp_path / "real", 16, size=24, stream="real", prefix="real")
    make_demo_images(tmp_path / "fake", 16, size=24, stream="fake", prefix="sim")
    build_study(tmp_path / "real", tmp_path / "fake", tmp_path / "study",
                StudyConfig(n_readers=2, size=24, seed=3, mode=StudyMode.SINGLE, block_size=1000), progress=False)
    g = np.random.default_rng(0)
    with Store(tmp_path / "study" / DB_NAME) as store:
        for rid, tok in store.readers():
            store.start(tok, 1)
            while (t := store.current_trial(rid)) is not None:
                truth = store.query("SELECT truth FROM trials WHERE reader_id = ? AND position = ?",
                                    (rid, t.position))[0]["truth"]
                said = truth if rid == "R01" else ("real" if g.random() < 0.5 else "simulated")
                store.record_answer(tok, t.token, said, int(g.integers(1, 6)), 2)
    an = analyze_study(tmp_path / "study", n_boot=50)
    assert an.mode == "single" and an.single is not None and an.chain_ok
    by = {r.reader: r for r in an.single.readers}
    assert by["R01"].auc == 1.0 and by["R01"].sensitivity.estimate == 1.0 and by["R01"].n == 32
    assert an.verdict is not None and an.verdict.verdict == "distinguishable" and an.verdict.measure == "AUC"
    rows = imrmc_rows(an)
    assert len([r for r in rows if r[0] == "-1"]) == 32 and len(rows) == 32 + 64
    paths = write_report(an, tmp_path / "rep", plots=False)
    import json

    assert json.loads(paths["json"].read_text())["single"]["verdict"]["verdict"] == "distinguishable"
