"""Seeding: one seed drives every random draw.

Randomness is *sampled* from generators derived here, *recorded* (in the JSON sidecar),
and then *applied* deterministically. Independent streams are derived from the one seed
by name with :class:`numpy.random.SeedSequence`, so adding a new random component never
changes the draws of an existing one.

Valid seeds are integers ``0 <= seed < 2**63`` (:data:`SEED_LIMIT`); every CLI and every
function here checks them with :func:`check_seed` (anything else is an :class:`IvusSimError`).
The whole seed is used: ``2**32`` and ``0`` draw differently (seeds below ``2**32`` keep the
draws they always had).

>>> a = rng(0, "phantom", 3).integers(1000)
>>> b = rng(0, "phantom", 3).integers(1000)
>>> bool(a == b)
True
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch

from ivus_sim.errors import IvusSimError

__all__ = ["SEED_LIMIT", "check_seed", "derive_seed", "rng", "torch_generator", "seed_everything"]

#: seeds must satisfy ``0 <= seed < SEED_LIMIT``
SEED_LIMIT = 2**63


def check_seed(seed: Any, what: str = "--seed") -> int:
    """Return ``seed`` as an int if ``0 <= seed < 2**63``, else raise a one-line :class:`IvusSimError`.

    Accepts Python/numpy integers and decimal strings; rejects bools, floats, negatives and
    seeds of 2**63 or more. ``what`` names the option in the message.
    """
    if isinstance(seed, str):
        try:
            value = int(seed.strip(), 10)
        except ValueError:
            raise IvusSimError(f"{what} must be an integer 0 <= seed < 2**63, got {seed!r}") from None
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool | np.bool_):
        value = int(seed)
    else:
        raise IvusSimError(f"{what} must be an integer 0 <= seed < 2**63, got {seed!r}")
    if not 0 <= value < SEED_LIMIT:
        raise IvusSimError(f"{what} must be an integer 0 <= seed < 2**63, got {value}")
    return value


def _key(part: str | int) -> int:
    if isinstance(part, int | np.integer):
        return int(part) & 0xFFFFFFFF
    return int.from_bytes(hashlib.sha256(part.encode()).digest()[:4], "little")


#: marks the high 32 bits of a seed >= 2**32 in the entropy (so it cannot read as a stream index)
_HIGH = _key("ivus-sim/seed-high-bits")
#: marks a stream index outside 0 <= i < 2**32 (its full value follows, so 2**32 is not index 0)
_WIDE = _key("ivus-sim/wide-stream-index")


def _stream_words(part: str | int) -> list[int]:
    if isinstance(part, int | np.integer) and not 0 <= int(part) < 2**32:
        v = int(part)
        words = [_WIDE, 1 if v < 0 else 0]
        v = abs(v)
        while v:
            words.append(v & 0xFFFFFFFF)
            v >>= 32
        return words
    return [_key(part)]  # unchanged since the first release


def _seed_words(seed: int) -> list[int]:
    seed = check_seed(seed, "seed")
    if seed < 2**32:
        return [seed]  # unchanged since the first release
    return [seed & 0xFFFFFFFF, _HIGH, seed >> 32]


def derive_seed(seed: int, *stream: str | int) -> int:
    """A 63-bit child seed for the named ``stream`` of ``seed`` (stable across platforms).

    Raises:
        IvusSimError: ``seed`` is not an integer ``0 <= seed < 2**63``.
    """
    ss = np.random.SeedSequence([*_seed_words(seed), *(w for p in stream for w in _stream_words(p))])
    return int(ss.generate_state(2, dtype=np.uint32).astype(np.uint64) @ np.array([1, 2**32], dtype=np.uint64)) >> 1


def rng(seed: int, *stream: str | int) -> np.random.Generator:
    """A numpy generator for the named stream of ``seed``."""
    return np.random.default_rng(derive_seed(seed, *stream))


def torch_generator(seed: int, *stream: str | int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator (on ``device``) for the named stream of ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *stream))
    return g


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, numpy's legacy global state and torch (used by training loops only).

    Args:
        seed: the run seed.
        deterministic: also ask torch for deterministic algorithms (CPU resume tests).
    """
    seed = check_seed(seed, "seed")
    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy-global") % 2**32)
    torch.manual_seed(derive_seed(seed, "torch-global"))
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
