"""Pairing: which simulated image is shown next to which real image.

Matching rule (``PairingMode.AUTO``): file names are reduced to a *case key* - the stem,
lower-cased, with class words (``real``, ``fake``, ``sim``, ``simulated``, ``synthetic``,
``generated``, ``gen``, ``pred``, ``orig``, ``original``, ``gt``) removed and separators
collapsed, so ``real_p003_f012.png`` and ``sim-p003-f012.png`` both give ``p003_f012`` (the
same phantom and frame). Every simulated image whose key matches exactly one unused real
image is paired with it ("name"); the remaining simulated images are paired with the remaining
real images at random ("random"; drawn from ``ivus_sim.seeding`` stream ``turing-pairing``).
``NAME`` requires every pair to match by name; ``RANDOM`` ignores names. No image is used in
two main pairs, so at most ``min(n_real, n_simulated)`` pairs exist; ``n_pairs`` picks a random
subset of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import rng

__all__ = ["PairingMode", "Pair", "case_key", "make_pairs"]

_CLASS_WORDS = {"real", "fake", "sim", "simulated", "synthetic", "synth", "generated", "gen", "pred", "orig",
                "original", "gt", "image", "img"}


class PairingMode(str, Enum):
    """How simulated images are paired with real ones."""

    AUTO = "auto"
    NAME = "name"
    RANDOM = "random"


@dataclass(frozen=True)
class Pair:
    """A main trial's image pair.

    Attributes:
        real: path of the real image. fake: path of the simulated image.
        matched_by: ``"name"`` (same case key) or ``"random"``.
    """

    real: Path
    fake: Path
    matched_by: str


def case_key(path: str | Path) -> str:
    """The case key of a file name (see the module docstring)."""
    stem = Path(path).name.split(".")[0].lower()
    tokens = [t for t in re.split(r"[^a-z0-9]+", stem) if t and t not in _CLASS_WORDS]
    return "_".join(tokens)


def make_pairs(real: list[Path], fake: list[Path], *, mode: PairingMode = PairingMode.AUTO,
               n_pairs: int | None = None, seed: int = 0) -> list[Pair]:
    """Pair simulated with real images.

    Args:
        real: real image paths. fake: simulated image paths.
        mode: see :class:`PairingMode`.
        n_pairs: number of pairs to keep (random subset); ``None`` keeps all.
        seed: study seed.

    Returns:
        Pairs in a deterministic order (sorted by the simulated file name, then subset).
    """
    mode = PairingMode(mode)
    real = sorted(real)
    fake = sorted(fake)
    if not real or not fake:
        raise IvusSimError("need at least one real and one simulated image")
    g = rng(seed, "turing-pairing")
    pairs: list[Pair] = []
    used_real: set[Path] = set()
    unmatched: list[Path] = []
    if mode is PairingMode.RANDOM:
        unmatched = list(fake)
    else:
        by_key: dict[str, list[Path]] = {}
        for r in real:
            by_key.setdefault(case_key(r), []).append(r)
        for f in fake:
            cands = [r for r in by_key.get(case_key(f), []) if r not in used_real]
            if len(cands) == 1 and case_key(f):
                pairs.append(Pair(cands[0], f, "name"))
                used_real.add(cands[0])
            else:
                unmatched.append(f)
        if mode is PairingMode.NAME and unmatched:
            raise IvusSimError(f"{len(unmatched)} simulated image(s) have no uniquely matching real image by name "
                               f"(first: {unmatched[0].name}); use --pairing auto or random")
    free_real = [r for r in real if r not in used_real]
    order = g.permutation(len(free_real))
    for f, i in zip(unmatched, order, strict=False):
        pairs.append(Pair(free_real[int(i)], f, "random"))
    pairs.sort(key=lambda p: p.fake.name)
    if n_pairs is not None:
        if n_pairs < 1:
            raise IvusSimError(f"--pairs must be >= 1, got {n_pairs}")
        if n_pairs > len(pairs):
            raise IvusSimError(f"--pairs {n_pairs} asks for more pairs than available ({len(pairs)}: each image is "
                               "used in at most one pair)")
        keep = sorted(g.choice(len(pairs), size=n_pairs, replace=False).tolist())
        pairs = [pairs[i] for i in keep]
    return pairs
