"""Differentiable calibration losses: pull generated polar images towards real 20 MHz figures.

The figures (``real_20mhz_vh.json``, shipped in :mod:`ivus_sim.metrics`; definitions in
``shared/calibration/README.md`` and :mod:`ivus_sim.metrics.calibration`) are measured on display
images resampled to a 360 x 160 polar grid over 0.99 of the disc radius. These losses measure a
batch of generated *model-grid* polar images ``(B, 1, A_w, S)`` (values in [0, 1], any window of
``A_w`` A-lines of an ``n_angles`` frame) the same way, with soft (differentiable) versions of
the counting steps:

* ``cal_hist``: per tissue (mask eroded by one sample; ``lumen_beyond_ringdown`` = lumen beyond
  20 % of the radius), a soft 32-bin histogram over [0, 256) (triangular kernel, one bin wide),
  pooled over the batch; Jensen-Shannon divergence [bits] to the reference histogram, weighted by
  the reference pixel counts (the weighted JS of :func:`ivus_sim.metrics.calibration.compare_stats`).
* ``cal_profile``: the 10-bin radial profile of the batch against the profile the reference
  per-tissue means predict for *this batch's* layout (training phantoms differ from the
  calibration frames in layout, so the reference profile itself is not a target), in grey levels / 255.
* ``cal_speckle``: the window is resampled to the reference spacing (360 angles per revolution,
  160 radii per 0.99 radius), 32 x 32 patches wholly in eroded perivascular tissue (stepped 24 x 16)
  give the normalised autocorrelation of the mean-removed patch; the reference FWHM ``2k + 1``
  means the autocorrelation crosses 1/2 between lags ``k`` and ``k + 1``, so the loss asks for 1/2
  at lag ``k + 1/2`` (linear interpolation) along angle and radius, plus the squared relative error
  of the patch mean/std against the reference (1.617).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

import torch
import torch.nn.functional as F

from ivus_sim.aae.condition import N_CLASSES, class_index
from ivus_sim.tissues import PALETTE_IDS, TISSUES, Tissue

__all__ = ["CalibrationLosses", "CALIBRATION_LOSS_NAMES", "erode_masks", "js_bits", "load_reference", "soft_histogram"]

#: named losses returned by :class:`CalibrationLosses`
CALIBRATION_LOSS_NAMES = ("cal_hist", "cal_profile", "cal_speckle")
_TISSUE_IDS = {TISSUES[t].name: int(t) for t in (Tissue.PERIVASCULAR, Tissue.LUMEN, Tissue.FIBROUS,
                                                  Tissue.FIBRO_FATTY, Tissue.NECROTIC_CORE, Tissue.DENSE_CALCIUM,
                                                  Tissue.MEDIA)}
_DISC = 0.99
_REF_ANGLES, _REF_RADII = 360, 160


def load_reference() -> dict[str, Any]:
    """The shipped real 20 MHz figures (``ivus_sim/metrics/real_20mhz_vh.json``)."""
    text = resources.files("ivus_sim.metrics").joinpath("real_20mhz_vh.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def erode_masks(mask: torch.Tensor) -> torch.Tensor:
    """Binary erosion by one sample (3x3, circular along angle, edges count as outside) of ``(B, K, A, S)``."""
    m = mask.float()
    m = torch.cat([m[..., -1:, :], m, m[..., :1, :]], dim=-2)
    m = F.pad(m, (1, 1, 0, 0), value=0.0)
    return -F.max_pool2d(-m, 3, stride=1) > 0.5


def soft_histogram(values: torch.Tensor, n_bins: int = 32) -> torch.Tensor:
    """Soft histogram ``(n_bins,)`` of grey values ``(N,)`` in [0, 256) (triangular kernel, unit sum)."""
    centres = (torch.arange(n_bins, device=values.device, dtype=values.dtype) + 0.5) * (256.0 / n_bins)
    w = (1 - (values[:, None] - centres[None]).abs() / (256.0 / n_bins)).clamp_min(0)
    h = w.sum(0)
    return h / h.sum().clamp_min(1e-8)


def js_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence [bits] of two histograms (smoothed by 1e-6 per bin, renormalised)."""
    p = (p + 1e-6) / (p + 1e-6).sum()
    q = (q + 1e-6) / (q + 1e-6).sum()
    m = (p + q) / 2
    return 0.5 * (p * (p / m).log2()).sum() + 0.5 * (q * (q / m).log2()).sum()


class CalibrationLosses:
    """Callable computing the named calibration losses of a batch.

    Args:
        n_angles: A-lines of the model's full frame (sets the angular spacing of windows).
        reference: figures in the ``real_20mhz_vh.json`` format (None: the shipped ones).
        min_pixels: a tissue enters ``cal_hist`` with at least this many eroded pixels in the batch.

    ``__call__(image (B, 1, A_w, S) in [0, 1], labels (B, A_w, S) ids)`` -> dict of scalar losses.
    """

    def __init__(self, n_angles: int, reference: dict[str, Any] | None = None, min_pixels: int = 200) -> None:
        ref = reference or load_reference()
        self.n_angles = n_angles
        self.min_pixels = min_pixels
        self.hists = {k: torch.tensor(v["hist32"], dtype=torch.float32) for k, v in ref["tissues"].items()}
        self.pixels = {k: float(v["pixels"]) for k, v in ref["tissues"].items()}
        self.means = {k: float(v["mean"]) for k, v in ref["tissues"].items()}
        #: lumen mean inside / beyond 20 % of the radius (the pooled lumen mean split by the far part)
        self.lumen_far: tuple[float, float] | None = None
        if "lumen" in self.means and "lumen_beyond_ringdown" in self.means:
            n_all, n_far = self.pixels["lumen"], self.pixels["lumen_beyond_ringdown"]
            far = self.means["lumen_beyond_ringdown"]
            if n_all > n_far:
                self.lumen_far = ((self.means["lumen"] * n_all - far * n_far) / (n_all - n_far), far)
        sp = ref.get("speckle_perivascular") or {"fwhm_theta_px_of_360": 7.0, "fwhm_r_px_of_160": 5.0,
                                                 "snr_mean_over_std": 1.617}
        self.half_theta = (float(sp["fwhm_theta_px_of_360"]) - 1) / 2 + 0.5
        self.half_r = (float(sp["fwhm_r_px_of_160"]) - 1) / 2 + 0.5
        self.snr = float(sp["snr_mean_over_std"])

    def _masks(self, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        idx = class_index(labels)
        oh = F.one_hot(idx, N_CLASSES).permute(0, 3, 1, 2)
        er = erode_masks(oh)
        out = {name: er[:, PALETTE_IDS.index(tid)] for name, tid in _TISSUE_IDS.items()}
        s = labels.shape[-1]
        r = (torch.arange(s, device=labels.device) + 0.5) / s
        out["lumen_beyond_ringdown"] = out["lumen"] & (r >= 0.2)[None, None, :]
        return out

    def __call__(self, image: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        img = image[:, 0].float() * 255.0  # (B, A, S) grey levels
        masks = self._masks(labels)
        zero = img.new_zeros(())
        # ---- per-tissue histograms
        js_sum, w_sum = zero, 0.0
        for name, m in masks.items():
            if name not in self.hists or int(m.sum()) < self.min_pixels:
                continue
            h = soft_histogram(img[m])
            js_sum = js_sum + self.pixels[name] * js_bits(h, self.hists[name].to(h))
            w_sum += self.pixels[name]
        hist = js_sum / w_sum if w_sum else zero
        # ---- radial profile against the layout-predicted profile
        s = img.shape[-1]
        r = (torch.arange(s, device=img.device) + 0.5) / s
        inside = r < _DISC
        bins = (r / (_DISC / 10)).long().clamp_max(9)
        pred = torch.zeros_like(img)
        known = torch.zeros_like(img, dtype=torch.bool)
        for name, tid in _TISSUE_IDS.items():
            sel = labels == tid
            pred = torch.where(sel, torch.full_like(img, self.means[name]), pred)
            known |= sel
        if self.lumen_far is not None:
            near = (r < 0.2)[None, None, :]
            pred = torch.where((labels == _TISSUE_IDS["lumen"]) & near, torch.full_like(img, self.lumen_far[0]), pred)
            pred = torch.where((labels == _TISSUE_IDS["lumen"]) & ~near, torch.full_like(img, self.lumen_far[1]),
                               pred)
        prof_terms = []
        for k in range(10):
            cols = inside & (bins == k)
            sel = known & cols[None, None, :]
            n = int(sel.sum())
            if n < 50:
                continue
            prof_terms.append((img[sel].mean() - pred[sel].mean()).abs() / 255.0)
        profile = torch.stack(prof_terms).mean() if prof_terms else zero
        # ---- speckle autocorrelation in perivascular patches, at the reference spacing
        speckle = self._speckle(img, masks["perivascular"])
        return {"cal_hist": hist, "cal_profile": profile, "cal_speckle": speckle}

    def _speckle(self, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _, a, s = img.shape
        a_ref = max(1, round(a * _REF_ANGLES / self.n_angles))
        s_ref = max(1, round(s * _REF_RADII / (_DISC * s)))  # 160 radii per 0.99 radius
        s_keep = s_ref  # resample the whole depth, keep radii up to 0.99 R
        size = (a_ref, round(s_ref / _DISC))
        x = F.interpolate(img[:, None], size=size, mode="bilinear", align_corners=False)[:, 0, :, :s_keep]
        mk = F.interpolate(mask[:, None].float(), size=size, mode="nearest")[:, 0, :, :s_keep] > 0.5
        patches = []
        for t0 in range(0, a_ref - 32 + 1, 24):
            for r0 in range(0, s_keep - 32, 16):
                ok = mk[:, t0:t0 + 32, r0:r0 + 32].flatten(1).all(1)
                if bool(ok.any()):
                    patches.append(x[ok, t0:t0 + 32, r0:r0 + 32])
        if not patches:
            return img.new_zeros(())
        p = torch.cat(patches)  # (P, 32, 32)
        std = p.std(dim=(-2, -1)).clamp_min(1e-3)
        pc = p - p.mean(dim=(-2, -1), keepdim=True)
        f = torch.fft.rfft2(pc, s=(64, 64))
        ac = torch.fft.irfft2(f.real**2 + f.imag**2, s=(64, 64))
        ac = ac / ac[:, :1, :1].clamp_min(1e-6)

        def at(line: torch.Tensor, lag: float) -> torch.Tensor:
            lo = math.floor(lag)
            t = lag - lo
            return (1 - t) * line[:, lo] + t * line[:, lo + 1]

        loss_t = (at(ac[:, :, 0], self.half_theta) - 0.5) ** 2
        loss_r = (at(ac[:, 0, :], self.half_r) - 0.5) ** 2
        snr = p.mean(dim=(-2, -1)) / std
        loss_s = ((snr - self.snr) / self.snr) ** 2
        return (loss_t + loss_r + loss_s).mean()
