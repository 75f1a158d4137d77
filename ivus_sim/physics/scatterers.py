"""Step: scatterers. Random point scatterers per tissue on the polar RF grid.

Each polar cell (area ``r dtheta dz``) holds ``N ~ Poisson(lambda)`` scatterers,
``lambda = density x cell area``; their summed amplitude is ``sqrt(N / lambda) * sqrt(b) * g``
with ``g ~ N(0, 1)`` and ``b`` the tissue's backscattered power, so the mean backscattered power
is ``b`` whatever the density. Many scatterers per resolution cell give a complex Gaussian echo
(Rayleigh envelope, mean/std = 1.91); few give pre-Rayleigh texture (mean/std < 1.91) - the
classic pseudo B-mode recipe of Tom & Sheet (2018) with the counting statistics of
Rosales & Radeva (2005).

A smooth log-normal modulation (``texture_db``, ``texture_scale_mm``) adds the tissue
heterogeneity seen in real IVUS (fat lobules, fibre bundles) on top of the speckle; its mean
power is 1, so it does not change the tissue's mean backscatter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ivus_sim.physics.grid import PolarGrid
from ivus_sim.physics.tissue_table import TissueTable, lookup

__all__ = ["sample_scatterers", "texture_modulation", "smooth_field"]


def sample_scatterers(labels: torch.Tensor, table: TissueTable, grid: PolarGrid,
                      generators: list[torch.Generator]) -> torch.Tensor:
    """Scatterer amplitudes ``(B, A, S)`` float32 from polar tissue ids ``labels`` ``(B, A, S)`` (long).

    Tissues with many scatterers per resolution cell (``table.sparse`` False) are in the Gaussian
    limit: the counting factor ``sqrt(N / lambda)`` only adds a kurtosis of order
    ``1 / (scatterers per resolution cell)`` to the summed echo, so it is set to 1 there (exact
    Rayleigh statistics at a fraction of the cost); sparse tissues get exact Poisson counts.
    """
    dev = labels.device
    out = torch.empty(labels.shape, dtype=torch.float32, device=dev)
    for i, g in enumerate(generators):
        torch.randn(labels.shape[1:], generator=g, out=out[i])
    out *= lookup(table.amplitude, labels)
    sparse = lookup(table.sparse, labels)
    if bool(sparse.any()):
        s = labels.shape[-1]
        area = (grid.depths_mm(dev) * grid.dtheta * grid.dz_mm).float()  # (S,) mm^2 per cell
        flat_out = out.view(len(generators), -1)
        flat_lab = labels.reshape(len(generators), -1)
        flat_sparse = sparse.reshape(len(generators), -1)
        for i, g in enumerate(generators):
            sel = torch.nonzero(flat_sparse[i]).squeeze(1)
            if sel.numel() == 0:
                continue
            lam = table.density_per_mm2[flat_lab[i, sel]] * area[sel % s]
            counts = torch.poisson(lam, generator=g)
            flat_out[i, sel] *= (counts / lam).sqrt()
    return out


def smooth_field(batch: int, grid: PolarGrid, scale_mm: float, generators: list[torch.Generator],
                 device: str | torch.device) -> torch.Tensor:
    """Zero-mean, unit-variance Gaussian random field ``(B, A, S)`` with correlation length ``scale_mm``.

    Drawn isotropically on a Cartesian lattice of spacing ``scale_mm / 2``, smoothed by a Gaussian of
    one lattice step, standardised, and sampled bilinearly at the polar sample positions.
    """
    n = math.ceil(2 * grid.radius_mm / (scale_mm / 2)) + 5
    noise = torch.stack([torch.randn((n, n), generator=g, device=device) for g in generators])[:, None]
    # separable Gaussian blur (sigma = 1 lattice step, edges replicated) as two small matrix products
    w = torch.exp(-0.5 * torch.arange(-3, 4, dtype=torch.float32) ** 2)
    w = w / w.sum()
    blur = torch.zeros((n, n), dtype=torch.float32)
    rows = torch.arange(n)
    for j, wk in enumerate(w.tolist()):
        blur.index_put_((rows, (rows + j - 3).clamp(0, n - 1)), torch.full((n,), wk), accumulate=True)
    blur = blur.to(device)
    noise = blur @ noise @ blur.T
    mu = noise.mean(dim=(-2, -1), keepdim=True)
    sd = noise.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    noise = (noise - mu) / sd
    th = torch.arange(grid.n_angles, device=device, dtype=torch.float32) * grid.dtheta
    r = grid.depths_mm(device).float()
    half = (n - 1) / 2 * (scale_mm / 2)  # lattice half-extent [mm]
    gx = (r[None, :] * torch.cos(th[:, None])) / half
    gy = (r[None, :] * torch.sin(th[:, None])) / half
    pos = torch.stack([gx, gy], -1)[None].expand(batch, -1, -1, -1)
    return F.grid_sample(noise, pos, mode="bilinear", align_corners=True)[:, 0]


def texture_modulation(labels: torch.Tensor, table: TissueTable, grid: PolarGrid,
                       generators: list[torch.Generator], coarse: int = 4) -> torch.Tensor:
    """Backscatter *amplitude* modulation ``(B, A, S)``: the square root of a log-normal power field of mean 1.

    One smooth field is drawn per distinct texture scale in the table (always in table order, so
    the draws do not depend on which tissues are present). The fields are smooth on the scale of
    ``texture_scale_mm`` (tens of samples), so they are evaluated on a grid ``coarse`` times coarser
    in both axes (tissue picked by the label at the coarse sample) and bilinearly upsampled.
    """
    dev = labels.device
    b, a, s = labels.shape
    lab_c = labels[:, ::coarse, ::coarse]
    grid_c = PolarGrid(n_angles=lab_c.shape[1], n_samples=lab_c.shape[2], radius_mm=grid.radius_mm)
    sd = lookup(table.texture_db, lab_c) * (math.log(10) / 10)  # std of the natural-log power
    log_amp = -0.25 * sd * sd  # log of sqrt(power): 0.5 * (s g - s^2 / 2)
    all_ids = torch.arange(256, device=dev)
    for scale in table.texture_scales(all_ids):
        field = smooth_field(b, grid_c, scale, generators, dev)
        sel = (lookup(table.texture_scale_mm, lab_c) - scale).abs() < 1e-6
        log_amp = log_amp + torch.where(sel, 0.5 * sd * field, torch.zeros((), device=dev))
    # upsample: pad one wrapped angle row, then bilinear on the (A + coarse)-periodic grid
    la = torch.cat([log_amp, log_amp[:, :1]], dim=1)[:, None]
    up = F.interpolate(la, size=(lab_c.shape[1] * coarse + 1, lab_c.shape[2] * coarse), mode="bilinear",
                       align_corners=False)[:, 0, :a, :s]
    if up.shape[-1] < s:
        up = F.pad(up, (0, s - up.shape[-1]), mode="replicate")
    return torch.exp(up)
