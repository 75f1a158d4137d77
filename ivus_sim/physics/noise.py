"""Step: electronic (thermal) receive noise.

White Gaussian noise of power ``10^(noise_db/10)`` is added to the laterally filtered scatterer
field *before* the axial pulse filter, i.e. band-limited by the receive band like real
receiver noise, and independent between A-lines. It sets the floor that TGC amplifies at depth
and the grain of the dark lumen and of acoustic shadows.
"""

from __future__ import annotations

import torch

__all__ = ["receive_noise", "noise_power"]


def noise_power(noise_db: float) -> float:
    """Noise power (linear) of a ``noise_db`` setting."""
    return float(10 ** (noise_db / 10))


def receive_noise(shape: tuple[int, ...], noise_db: float, generators: list[torch.Generator],
                  device: str | torch.device) -> torch.Tensor:
    """Real white noise ``(B, A, S)`` of power ``10^(noise_db/10)``, one generator per image."""
    out = torch.empty(shape, dtype=torch.float32, device=device)
    for i, g in enumerate(generators):
        torch.randn(shape[1:], generator=g, out=out[i])
    return out.mul_(noise_power(noise_db) ** 0.5)
