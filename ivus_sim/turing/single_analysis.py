"""Analysis of the single-image mode: "real or simulated?" one frame at a time, with a 1-5 rating.

Input is a list of :class:`SingleRead` records (reader, case id, truth, response, rating), so
the analysis does not depend on how a study stores them; :func:`reads_from_store_rows` turns
the rows of :meth:`ivus_sim.turing.store.Store.reads` of a single-mode study into records.

Per reader (main trials only):

* **sensitivity** P(response "real" | real frame) and **specificity** P(response "simulated"
  | simulated frame), exact (Clopper-Pearson) 95 % intervals; **accuracy** P(response =
  truth).
* **ROC AUC** of the rating scale: each read scores ``+rating`` when the response was "real"
  and ``-rating`` when "simulated" (a 10-point scale from "certainly simulated" to
  "certainly real"), against the truth; AUC = Mann-Whitney U / (n1 n0) with its two-sided
  p-value (:func:`scipy.stats.mannwhitneyu`), DeLong standard error and interval. Reads
  without a rating are left out of the AUC (never imputed); a reader who gave no ratings at
  all is scored on the response alone (``auc_basis = "response"``: AUC = (sens + spec) / 2).
  0.5 = chance; the AUC of a single-image reader is the accuracy an ideal 2AFC observer with
  the same internal scale would reach, so the same margin applies.
* a **call** for the verdict: the AUC's Mann-Whitney p-value, Holm-adjusted across readers,
  below ``alpha`` -> ``better`` / ``reversed``; otherwise equivalence of the AUC to 0.5 within
  ``+-margin`` by two one-sided z-tests with the DeLong standard error (TOST) ->
  ``equivalent``; else ``inconclusive``.

Across readers: the crossed readers-and-cases random-effects accuracy
(:func:`ivus_sim.turing.stats.crossed_random_effects` on response = truth; balanced classes
make 0.5 chance), and the verdict of :mod:`ivus_sim.turing.verdict`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ivus_sim.turing import stats as st
from ivus_sim.turing.verdict import Verdict, decide, reader_call

__all__ = ["SingleRead", "SingleReaderResult", "SingleImageAnalysis", "analyze_single_image",
           "reads_from_store_rows"]

REAL = "real"
SIMULATED = "simulated"


@dataclass(frozen=True)
class SingleRead:
    """One single-image read.

    Attributes:
        reader: reader id. case: the case (image) id.
        is_real: the frame is real (truth).
        response: ``"real"`` or ``"simulated"`` (what the reader answered).
        rating: 1 (guess) - 5 (certain) confidence in the response, or ``None`` (not given).
    """

    reader: str
    case: int
    is_real: bool
    response: str
    rating: int | None = None

    def __post_init__(self) -> None:
        if self.response not in (REAL, SIMULATED):
            raise ValueError(f"response must be 'real' or 'simulated', got {self.response!r}")
        if self.rating is not None and not 1 <= int(self.rating) <= 5:
            raise ValueError(f"rating must be 1-5 or None, got {self.rating!r}")

    @property
    def said_real(self) -> bool:
        return self.response == REAL

    @property
    def score(self) -> float | None:
        """``+rating`` for "real", ``-rating`` for "simulated" (``None`` without a rating)."""
        return None if self.rating is None else float(self.rating if self.said_real else -self.rating)


@dataclass
class SingleReaderResult:
    """Statistics of one reader in the single-image mode (see the module docstring)."""

    reader: str
    n: int
    n_rated: int
    accuracy: st.ProportionSummary
    sensitivity: st.ProportionSummary
    specificity: st.ProportionSummary
    auc: float
    auc_se: float
    auc_ci: tuple[float, float]
    auc_basis: str  # "rating" | "response"
    p_auc: float
    p_holm: float | None = None
    p_tost: float | None = None


@dataclass
class SingleImageAnalysis:
    """Result of :func:`analyze_single_image`."""

    margin: float
    alpha: float
    readers: list[SingleReaderResult]
    random_effects: st.CrossedResult | None
    verdict: Verdict
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"margin": self.margin, "alpha": self.alpha, "readers": [asdict(r) for r in self.readers],
                "random_effects": None if self.random_effects is None else asdict(self.random_effects),
                "verdict": self.verdict.to_dict(), "notes": list(self.notes)}


def _tost_z(auc: float, se: float, margin: float) -> float:
    """TOST p-value of ``|auc - 0.5| < margin`` with a normal approximation (``se`` = DeLong)."""
    from scipy.stats import norm

    if not math.isfinite(auc) or not math.isfinite(se):
        return math.nan
    if se == 0:
        return 0.0 if abs(auc - 0.5) < margin else 1.0
    p_lo = float(norm.sf((auc - (0.5 - margin)) / se))
    p_hi = float(norm.cdf((auc - (0.5 + margin)) / se))
    return max(p_lo, p_hi)


def _reader(reader: str, reads: list[SingleRead], alpha: float, margin: float) -> SingleReaderResult:
    from scipy.stats import norm

    truth = np.array([r.is_real for r in reads], bool)
    said = np.array([r.said_real for r in reads], bool)
    rated = [r for r in reads if r.rating is not None]
    if rated:
        scores = np.array([r.score for r in rated], float)
        y = np.array([r.is_real for r in rated], bool)
        basis = "rating"
    else:
        scores, y, basis = np.where(said, 1.0, -1.0), truth, "response"
    auc_res = st.roc_auc(scores, y)
    auc, se = st.delong_auc(scores, y)
    z = float(norm.ppf(1 - alpha / 2))
    ci = (max(0.0, auc - z * se), min(1.0, auc + z * se)) if math.isfinite(se) else (math.nan, math.nan)
    return SingleReaderResult(
        reader=reader, n=len(reads), n_rated=len(rated),
        accuracy=st.proportion_summary(int((said == truth).sum()), len(reads), alpha),
        sensitivity=st.proportion_summary(int((said & truth).sum()), int(truth.sum()), alpha),
        specificity=st.proportion_summary(int((~said & ~truth).sum()), int((~truth).sum()), alpha),
        auc=auc_res.auc, auc_se=se, auc_ci=ci, auc_basis=basis, p_auc=auc_res.p_value,
        p_tost=_tost_z(auc, se, margin))


def analyze_single_image(reads: list[SingleRead], *, margin: float = 0.10, alpha: float = 0.05,
                         readers: list[str] | None = None, n_boot: int = 2000, seed: int = 0) -> SingleImageAnalysis:
    """Per-reader AUC, sensitivity/specificity and the verdict of a single-image study.

    Args:
        reads: the main-trial reads (no practice or catch trials).
        margin: equivalence margin around 0.5 (AUC and accuracy).
        alpha: test level.
        readers: every reader of the study (so a reader without answers counts as "no answers");
            default: the readers present in ``reads``.
        n_boot, seed: the two-way bootstrap beside the random-effects interval.

    Returns:
        :class:`SingleImageAnalysis`.
    """
    ids = list(readers) if readers is not None else sorted({r.reader for r in reads})
    results = []
    for rid in ids:
        mine = [r for r in reads if r.reader == rid]
        if mine:
            results.append(_reader(rid, mine, alpha, margin))
    _, adj = st.holm([r.p_auc for r in results], alpha)
    for r, a in zip(results, adj, strict=True):
        r.p_holm = a if math.isfinite(a) else None
    by = {r.reader: r for r in results}
    calls = [reader_call(rid, by[rid].n, by[rid].auc, by[rid].p_holm, by[rid].p_tost, alpha) if rid in by
             else reader_call(rid, 0, None, None, None, alpha) for rid in ids]
    crossed = st.crossed_random_effects(np.array([float(r.said_real == r.is_real) for r in reads]),
                                        [r.reader for r in reads], [r.case for r in reads], alpha=alpha,
                                        n_boot=n_boot, seed=seed) if reads else None
    notes = []
    n_real = sum(r.is_real for r in reads)
    if reads and n_real != len(reads) - n_real:
        notes.append(f"classes are unbalanced ({n_real} real / {len(reads) - n_real} simulated reads): the "
                     "random-effects accuracy is not centred on 0.5 for a biased reader; rely on the per-reader AUC")
    return SingleImageAnalysis(margin, alpha, results, crossed, decide(calls, crossed, margin, alpha, measure="AUC"),
                               notes)


def reads_from_store_rows(rows: list[dict[str, Any]]) -> list[SingleRead]:
    """Main-trial single-image reads from :meth:`Store.reads` rows (trials with a ``truth``)."""
    return [SingleRead(reader=str(r["reader_id"]), case=int(r["left_image"]), is_real=r["truth"] == REAL,
                       response=str(r["choice"]), rating=None if r["confidence"] is None else int(r["confidence"]))
            for r in rows if r.get("kind") == "main" and r.get("truth") is not None]
