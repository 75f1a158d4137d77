"""Which generator produces an image: the one :class:`Engine` enum every command and module uses."""

from __future__ import annotations

from enum import Enum

__all__ = ["Engine"]


class Engine(str, Enum):
    """Which generator produces the images."""

    LEARNED = "learned"  # the two-stage conditional AAE (embedded default or a user's run)
    PHYSICS = "physics"  # the stage-0 pseudo B-mode physics engine
