"""Texture losses against the training batch: learn a scanner's speckle from a few paired frames.

Pixel-wise L1 to one speckle realisation rewards a *smooth* image (the median of all
realisations), and on a dozen frames it drives the learned scanner towards a large dynamic range
and a wide PSF: low-contrast, coarse speckle. The losses here compare statistics that do not
depend on which speckle realisation the target happens to carry, pooled per tissue over the
batch (fake and real share the label maps, so both sides pool the same tiles):

* ``s2_texture``: the polar image is cut into ``tile x tile`` tiles; tiles wholly inside one
  tissue (blank classes excluded) give their standard deviation and their normalised
  autocorrelation at lags ``1..lags`` along the angle and along depth (the speckle grain:
  lateral and axial PSF widths, Wagner et al., IEEE T-SU 1983). Per tissue, the tile statistics
  are averaged, and the loss is the pixel-weighted mean over tissues of the relative error of the
  mean tile std plus the mean absolute error of the autocorrelation curves.
* ``s2_hist``: per tissue (mask eroded by one sample), soft 32-bin grey-level histograms of the
  fake and real batch; Jensen-Shannon divergence [bits], pixel-weighted over tissues. It fits the
  *shape* of the grey-level distribution (speckle contrast, clipping at black) that a mean and a
  standard deviation leave open.

* ``s2_tissue_texture``: the same statistics as ``s2_texture`` (std, autocorrelation at lags
  ``1..lags`` along angle and depth) taken inside each tissue's eroded mask instead of in whole
  tiles, around a local mean (a ``window x window`` box mean normalised by the mask), and averaged
  with **equal weight per tissue** present. Small or thin tissues (fibro-fatty lenses, calcium
  arcs, the media) fill no 16 x 16 tile and so never enter ``s2_texture``; here they count as
  much as the perivascular tissue does.

These are the calibration losses (:mod:`ivus_sim.stage2.calibration_losses`) with the *user's
own frames* as the reference instead of the fixed real 20 MHz figures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ivus_sim.aae.condition import N_CLASSES, class_index
from ivus_sim.stage2.calibration_losses import erode_masks, js_bits, soft_histogram
from ivus_sim.tissues import PALETTE_IDS, Tissue

__all__ = ["TEXTURE_LOSS_NAMES", "masked_statistics", "texture_losses", "tile_statistics"]

#: named losses returned by :func:`texture_losses`
TEXTURE_LOSS_NAMES = ("s2_texture", "s2_hist", "s2_tissue_texture")
_BLANK = tuple(PALETTE_IDS.index(int(t)) for t in (Tissue.CATHETER, Tissue.OUTSIDE))


def tile_statistics(image: torch.Tensor, labels: torch.Tensor, tile: int = 16, lags: int = 4
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-tissue pooled tile statistics of polar images.

    Args:
        image: ``(B, 1, A, S)`` display values in [0, 1] (angle x depth).
        labels: ``(B, A, S)`` tissue ids.
        tile: tile side [polar samples]; ``A`` and ``S`` are cropped to multiples of it.
        lags: autocorrelation lags along each axis.

    Returns:
        ``(stats (N_CLASSES, 1 + 2 lags), count (N_CLASSES,), pure (B, nA, nS) class or -1)``:
        per class the mean over its tissue-pure tiles of ``[std, acf_angle(1..lags),
        acf_depth(1..lags)]`` (rows of classes without tiles are 0), the number of such tiles,
        and the class of every tile (-1: mixed or blank). Tiles are chosen from the labels only,
        so two images with the same labels pool the same tiles.
    """
    b, _, a, s = image.shape
    na, ns = a // tile, s // tile
    x = image[:, 0, : na * tile, : ns * tile].float()
    x = x.reshape(b, na, tile, ns, tile).permute(0, 1, 3, 2, 4)  # (B, nA, nS, t, t)
    idx = class_index(labels[:, : na * tile, : ns * tile])
    idx = idx.reshape(b, na, tile, ns, tile).permute(0, 1, 3, 2, 4).reshape(b, na, ns, -1)
    first = idx[..., 0]
    pure = torch.where((idx == first[..., None]).all(-1), first, torch.full_like(first, -1))
    for k in _BLANK:
        pure = torch.where(pure == k, torch.full_like(pure, -1), pure)
    m = x.mean(dim=(-2, -1), keepdim=True)
    xc = x - m
    var = (xc * xc).mean(dim=(-2, -1)).clamp_min(1e-6)  # (B, nA, nS)
    feats = [var.sqrt()]
    for lag in range(1, lags + 1):
        feats.append((xc[..., lag:, :] * xc[..., :-lag, :]).mean(dim=(-2, -1)) / var)
    for lag in range(1, lags + 1):
        feats.append((xc[..., :, lag:] * xc[..., :, :-lag]).mean(dim=(-2, -1)) / var)
    f = torch.stack(feats, -1)  # (B, nA, nS, F)
    onehot = F.one_hot(pure.clamp_min(0), N_CLASSES).to(f.dtype) * (pure >= 0)[..., None].to(f.dtype)
    count = onehot.sum(dim=(0, 1, 2))  # (K,)
    sums = torch.einsum("bijk,bijf->kf", onehot, f)
    stats = sums / count.clamp_min(1)[:, None]
    return stats, count, pure


def masked_statistics(image: torch.Tensor, masks: torch.Tensor, lags: int = 4, window: int = 9
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tissue texture statistics inside masks of polar images.

    Args:
        image: ``(B, 1, A, S)`` display values in [0, 1].
        masks: ``(B, K, A, S)`` boolean tissue masks (e.g. eroded one-hot labels).
        lags: autocorrelation lags along each axis.
        window: side of the box [samples] of the local mean each pixel is taken around.

    Returns:
        ``(stats (K, 1 + 2 lags), pixels (K,))``: per mask ``[std, acf_angle(1..lags),
        acf_depth(1..lags)]`` of the image minus its local in-mask mean, pooled over the batch
        (pairs at a lag count where both pixels are in the mask; angles wrap), and its pixel count.
    """
    from ivus_sim.stage2.decoder import local_box_mean

    x = image.float()  # (B, 1, A, S)
    m = masks.float()  # (B, K, A, S)
    local = local_box_mean(x * m, window) / local_box_mean(m, window).clamp_min(1e-6)
    r = (x - local) * m  # (B, K, A, S): residual inside each mask, 0 outside
    n = m.sum(dim=(0, 2, 3))
    var = (r * r).sum(dim=(0, 2, 3)) / n.clamp_min(1)
    feats = [var.clamp_min(1e-8).sqrt()]
    for dim in (2, 3):
        for lag in range(1, lags + 1):
            if dim == 2:
                rs, ms = torch.roll(r, lag, 2), torch.roll(m, lag, 2)
            else:
                rs = F.pad(r[..., :-lag], (lag, 0))
                ms = F.pad(m[..., :-lag], (lag, 0))
            pairs = (m * ms).sum(dim=(0, 2, 3)).clamp_min(1)
            feats.append((r * rs * ms).sum(dim=(0, 2, 3)) / pairs / var.clamp_min(1e-8))
    return torch.stack(feats, -1), n


def texture_losses(fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor, tile: int = 16,
                   lags: int = 4, min_tiles: int = 4, min_pixels: int = 200, tissue_texture: bool = True
                   ) -> dict[str, torch.Tensor]:
    """``{"s2_texture", "s2_hist", "s2_tissue_texture"}`` of a generated batch against the real one (module docstring).

    Args:
        fake, real: ``(B, 1, A, S)`` in [0, 1] on the same label maps ``labels (B, A, S)``.
        tile, lags: tile side and autocorrelation lags of ``s2_texture``.
        min_tiles: a tissue enters ``s2_texture`` with at least this many pure tiles in the batch.
        min_pixels: a tissue enters ``s2_hist`` and ``s2_tissue_texture`` with at least this many eroded
            pixels in the batch.
        tissue_texture: compute ``s2_tissue_texture`` (False: the key is left out; the trainer skips
            it where it is weighted 0, as in every shipped config).
    """
    zero = fake.new_zeros((), dtype=torch.float32)
    sf, count, _ = tile_statistics(fake, labels, tile, lags)
    with torch.no_grad():
        sr, _, _ = tile_statistics(real, labels, tile, lags)
    use = count >= min_tiles
    if bool(use.any()):
        w = count * use
        err = (sf[:, 0] - sr[:, 0]).abs() / (sr[:, 0] + 0.02) + (sf[:, 1:] - sr[:, 1:]).abs().mean(-1)
        texture = (w * err).sum() / w.sum()
    else:
        texture = zero
    oh = F.one_hot(class_index(labels), N_CLASSES).permute(0, 3, 1, 2)
    masks = erode_masks(oh)
    f255, r255 = fake[:, 0].float() * 255.0, real[:, 0].float() * 255.0
    js, wsum = zero, 0.0
    for k in range(N_CLASSES):
        if k in _BLANK:
            continue
        mk = masks[:, k]
        n = int(mk.sum())
        if n < min_pixels:
            continue
        with torch.no_grad():
            hr = soft_histogram(r255[mk])
        js = js + n * js_bits(soft_histogram(f255[mk]), hr)
        wsum += n
    hist = js / wsum if wsum else zero
    if not tissue_texture:
        return {"s2_texture": texture, "s2_hist": hist}
    keep = [k for k in range(N_CLASSES) if k not in _BLANK]
    mf, npx = masked_statistics(fake, masks[:, keep], lags)
    with torch.no_grad():
        mr, _ = masked_statistics(real, masks[:, keep], lags)
    use = npx >= min_pixels
    if bool(use.any()):
        err = (mf[:, 0] - mr[:, 0]).abs() / (mr[:, 0] + 0.02) + (mf[:, 1:] - mr[:, 1:]).abs().mean(-1)
        masked = err[use].mean()
    else:
        masked = zero
    return {"s2_texture": texture, "s2_hist": hist, "s2_tissue_texture": masked}
