"""Seeding: one seed drives every random draw.

Randomness is *sampled* from generators derived here, *recorded* (in the JSON sidecar),
and then *applied* deterministically. Independent streams are derived from the one seed
by name with :class:`numpy.random.SeedSequence`, so adding a new random component never
changes the draws of an existing one.

>>> a = rng(0, "phantom", 3).integers(1000)
>>> b = rng(0, "phantom", 3).integers(1000)
>>> bool(a == b)
True
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch

__all__ = ["derive_seed", "rng", "torch_generator", "seed_everything"]


def _key(part: str | int) -> int:
    if isinstance(part, int):
        return part & 0xFFFFFFFF
    return int.from_bytes(hashlib.sha256(part.encode()).digest()[:4], "little")


def derive_seed(seed: int, *stream: str | int) -> int:
    """A 63-bit child seed for the named ``stream`` of ``seed`` (stable across platforms)."""
    ss = np.random.SeedSequence([_key(seed), *(_key(p) for p in stream)])
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
    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy-global") % 2**32)
    torch.manual_seed(derive_seed(seed, "torch-global"))
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
