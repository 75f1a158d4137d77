"""An exponential moving average of the generator's weights (what a run exports when enabled).

GAN generators keep moving after they have converged: the adversarial losses push the weights
around a good point rather than into it, so the weights of the last step are one draw from that
orbit and two runs (or two stopping steps) of one config give visibly different textures. The
average of the recent weights sits nearer the centre (Yazici et al., "The unusual effectiveness of
averaging in GAN training", ICLR 2019; the generator EMA of Karras et al., ProGAN 2018 and
StyleGAN). Training itself is unchanged: the optimisers step the live weights, the average follows
them after each step, and the average is what the run's sample grids, held-out measurement and
exported model use.

With few steps a fixed decay would be dominated by the random init, so the decay warms up
(TensorFlow's ``ExponentialMovingAverage(num_updates=...)``): update ``n`` (0-based) uses
``min(decay, (1 + n) / (10 + n))``; an 800-step run with ``decay: 0.995`` thus averages about its
last tenth.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """Exponential moving average of a fixed list of parameters.

    Args:
        params: ``(name, parameter)`` pairs to average, named as in the model's ``state_dict`` (the
            generator's: encoders, decoders, formation parameters; not the discriminators').
            A parameter listed twice is averaged once.
        decay: the average's decay per step, in ``[0, 1)`` (``0``: the average is the live weights).
    """

    def __init__(self, params: Iterable[tuple[str, nn.Parameter]], decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")  # programming error: the config checks it
        seen: set[int] = set()
        self.names: list[str] = []
        self.params: list[nn.Parameter] = []
        for name, p in params:
            if id(p) not in seen:
                seen.add(id(p))
                self.names.append(name)
                self.params.append(p)
        self.decay = float(decay)
        self.updates = 0
        self.shadow: list[torch.Tensor] = [p.detach().clone() for p in self.params]

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses (warm-up ``(1 + n) / (10 + n)``, capped at ``decay``)."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the live weights: ``avg <- d * avg + (1 - d) * w``."""
        d = self.current_decay()
        for s, p in zip(self.shadow, self.params):
            s.mul_(d).add_(p.detach().to(s.dtype), alpha=1.0 - d)
        self.updates += 1

    @contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """Within the block the parameters hold the average; the live weights are restored after."""
        live = [p.detach().clone() for p in self.params]
        try:
            for s, p in zip(self.shadow, self.params):
                p.copy_(s)
            yield
        finally:
            for w, p in zip(live, self.params):
                p.copy_(w)

    def averaged(self) -> dict[str, torch.Tensor]:
        """The averaged weights by ``state_dict`` name (they override the model's in an export)."""
        return {n: s.detach().clone() for n, s in zip(self.names, self.shadow)}

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (exact resume; ``shadow`` by ``state_dict`` name)."""
        return {"decay": self.decay, "updates": self.updates, "shadow": self.averaged()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (same parameter names and shapes)."""
        shadow = state["shadow"]
        if set(shadow) != set(self.names) or any(shadow[n].shape != p.shape for n, p in zip(self.names, self.params)):
            raise ValueError("weight-average state does not match the model's parameters")
        self.updates = int(state["updates"])
        self.shadow = [shadow[n].detach().to(p.device, p.dtype).clone() for n, p in zip(self.names, self.params)]
