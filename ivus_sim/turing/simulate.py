"""Simulated readers: answer a built study through the same storage path the web app uses.

For demos (a notebook can build a small study, let simulated readers answer, and analyse) and
tests. Each simulated reader is an equal-variance signal-detection observer: on a trial with
the real image on side ``s`` (+1 left, -1 right) it draws ``x = s * d / sqrt(2) + bias + N(0, 1)``
with ``d = sqrt(2) * Phi^-1(accuracy)`` (so P(correct) = ``accuracy`` without bias), answers
"left" when ``x > 0`` and, if ``confidence`` is on, gives ``1 + min(4, floor(|x| / 0.5))``.
Obvious-fake catch trials use ``catch_accuracy``; real-vs-real trials use ``s = 0``. In
single-image mode ``s`` is +1 for a real and -1 for a simulated frame, the answer is "real" when
``x > 0`` (so ``accuracy`` is again P(correct) without bias) and the confidence is the rating.
Every draw comes from ``ivus_sim.seeding`` stream ``turing-sim-reader`` of ``seed`` and the
reader id; answers are stored with :meth:`ivus_sim.turing.store.Store.record_answer` (the
same validation, transaction and audit log as a browser answer), with response times drawn
from a log-normal around 2 s.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import rng
from ivus_sim.turing.store import DB_NAME, Store

__all__ = ["simulate_readers"]


def simulate_readers(study: str | Path, *, accuracy: float | dict[str, float] = 0.5, seed: int = 0,
                     confidence: bool = True, catch_accuracy: float = 0.97, left_bias: float = 0.0,
                     readers: list[str] | None = None, max_trials: int | None = None) -> dict[str, int]:
    """Let simulated readers answer (the rest of) their schedules.

    Args:
        study: the study folder.
        accuracy: true 2AFC accuracy, one for all or per reader id (in (0, 1)).
        seed: drives every simulated decision.
        confidence: give a 1-5 confidence with each answer.
        catch_accuracy: accuracy on obvious-fake catch trials.
        left_bias: shift of the decision variable towards "left" (0 = unbiased).
        readers: reader ids to simulate (default all).
        max_trials: stop each reader after this many answers in this call (``None``: finish).

    Returns:
        ``reader id -> number of answers stored by this call``.
    """
    from scipy.stats import norm

    store = Store(Path(study) / DB_NAME)
    try:
        all_ids = {rid: tok for rid, tok in store.readers()}
        ids = list(all_ids) if readers is None else list(readers)
        unknown = [r for r in ids if r not in all_ids]
        if unknown:
            raise IvusSimError(f"unknown reader id(s): {', '.join(unknown)}")
        done: dict[str, int] = {}
        for rid in ids:
            acc = accuracy[rid] if isinstance(accuracy, dict) else accuracy
            if not 0 < acc < 1 or not 0 < catch_accuracy < 1:
                raise IvusSimError("simulated accuracies must lie strictly between 0 and 1")
            d_main = math.sqrt(2) * float(norm.ppf(acc))
            d_catch = math.sqrt(2) * float(norm.ppf(catch_accuracy))
            token = all_ids[rid]
            now = time.time_ns()
            store.start(token, now)
            n = 0
            while max_trials is None or n < max_trials:
                st = store.state(rid)
                if st.done:
                    break
                if st.break_pending:
                    store.continue_break(token, now)
                trial = store.current_trial(rid)
                assert trial is not None
                key = store.query("SELECT kind, real_side, truth FROM trials WHERE reader_id = ? AND position = ?",
                                  (rid, trial.position))[0]
                g = rng(seed, "turing-sim-reader", rid, trial.position)
                single = key["truth"] is not None
                if single:
                    s = 1.0 if key["truth"] == "real" else -1.0
                else:
                    s = 0.0 if key["real_side"] is None else (1.0 if key["real_side"] == "left" else -1.0)
                d = d_catch if key["kind"] == "obvious" else d_main
                x = s * d / math.sqrt(2) + left_bias + float(g.normal())
                conf = 1 + min(4, int(abs(x) / 0.5)) if confidence else None
                store.mark_shown(rid, trial.position, now)
                now += int(1e6 * 2000 * math.exp(0.4 * float(g.normal())))
                answer = ("real" if x > 0 else "simulated") if single else ("left" if x > 0 else "right")
                store.record_answer(token, trial.token, answer, conf, now)
                n += 1
            done[rid] = n
        return done
    finally:
        store.close()
