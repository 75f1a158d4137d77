"""The study verdict: per reader first, then the readers-and-cases random-effects interval.

Rules (the same for the 2AFC and the single-image mode; docs/reader-study.md, "Verdict"):

1. **Per reader.** Each reader gets a call: ``better`` / ``reversed`` (accuracy or AUC
   significantly above / below 0.5: the test's p-value, Holm-adjusted across readers, below
   ``alpha``), ``equivalent`` (equivalence to 0.5 within ``+-margin`` shown: TOST p below
   ``alpha``), ``inconclusive`` (neither) or ``no answers``.
2. **distinguishable** when any reader is ``better`` or ``reversed`` (a reader at 0.2 tells the
   classes apart as well as one at 0.8, with the labels swapped), or when the random-effects
   ``1 - alpha`` interval of the population accuracy excludes 0.5.
3. otherwise **indistinguishable** when every reader is ``equivalent`` (an intersection-union
   test: no multiplicity adjustment is needed), or when the random-effects ``1 - 2 alpha``
   interval (the interval form of TOST) lies entirely inside ``0.5 +- margin``.
4. otherwise **inconclusive** (more readers or cases are needed).

Pooling all reads into one binomial test is *not* a rule: it treats reads as independent and
lets readers who discriminate in opposite directions cancel out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ivus_sim.turing.stats import CrossedResult

__all__ = ["ReaderCall", "Verdict", "decide", "reader_call", "DISTINGUISHABLE", "INDISTINGUISHABLE", "INCONCLUSIVE"]

DISTINGUISHABLE = "distinguishable"
INDISTINGUISHABLE = "indistinguishable"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ReaderCall:
    """One reader's part of the verdict.

    Attributes:
        reader: reader id. n: reads used. estimate: accuracy (2AFC) or AUC (single image).
        p_difference: Holm-adjusted p-value of the test against 0.5 (``None``: no answers).
        p_equivalence: TOST p-value for ``|estimate - 0.5| < margin``.
        call: ``better`` | ``reversed`` | ``equivalent`` | ``inconclusive`` | ``no answers``.
    """

    reader: str
    n: int
    estimate: float | None
    p_difference: float | None
    p_equivalence: float | None
    call: str


@dataclass(frozen=True)
class Verdict:
    """The structured verdict written to ``analysis.json`` (``to_dict``) and its sentence."""

    verdict: str
    rule: str
    sentence: str
    margin: float
    alpha: float
    measure: str
    per_reader: tuple[ReaderCall, ...]
    random_effects: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_reader"] = [asdict(c) for c in self.per_reader]
        return d


def reader_call(reader: str, n: int, estimate: float | None, p_difference: float | None,
                p_equivalence: float | None, alpha: float) -> ReaderCall:
    """Classify one reader (see the module docstring)."""
    if n == 0 or estimate is None or not math.isfinite(estimate):
        return ReaderCall(reader, n, None, None, None, "no answers")
    if p_difference is not None and math.isfinite(p_difference) and p_difference < alpha:
        call = "better" if estimate > 0.5 else "reversed"
    elif p_equivalence is not None and math.isfinite(p_equivalence) and p_equivalence < alpha:
        call = "equivalent"
    else:
        call = "inconclusive"
    return ReaderCall(reader, n, float(estimate), p_difference, p_equivalence, call)


def _fmt_ci(ci: tuple[float, float]) -> str:
    return f"{ci[0]:.3f}-{ci[1]:.3f}"


def decide(calls: list[ReaderCall], crossed: CrossedResult | None, margin: float, alpha: float,
           measure: str = "accuracy") -> Verdict:
    """Apply the verdict rules to per-reader calls and the random-effects result."""
    lvl, lvl_eq = round(100 * (1 - alpha)), round(100 * (1 - 2 * alpha))
    re: dict[str, Any] | None = None
    if crossed is not None:
        re = {"method": crossed.method, "estimate": crossed.accuracy, "ci": list(crossed.ci),
              "ci_level": 1 - alpha, "ci_equivalence": list(crossed.ci_equivalence),
              "ci_equivalence_level": 1 - 2 * alpha, "se": crossed.se, "df": crossed.df,
              "reader_var": crossed.reader_var, "case_var": crossed.case_var,
              "residual_var": crossed.residual_var, "n_readers": crossed.n_readers, "n_cases": crossed.n_cases,
              "bootstrap_ci": None if crossed.bootstrap_ci is None else list(crossed.bootstrap_ci)}
    answered = [c for c in calls if c.call != "no answers"]
    discr = [c for c in calls if c.call in ("better", "reversed")]
    what = "accuracy" if measure == "accuracy" else measure
    if not answered:
        verdict, rule = INCONCLUSIVE, "no answers yet"
        sentence = "No answers yet: no verdict."
    elif discr:
        names = ", ".join(f"{c.reader} ({'above' if c.call == 'better' else 'below'} chance, {what} "
                          f"{c.estimate:.2f})" for c in discr)
        verdict = DISTINGUISHABLE
        rule = "a reader's test against 0.5 is significant (Holm-adjusted across readers)"
        sentence = (f"Distinguishable: {len(discr)} of {len(calls)} readers told real from simulated frames apart "
                    f"- {names}; a reader below chance discriminates too, with the labels reversed.")
    elif crossed is not None and not crossed.ci[0] <= 0.5 <= crossed.ci[1]:
        verdict = DISTINGUISHABLE
        rule = f"the readers-and-cases random-effects {lvl}% interval excludes 0.5"
        sentence = (f"Distinguishable: no single reader is significant, but the readers-and-cases random-effects "
                    f"accuracy {crossed.accuracy:.3f} ({lvl}% CI {_fmt_ci(crossed.ci)}) excludes 0.5.")
    elif len(answered) == len(calls) and all(c.call == "equivalent" for c in calls):
        verdict = INDISTINGUISHABLE
        rule = f"every reader is equivalent to chance within +-{margin:.2f} (TOST at alpha {alpha})"
        sentence = (f"Indistinguishable: every one of the {len(calls)} readers is equivalent to chance within "
                    f"+-{margin:.2f} (TOST p<{alpha}).")
    elif crossed is not None and 0.5 - margin <= crossed.ci_equivalence[0] and crossed.ci_equivalence[1] <= \
            0.5 + margin:
        verdict = INDISTINGUISHABLE
        rule = f"the readers-and-cases random-effects {lvl_eq}% interval lies within 0.5 +- {margin:.2f}"
        sentence = (f"Indistinguishable: the readers-and-cases random-effects accuracy {crossed.accuracy:.3f} "
                    f"({lvl_eq}% CI {_fmt_ci(crossed.ci_equivalence)}) lies within 0.5 +- {margin:.2f}.")
    else:
        verdict = INCONCLUSIVE
        rule = ("no reader differs significantly from 0.5, and equivalence within the margin is shown neither for "
                "every reader nor by the random-effects interval")
        re_txt = (f"; random-effects accuracy {crossed.accuracy:.3f}, {lvl_eq}% CI {_fmt_ci(crossed.ci_equivalence)}"
                  if crossed is not None else "")
        n_eq = sum(c.call == "equivalent" for c in calls)
        sentence = (f"Inconclusive: no reader told the frames apart significantly, but only {n_eq} of {len(calls)} "
                    f"readers are shown equivalent to chance within +-{margin:.2f}{re_txt}; more readers or cases "
                    "are needed.")
    return Verdict(verdict, rule, sentence, margin, alpha, measure, tuple(calls), re)
