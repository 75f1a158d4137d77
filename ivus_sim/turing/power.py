"""Sample size for a 2AFC visual Turing test.

Two questions, both answered with *exact* binomial power:

* **equivalence** ("readers cannot tell": accuracy within ``0.5 +- margin``): power of the TOST
  (``statsmodels.stats.proportion.power_binom_tost``) when the true accuracy is ``p_true``
  (default 0.5);
* **difference** ("readers can tell" when the true accuracy is ``detect``): power of the
  two-sided exact binomial test against 0.5.

Exact power is a saw-tooth in ``n``; the number reported is the smallest ``n`` from which the
power *stays* at or above the target (checked up to ``2 n + 200``), not the first ``n`` that
touches it (that first ``n`` is reported too, as ``*_first``). At alpha 0.05 and power 0.8
this gives 100 / 227 / 888 trials for margins 0.15 / 0.10 / 0.05 at a true 50 % (first touch:
96 / 214 / 861), and 210 / 54 trials to detect 60 % / 70 % (first touch: 199 / 49).

Several readers reading the same pairs are correlated: with intra-class correlation ``icc``
the effective number of independent trials is ``R * P / (1 + (R - 1) icc)`` (design effect),
so the pairs each reader must read are ``P = ceil(n * (1 + (R - 1) icc) / R)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError

__all__ = ["PowerPlan", "power_difference", "power_equivalence", "stable_min_n", "design_effect", "plan_study"]

N_MAX = 200_000


def power_difference(n: int, p_alt: float, alpha: float = 0.05) -> float:
    """Exact power of the two-sided exact binomial test of 0.5 with ``n`` trials at true ``p_alt``."""
    from scipy.stats import binom

    k = np.arange(n + 1)
    p_two = np.minimum(1.0, 2.0 * np.minimum(binom.cdf(k, n, 0.5), binom.sf(k - 1, n, 0.5)))
    reject = p_two <= alpha * (1 + 1e-12)
    return float(binom.pmf(k[reject], n, p_alt).sum())


def power_equivalence(n: int, margin: float, p_true: float = 0.5, alpha: float = 0.05) -> float:
    """Exact power of the TOST for ``|p - 0.5| < margin`` with ``n`` trials at true ``p_true``."""
    from statsmodels.stats.proportion import power_binom_tost

    return float(power_binom_tost(0.5 - margin, 0.5 + margin, n, p_alt=p_true, alpha=alpha))


def stable_min_n(power: Callable[[int], float], target: float, n_guess: int) -> tuple[int, int]:
    """``(first, stable)``: the smallest ``n`` with ``power(n) >= target``, and the smallest ``n``
    with ``power(m) >= target`` for every ``m`` in ``[n, 2 n + 200]``."""
    hi = max(2 * n_guess + 200, 50)
    while hi <= N_MAX:
        pw = np.array([power(m) for m in range(1, hi + 1)])
        bad = np.flatnonzero(pw < target)
        n = int(bad[-1]) + 2 if len(bad) else 1
        if n <= (hi - 200) // 2:
            return int(np.argmax(pw >= target)) + 1, n
        hi = 2 * hi
    raise IvusSimError(f"more than {N_MAX} trials would be needed; relax the margin, power or alpha")


def design_effect(readers: int, icc: float) -> float:
    """``1 + (readers - 1) icc``."""
    return 1.0 + (readers - 1) * icc


@dataclass(frozen=True)
class PowerPlan:
    """Trials and pairs needed (see the module docstring)."""

    alpha: float
    power: float
    readers: int
    icc: float
    design_effect: float
    margin: float | None
    p_true: float
    trials_equivalence: int | None  # independent trials for the TOST (power stays >= target from here)
    trials_equivalence_first: int | None  # first n whose power reaches the target
    pairs_equivalence: int | None  # pairs per reader
    detect: float | None
    trials_difference: int | None
    trials_difference_first: int | None
    pairs_difference: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _normal_guess(z_sum: float, var: float, delta: float) -> int:
    return max(1, math.ceil(z_sum**2 * var / delta**2))


def plan_study(*, margin: float | None = 0.10, power: float = 0.8, alpha: float = 0.05, readers: int = 1,
               icc: float = 0.0, detect: float | None = None, p_true: float = 0.5) -> PowerPlan:
    """Number of trials and pairs per reader for an equivalence and/or a difference claim.

    Args:
        margin: equivalence margin around 0.5 (``None``: skip).
        power: target power. alpha: test level.
        readers: readers who each read every pair.
        icc: intra-class correlation of correctness between readers on the same pair.
        detect: true accuracy to detect with the binomial test (``None``: skip).
        p_true: true accuracy assumed for the equivalence power (0.5 = perfect simulation).
    """
    from scipy.stats import norm

    if not 0 < power < 1 or not 0 < alpha < 1:
        raise IvusSimError("power and alpha must be in (0, 1)")
    if readers < 1:
        raise IvusSimError(f"--readers must be >= 1, got {readers}")
    if not 0 <= icc <= 1:
        raise IvusSimError(f"--icc must be in [0, 1], got {icc}")
    if margin is None and detect is None:
        raise IvusSimError("give a margin, an accuracy to detect, or both")
    de = design_effect(readers, icc)
    n_eq = p_eq = n_d = p_d = f_eq = f_d = None
    if margin is not None:
        if not 0 < margin < 0.5:
            raise IvusSimError(f"--margin must be in (0, 0.5), got {margin}")
        if abs(p_true - 0.5) >= margin:
            raise IvusSimError(f"p_true {p_true} lies outside the equivalence margin; equivalence cannot be shown")
        guess = _normal_guess(norm.ppf(1 - alpha) + norm.ppf(1 - (1 - power) / 2), 0.25, margin - abs(p_true - 0.5))
        f_eq, n_eq = stable_min_n(lambda n: power_equivalence(n, margin, p_true, alpha), power, guess)
        p_eq = math.ceil(n_eq * de / readers)
    if detect is not None:
        if not 0 < detect < 1 or detect == 0.5:
            raise IvusSimError(f"--detect must be in (0, 1) and differ from 0.5, got {detect}")
        guess = _normal_guess(norm.ppf(1 - alpha / 2) + norm.ppf(power), detect * (1 - detect), detect - 0.5)
        f_d, n_d = stable_min_n(lambda n: power_difference(n, detect, alpha), power, guess)
        p_d = math.ceil(n_d * de / readers)
    return PowerPlan(alpha, power, readers, icc, de, margin, p_true, n_eq, f_eq, p_eq, detect, n_d, f_d, p_d)
