"""Per-reader trial schedules: deterministic from (study seed, reader id), exactly balanced.

For each reader the schedule is drawn from ``ivus_sim.seeding.rng(seed, "turing-schedule",
reader_id)``, so it can be regenerated from the study sidecar, and differs between readers:

* every main pair appears once, in a random order;
* the real image is on the left in **exactly half** of the main trials (``P // 2`` or, for an
  odd number of pairs ``P``, one more on a random side) - a balanced permutation, not coin
  flips, so a reader who always answers "left" scores exactly 50 %;
* catch trials are mixed in at random positions: ``obvious`` (a real image against an
  obviously artificial one: attention check, sides balanced the same way), ``real_real``
  (two real images: no correct answer, measures guessing and side preference) and ``repeat``
  (a main pair shown again **with sides swapped**, at least ``gap`` trials after its first
  showing: within-reader consistency).

Trials are cut into blocks of ``block_size`` (a break page is shown between blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from ivus_sim.seeding import rng

__all__ = ["Side", "TrialKind", "CatchItems", "ScheduledTrial", "balanced_sides", "make_schedule"]


class Side(str, Enum):
    """Left or right image of a trial."""

    LEFT = "left"
    RIGHT = "right"

    @property
    def other(self) -> Side:
        return Side.RIGHT if self is Side.LEFT else Side.LEFT


class TrialKind(str, Enum):
    """Main trials are analysed for realism; the others are catch trials."""

    MAIN = "main"
    OBVIOUS = "obvious"
    REAL_REAL = "real_real"
    REPEAT = "repeat"


@dataclass(frozen=True)
class CatchItems:
    """Study-level catch material (the same for every reader).

    Attributes:
        obvious: ``(real_image, obvious_fake_image)`` ids.
        real_real: ``(real_image_a, real_image_b)`` ids.
        n_repeats: number of main pairs to repeat with sides swapped.
    """

    obvious: tuple[tuple[int, int], ...] = ()
    real_real: tuple[tuple[int, int], ...] = ()
    n_repeats: int = 0


@dataclass(frozen=True)
class ScheduledTrial:
    """One trial of one reader's schedule.

    Attributes:
        position: 0-based index in the reader's schedule.
        kind: main or a catch kind.
        item: main pair index (MAIN, REPEAT) or catch item index (OBVIOUS, REAL_REAL).
        left, right: image ids shown on each side.
        real_side: side of the real image (``None`` for REAL_REAL: both are real).
        repeat_of: position of the first showing (REPEAT only).
        block: block index (``position // block_size``).
    """

    position: int
    kind: TrialKind
    item: int
    left: int
    right: int
    real_side: Side | None
    repeat_of: int | None
    block: int


def balanced_sides(n: int, g: np.random.Generator) -> list[Side]:
    """``n`` sides with exactly ``n // 2`` of each (the odd one out on a random side), shuffled."""
    n_left = n // 2 + (int(g.integers(2)) if n % 2 else 0)
    sides = np.array([True] * n_left + [False] * (n - n_left))
    g.shuffle(sides)
    return [Side.LEFT if s else Side.RIGHT for s in sides]


def make_schedule(pairs: list[tuple[int, int]], reader_id: str, seed: int, *, catch: CatchItems | None = None,
                  block_size: int = 50, min_repeat_gap: int = 10) -> list[ScheduledTrial]:
    """The schedule of one reader.

    Args:
        pairs: main pairs as ``(real_image_id, fake_image_id)``; index = pair index.
        reader_id: the reader's id (part of the random stream name).
        seed: the study seed.
        catch: catch material (none by default).
        block_size: trials per block (>= 1).
        min_repeat_gap: a repeat comes at least ``min(min_repeat_gap, P // 4)`` (and >= 1)
            trials after the first showing.

    Returns:
        The trials in presentation order.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    catch = catch or CatchItems()
    if catch.n_repeats > len(pairs):
        raise ValueError(f"cannot repeat {catch.n_repeats} pairs out of {len(pairs)}")
    g = rng(seed, "turing-schedule", reader_id)
    main_sides = balanced_sides(len(pairs), g)
    obvious_sides = balanced_sides(len(catch.obvious), g)
    # (kind, item, left, right, real_side, original_entry)
    entries: list[list] = []
    for i, ((real, fake), side) in enumerate(zip(pairs, main_sides, strict=True)):
        entries.append([TrialKind.MAIN, i, *((real, fake) if side is Side.LEFT else (fake, real)), side, None])
    for i, ((real, fake), side) in enumerate(zip(catch.obvious, obvious_sides, strict=True)):
        entries.append([TrialKind.OBVIOUS, i, *((real, fake) if side is Side.LEFT else (fake, real)), side, None])
    for i, (a, b) in enumerate(catch.real_real):
        entries.append([TrialKind.REAL_REAL, i, *((a, b) if g.integers(2) else (b, a)), None, None])
    seq = [entries[int(j)] for j in g.permutation(len(entries))]
    gap = max(1, min(min_repeat_gap, len(pairs) // 4))
    repeated: set[int] = set()
    for _ in range(catch.n_repeats):
        cands = [p for p, e in enumerate(seq)
                 if e[0] is TrialKind.MAIN and e[1] not in repeated and p + gap < len(seq)]
        if not cands:  # schedule too short for the gap: allow the repeat right after the end
            cands = [p for p, e in enumerate(seq) if e[0] is TrialKind.MAIN and e[1] not in repeated]
        p = cands[int(g.integers(len(cands)))]
        orig = seq[p]
        repeated.add(orig[1])
        lo = min(p + gap + 1, len(seq))
        at = int(g.integers(lo, len(seq) + 1))
        seq.insert(at, [TrialKind.REPEAT, orig[1], orig[3], orig[2], orig[4].other, orig])
    position = {id(e): k for k, e in enumerate(seq)}
    return [ScheduledTrial(position=k, kind=e[0], item=int(e[1]), left=int(e[2]), right=int(e[3]),
                           real_side=e[4], repeat_of=None if e[5] is None else position[id(e[5])],
                           block=k // block_size)
            for k, e in enumerate(seq)]
