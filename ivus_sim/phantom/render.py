"""Colour previews of phantoms: the sketch colours plus a legend and a 1 mm scale bar.

Drawn with Pillow and its built-in font (no network or system fonts needed).

>>> from ivus_sim.phantom.random import random_phantom
>>> render_preview(random_phantom(0, size=64)).shape[0]
256
"""

from __future__ import annotations

import math

import numpy as np

from ivus_sim.phantom.phantom import Phantom
from ivus_sim.tissues import TISSUES, Tissue, colourise

__all__ = ["render_preview", "legend_entries"]

_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)


def legend_entries(labels: np.ndarray) -> list[tuple[Tissue, float]]:
    """Tissues present in a label map ``(N, N)`` with their share of the field of view, in id order."""
    inside = labels != Tissue.OUTSIDE
    total = max(int(inside.sum()), 1)
    ids, counts = np.unique(labels[inside], return_counts=True)
    return [(Tissue(int(i)), float(c) / total) for i, c in zip(ids, counts, strict=True)]


def render_preview(phantom: Phantom, frame: int = 0, *, min_height: int = 256) -> np.ndarray:
    """Colour preview of one frame with a legend naming each tissue present.

    Args:
        phantom: the phantom.
        frame: frame index of a pullback.
        min_height: small phantoms are enlarged (nearest neighbour, integer factor ``k``) to at
            least this height so the legend stays readable.

    Returns:
        ``(k N, k N + legend_width, 3)`` uint8 RGB: the sketch-coloured frame (with a 1 mm scale bar
        in the corner) on the left, the legend (colour, name, % of the field of view) on the right.
    """
    from PIL import Image, ImageDraw, ImageFont

    if not 0 <= frame < phantom.n_frames:
        from ivus_sim.errors import IvusSimError

        raise IvusSimError(f"frame {frame} does not exist; the phantom has {phantom.n_frames} frame(s)")
    labels = phantom.labels[frame]
    n = labels.shape[-1]
    k = max(1, math.ceil(min_height / n))
    rgb = colourise(labels)
    if k > 1:
        rgb = np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)
    h = n * k

    entries = legend_entries(labels)
    font_px = max(10, min(18, h // 22))
    font = ImageFont.load_default(size=font_px)
    row = int(font_px * 1.6)
    rows = 1 + len(entries)
    if rows * row + 8 > h:  # many tissues on a short image: shrink the rows
        row = max(8, (h - 8) // rows)
        font_px = max(7, int(row / 1.6))
        font = ImageFont.load_default(size=font_px)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    texts = [f"{TISSUES[t].name} ({int(t)})  {frac:.1%}" for t, frac in entries]
    title = f"FOV {phantom.geometry.fov_mm:g} mm, {n}x{n} px"
    text_w = max(int(probe.textlength(s, font=font)) for s in [*texts, title])
    swatch = int(row * 0.7)
    legend_w = 8 + swatch + 6 + text_w + 10

    canvas = Image.new("RGB", (h + legend_w, h), _BACKGROUND)
    canvas.paste(Image.fromarray(rgb), (0, 0))
    draw = ImageDraw.Draw(canvas)
    # 1 mm scale bar, bottom left inside the square (outside the FOV disc)
    bar = max(2, round(k / phantom.geometry.pixel_mm))
    y = h - max(6, h // 40)
    x0 = max(4, h // 40)
    draw.rectangle([x0, y - 1, x0 + bar, y + 1], fill=(255, 255, 255))
    draw.text((x0, y - 3 - font_px), "1 mm", fill=(255, 255, 255), font=font)

    x = h + 8
    draw.text((x, 4), title, fill=_TEXT, font=font)
    for i, ((t, _), s) in enumerate(zip(entries, texts, strict=True)):
        top = 4 + (i + 1) * row
        draw.rectangle([x, top, x + swatch, top + swatch], fill=TISSUES[t].colour, outline=_TEXT)
        draw.text((x + swatch + 6, top + (swatch - font_px) // 2 - 1), s, fill=_TEXT, font=font)
    return np.asarray(canvas)
