"""Latent paths: spherical interpolation (slerp) between codes, and smooth per-frame paths along a pullback.

Pullbacks ``(F, N, N)`` are simulated frame by frame with random inputs that vary *smoothly*
along the pullback, so neighbouring frames do not flicker: a few *anchor* draws are made, one
every ``frames_per_code`` frames, and every frame's latent codes and noise maps are spherical
interpolations between the two anchors around it. For independent standard-normal anchors slerp
preserves the marginal distribution (``cos(t pi/2) a + sin(t pi/2) b`` in high dimension), so every
frame is still a draw from the model while neighbours are strongly correlated. See Shoemake (1985)
and White, "Sampling generative networks" (arXiv 1609.04468).
"""

from __future__ import annotations

import torch

__all__ = ["DEFAULT_FRAMES_PER_CODE", "slerp", "path_at", "smooth_path", "n_anchors"]

#: frames between two independent anchor draws along a pullback
DEFAULT_FRAMES_PER_CODE = 8


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation between codes ``a`` and ``b`` ``(..., D)`` at fractions ``t``.

    ``t`` broadcasts against the leading dims (``(T, 1)`` with ``a, b`` of shape ``(D,)`` gives a
    ``(T, D)`` path). Falls back to linear interpolation for (anti-)parallel vectors.

    >>> a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    >>> [round(v, 4) for v in slerp(a, b, 0.5).tolist()]
    [0.7071, 0.7071]
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    lin = (1 - t) * a + t * b
    sph = torch.sin((1 - t) * omega) / so.clamp_min(1e-6) * a + torch.sin(t * omega) / so.clamp_min(1e-6) * b
    return torch.where(so > 1e-4, sph, lin)


def path_at(anchors: torch.Tensor, frame: int, frames_per_code: int) -> torch.Tensor:
    """The value ``(*shape)`` at ``frame`` of the slerp path through ``anchors`` ``(K, *shape)``.

    Frame ``f`` lies at position ``f / frames_per_code`` along the anchors: exactly on anchor
    ``k`` when ``f = k * frames_per_code``, between anchors ``k`` and ``k + 1`` otherwise.
    """
    i, r = divmod(frame, frames_per_code)
    if r == 0:
        return anchors[i]
    if i + 1 >= anchors.shape[0]:
        raise ValueError(f"frame {frame} at {frames_per_code} frames/code needs {i + 2} anchors, "
                         f"got {anchors.shape[0]}")
    flat = slerp(anchors[i].reshape(-1), anchors[i + 1].reshape(-1), r / frames_per_code)
    return flat.reshape(anchors.shape[1:])


def smooth_path(anchors: torch.Tensor, n_frames: int, frames_per_code: int) -> torch.Tensor:
    """Per-frame values ``(n_frames, *shape)`` by slerp between anchors ``(K, *shape)`` (see :func:`path_at`)."""
    return torch.stack([path_at(anchors, f, frames_per_code) for f in range(n_frames)])


def n_anchors(n_frames: int, frames_per_code: int) -> int:
    """Anchor draws needed for ``n_frames`` frames (1 for a single frame).

    >>> n_anchors(1, 8), n_anchors(9, 8), n_anchors(10, 8)
    (1, 2, 3)
    """
    return (max(n_frames, 1) - 1 + frames_per_code - 1) // frames_per_code + 1
