"""Study modes (2AFC pairs or single images), practice trials, and the trials of one reader.

Two ways to ask readers (``turing build --mode``):

* ``2afc`` (default): two frames side by side, "which one was acquired in a patient?"
  (:func:`ivus_sim.turing.schedule.make_schedule`).
* ``single``: one frame at a time, "real or simulated?" with a 1-5 confidence rating (the
  design of most published visual Turing tests). Every image of the main pairs is a *case*
  (the same real and simulated images a 2AFC study of the same folders would show, so the
  same leakage audit applies); every reader reads every case (fully crossed, as MRMC
  analyses expect), in a random order drawn from ``ivus_sim.seeding`` stream
  ``turing-schedule-single`` of the study seed and reader id. The truth is stored per trial
  (``trials.truth``: ``real`` | ``simulated``), the response as ``choice`` (``real`` |
  ``simulated``) and the rating as ``confidence``. Catch trials: obvious fakes (a
  pixel-shuffled frame; the correct response is "simulated") and repeats (an image shown
  again at least ``min(10, cases / 4)`` trials later); real-vs-real catch pairs do not
  exist in this mode. Caveat: with name-matched pairs a reader sees the real and the
  simulated frame of the same anatomy, one after the other; build with ``--pairing random``
  from folders of different anatomy if that is a concern.

**Practice** (``--practice N``): ``N`` trials before the study, with feedback after each
answer, made from images used nowhere else in the study (feedback reveals their truth).
They are stored as trials of kind ``practice`` (block ``-1``), answered and logged like every
other trial, and excluded from the analysis. 2AFC practice needs ``N`` spare real and ``N``
spare simulated images; single-image practice ``ceil(N / 2)`` of each.

The :class:`StudyPlan` (mode, seed, main pairs, catch material, practice material) is stored
in the study database (``meta.schedule_plan``), so ``turing readers add`` draws a new reader's
schedule exactly as the build would have.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import rng
from ivus_sim.turing.schedule import CatchItems, balanced_sides, make_schedule

__all__ = ["StudyMode", "Truth", "TrialRecord", "StudyPlan", "PRACTICE", "PRACTICE_BLOCK", "reader_trials",
           "insert_reader", "load_plan", "PLAN_META"]

PRACTICE = "practice"
PRACTICE_BLOCK = -1
PLAN_META = "schedule_plan"


class StudyMode(str, Enum):
    """How frames are shown: two side by side (``2afc``) or one at a time (``single``)."""

    TWO_AFC = "2afc"
    SINGLE = "single"


class Truth(str, Enum):
    """The class of a frame shown alone (single-image mode)."""

    REAL = "real"
    SIMULATED = "simulated"


@dataclass(frozen=True)
class TrialRecord:
    """One row of the ``trials`` table (without its random tokens).

    Attributes:
        position: 0-based place in the reader's schedule (practice first).
        kind: ``main``, a catch kind (``obvious``, ``real_real``, ``repeat``) or ``practice``.
        item: 2AFC: pair index (main, repeat) or catch/practice item index; single mode: the
            image id of the case (main, repeat) or the catch/practice item index.
        left_image: the left frame (single mode: the frame). right_image: the right frame
            (``None`` in single mode).
        real_side: 2AFC: side of the real frame (``None`` for real-vs-real). truth: single
            mode: ``real`` | ``simulated`` (``None`` in 2AFC).
        repeat_of: position of the first showing (repeats only).
        block: main-trial block (``PRACTICE_BLOCK`` for practice trials).
    """

    position: int
    kind: str
    item: int
    left_image: int
    right_image: int | None
    real_side: str | None
    truth: str | None
    repeat_of: int | None
    block: int


@dataclass(frozen=True)
class StudyPlan:
    """Everything a reader's schedule is drawn from (stored at build, reused by ``readers add``).

    Attributes:
        mode: :class:`StudyMode`.
        seed: the study seed. block_size: main trials per block.
        pairs: main pairs ``(real_image_id, fake_image_id)``.
        catch: catch material (:class:`ivus_sim.turing.schedule.CatchItems`).
        practice_pairs: 2AFC practice pairs ``(real_image_id, fake_image_id)``.
        practice_images: single-mode practice frames ``(image_id, truth)``.
    """

    mode: StudyMode
    seed: int
    block_size: int
    pairs: tuple[tuple[int, int], ...]
    catch: CatchItems = field(default_factory=CatchItems)
    practice_pairs: tuple[tuple[int, int], ...] = ()
    practice_images: tuple[tuple[int, str], ...] = ()

    @property
    def n_practice(self) -> int:
        return len(self.practice_pairs) if self.mode is StudyMode.TWO_AFC else len(self.practice_images)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": StudyMode(self.mode).value, "seed": self.seed, "block_size": self.block_size,
                "pairs": [list(p) for p in self.pairs], "catch": asdict(self.catch),
                "practice_pairs": [list(p) for p in self.practice_pairs],
                "practice_images": [list(p) for p in self.practice_images]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyPlan:
        def pairs(v: Any) -> tuple[tuple[Any, ...], ...]:
            return tuple(tuple(x) for x in v)

        catch = {k: (pairs(v) if isinstance(v, list) else v) for k, v in d.get("catch", {}).items()}
        return cls(mode=StudyMode(d["mode"]), seed=int(d["seed"]), block_size=int(d["block_size"]),
                   pairs=pairs(d["pairs"]), catch=CatchItems(**catch),  # type: ignore[arg-type]
                   practice_pairs=pairs(d.get("practice_pairs", [])),  # type: ignore[arg-type]
                   practice_images=pairs(d.get("practice_images", [])))  # type: ignore[arg-type]


def _practice_trials(plan: StudyPlan, reader_id: str) -> list[TrialRecord]:
    g = rng(plan.seed, "turing-practice", reader_id)
    out: list[TrialRecord] = []
    if plan.mode is StudyMode.TWO_AFC:
        sides = balanced_sides(len(plan.practice_pairs), g)
        for k, i in enumerate(g.permutation(len(plan.practice_pairs))):
            (real, fake), side = plan.practice_pairs[int(i)], sides[int(i)]
            left, right = (real, fake) if side.value == "left" else (fake, real)
            out.append(TrialRecord(k, PRACTICE, int(i), int(left), int(right), side.value, None, None,
                                   PRACTICE_BLOCK))
    else:
        for k, i in enumerate(g.permutation(len(plan.practice_images))):
            image, truth = plan.practice_images[int(i)]
            out.append(TrialRecord(k, PRACTICE, int(i), int(image), None, None, Truth(truth).value, None,
                                   PRACTICE_BLOCK))
    return out


def _single_trials(plan: StudyPlan, reader_id: str, offset: int) -> list[TrialRecord]:
    g = rng(plan.seed, "turing-schedule-single", reader_id)
    # (kind, item, image, truth, original entry)
    entries: list[list[Any]] = []
    for real, fake in plan.pairs:
        entries.append(["main", int(real), int(real), Truth.REAL.value, None])
        entries.append(["main", int(fake), int(fake), Truth.SIMULATED.value, None])
    for i, (_real, obvious) in enumerate(plan.catch.obvious):
        entries.append(["obvious", i, int(obvious), Truth.SIMULATED.value, None])
    seq = [entries[int(j)] for j in g.permutation(len(entries))]
    n_cases = 2 * len(plan.pairs)
    if plan.catch.n_repeats > n_cases:
        raise IvusSimError(f"cannot repeat {plan.catch.n_repeats} images out of {n_cases}")
    gap = max(1, min(10, n_cases // 4))
    repeated: set[int] = set()
    for _ in range(plan.catch.n_repeats):
        cands = [p for p, e in enumerate(seq) if e[0] == "main" and e[1] not in repeated and p + gap < len(seq)]
        if not cands:
            cands = [p for p, e in enumerate(seq) if e[0] == "main" and e[1] not in repeated]
        p = cands[int(g.integers(len(cands)))]
        orig = seq[p]
        repeated.add(orig[1])
        at = int(g.integers(min(p + gap + 1, len(seq)), len(seq) + 1))
        seq.insert(at, ["repeat", orig[1], orig[2], orig[3], orig])
    where = {id(e): k for k, e in enumerate(seq)}
    return [TrialRecord(offset + k, e[0], int(e[1]), int(e[2]), None, None, e[3],
                        None if e[4] is None else offset + where[id(e[4])], k // plan.block_size)
            for k, e in enumerate(seq)]


def reader_trials(plan: StudyPlan, reader_id: str) -> list[TrialRecord]:
    """The full schedule of one reader: practice trials first, then the main schedule.

    Deterministic from ``(plan, reader_id)``; the main part of a 2AFC schedule is exactly
    :func:`ivus_sim.turing.schedule.make_schedule` shifted by the number of practice trials.
    """
    practice = _practice_trials(plan, reader_id)
    n = len(practice)
    if plan.mode is StudyMode.SINGLE:
        return practice + _single_trials(plan, reader_id, n)
    sched = make_schedule(list(plan.pairs), reader_id, plan.seed, catch=plan.catch, block_size=plan.block_size)
    return practice + [TrialRecord(n + t.position, t.kind.value, t.item, t.left, t.right,
                                   None if t.real_side is None else t.real_side.value, None,
                                   None if t.repeat_of is None else n + t.repeat_of, t.block) for t in sched]


def insert_reader(db: sqlite3.Connection, reader_id: str, plan: StudyPlan, token: str | None = None) -> tuple[str, int]:
    """Insert a reader and their trials (inside the caller's transaction).

    Reader link, trial and view tokens are fresh :mod:`secrets` (never derived from the seed).

    Returns:
        ``(link token, number of trials)``.
    """
    token = token or secrets.token_urlsafe(24)
    db.execute("INSERT INTO readers (reader_id, token) VALUES (?, ?)", (reader_id, token))
    trials = reader_trials(plan, reader_id)
    for t in trials:
        db.execute("INSERT INTO trials (reader_id, position, token, kind, item, left_image, right_image, real_side, "
                   "truth, repeat_of, block, left_view, right_view) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (reader_id, t.position, secrets.token_urlsafe(16), t.kind, t.item, t.left_image, t.right_image,
                    t.real_side, t.truth, t.repeat_of, t.block, secrets.token_urlsafe(16),
                    None if t.right_image is None else secrets.token_urlsafe(16)))
    return token, len(trials)


def load_plan(meta_value: Any) -> StudyPlan:
    """The :class:`StudyPlan` stored in ``meta.schedule_plan`` (an error for studies built without one)."""
    if not meta_value:
        raise IvusSimError("this study was built by an older version (no stored schedule plan); rebuild it to "
                           "add readers")
    return StudyPlan.from_dict(meta_value)
