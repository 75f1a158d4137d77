"""The differentiable image-formation layer of stage 2 (a learned "speckle layer").

Physics-informed stage 2 in the spirit of Tom & Sheet's stage II and SpeckleGAN (Bargsten &
Schlaefer, IJCARS 2020): speckle is not drawn by a network but *formed*, with the physics
engine's own functions (:mod:`ivus_sim.physics.psf`, :mod:`~ivus_sim.physics.envelope`,
:mod:`~ivus_sim.physics.tgc`, :mod:`~ivus_sim.physics.compression`; one implementation) and
learnable scanner parameters:

1. **scattering parameters**: the stage-1 mean display ``m`` is inverted through the log
   compression (:func:`~ivus_sim.physics.compression.display_to_power_db`, mean of log-compressed
   Rayleigh speckle), TGC and the receiver noise floor to a mean backscattered power
   ``P``; a small network (:class:`ScatterParamNet`) corrects it per pixel (``dP`` in dB) and sets
   two heterogeneity maps: ``sigma_n`` (log-std of the power of each scatterer cell: a low scatterer
   density gives pre-Rayleigh, Nakagami m < 1 texture) and ``sigma_t`` (log-std of a smooth
   log-normal texture field, the engine's ``texture_db``). Both modulations have mean 1.
2. **scatterers**: a seeded complex Gaussian field ``(g_re + i g_im) / sqrt 2`` (the model's
   :meth:`~ivus_sim.two_stage.TwoStageAAE.noise`) times ``sqrt(P x modulation)``.
3. **PSF**: lateral Gaussian beam of depth-dependent width (Gaussian-beam optics of a focused
   aperture: :func:`~ivus_sim.physics.psf.gaussian_beam_sigma_mm`, learned aperture and focus,
   wavelength from the learned centre frequency), applied per depth in the angular Fourier
   domain (:func:`~ivus_sim.physics.psf.lateral_filter`); complex receiver noise (learned level)
   added after it, independent between A-lines as in the engine; axial Gaussian pulse of learned
   centre frequency and fractional bandwidth (:func:`~ivus_sim.physics.psf.pulse_sigma_mm`)
   applied by FFT along depth (:func:`~ivus_sim.physics.psf.depth_filter`).
4. **envelope, TGC, log compression** with learned TGC slope, gain and dynamic range.

**Oversampled formation** (``oversample = r > 1``): the speckle is formed on a depth grid ``r``
times finer than the model's (the scattering parameters stay on the model grid, repeated over the
``r`` fine samples of each cell), and the envelope (after TGC) is averaged over the ``r`` fine
samples of each model sample before the log compression: the engine's box decimation
(:func:`ivus_sim.physics.scan.decimate_depth`). On the model grid alone a pulse shorter than a
sample gives white speckle of full Rayleigh contrast, so the losses had to trade grain for contrast
(a 40 MHz scanner was learned as a ~25-28 MHz pulse); averaged fine speckle has both the fine grain
and the reduced contrast of a decimated scanner image. ``r = 1`` is the model grid (models trained
before this setting existed).

The model grid (e.g. 128 depth samples over 5 mm) is too coarse for the 20 MHz carrier, so the
signal is formed at **complex baseband** (IQ): the analytic RF signal of the engine is the IQ
signal times the carrier, with the same modulus, so the envelope statistics are those of the
engine's RF model (a complex Gaussian field filtered by a unit-energy kernel: Rayleigh envelope,
mean/std 1.91, mean power ``P``). Both kernels have unit energy, so the mean envelope power equals
the scatterer power wherever ``P`` is smooth on the PSF scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ivus_sim.aae.layers import PolarConv2d, polar_pad
from ivus_sim.physics.compression import clipped_display_to_power_db, log_compress
from ivus_sim.physics.envelope import envelope
from ivus_sim.physics.psf import (
    circular_gaussian_transfer,
    depth_filter,
    gaussian_beam_sigma_mm,
    gaussian_transfer,
    lateral_filter,
    pulse_sigma_mm,
    unit_energy,
)
from ivus_sim.physics.scan import decimate_depth
from ivus_sim.physics.tgc import tgc_gain_db

__all__ = [
    "FORMATION_NOISE_CHANNELS",
    "formation_noise_channels",
    "STYLE_KEYS",
    "ScannerDefaults",
    "ScannerParams",
    "ScatterParamNet",
    "form_image",
]

#: noise channels the formation consumes: scatterer re/im, cell heterogeneity, texture, receiver noise re/im
FORMATION_NOISE_CHANNELS = 6
#: extra channels per extra fine depth sample when oversampling: scatterer re/im, receiver noise re/im
_FINE_CHANNELS = 4


def formation_noise_channels(oversample: int = 1) -> int:
    """Noise channels :func:`form_image` consumes at depth oversampling ``oversample``.

    Channels 0-5 as :data:`FORMATION_NOISE_CHANNELS`; with ``oversample = r > 1``, ``4 (r - 1)``
    more: for fine sample ``k = 1 .. r-1`` of each model sample, channels ``6 + 4 (k-1) + (0, 1)``
    are its scatterer re/im and ``+ (2, 3)`` its receiver noise re/im (fine sample 0 uses channels
    0-1 and 4-5). The noise stays on the model grid ``(B, C, A, S)``.
    """
    if oversample < 1:
        raise ValueError(f"oversample must be >= 1, got {oversample}")
    return FORMATION_NOISE_CHANNELS + _FINE_CHANNELS * (oversample - 1)


def _fine(noise: torch.Tensor, first: tuple[int, int], extra: int, r: int) -> torch.Tensor:
    """Interleave ``noise[:, first]`` and the extra fine channels along depth: ``(B, 2, A, S r)``."""
    parts = [noise[:, list(first)]]
    for k in range(1, r):
        c = FORMATION_NOISE_CHANNELS + _FINE_CHANNELS * (k - 1) + extra
        parts.append(noise[:, c:c + 2])
    x = torch.stack(parts, -1)  # (B, 2, A, S, r)
    return x.reshape(*x.shape[:-2], -1)


#: scanner-style quantities reported in ``render_polar(...)["style"]`` (all ``(B,)``)
STYLE_KEYS = ("gain_db", "dynamic_range_db", "centre_frequency_mhz", "fractional_bandwidth", "aperture_mm",
              "focus_mm", "tgc_db_per_cm", "noise_db", "axial_sigma_mm", "beam_sigma_focus_mm")
#: z2 dimension k (k < 5) drives the k-th of these (the documented style head, :class:`ScannerParams`)
Z2_STYLE = ("gain_db", "dynamic_range_db", "aperture_mm", "centre_frequency_mhz", "fractional_bandwidth")
_SPEED_OF_SOUND = 1540.0
_TGC_START_MM = 1.0
_DEPTH_GUARD = 16  # zero padding along depth before the axial FFT [samples]


@dataclass(frozen=True)
class ScannerDefaults:
    """Initial scanner settings of the learned formation (the calibrated 20 MHz preset's)."""

    gain_db: float = -13.8
    dynamic_range_db: float = 46.0
    centre_frequency_mhz: float = 20.0
    fractional_bandwidth: float = 0.3
    aperture_mm: float = 0.45
    focus_mm: float = 2.5
    tgc_db_per_cm: float = 0.0
    noise_db: float = -29.0


class ScannerParams(nn.Module):
    """Learned scanner settings and the z2 style head.

    Global learned values (positive quantities in log space) plus a *diagonal* head on the first
    ``n_style = min(5, z2_dim)`` code dimensions (documented, invertible, one quantity each):

    ========  =====================  ==============================================
    z2[:, 0]  gain_db                ``+ s0 z`` dB
    z2[:, 1]  dynamic_range_db       ``x exp(s1 z)``
    z2[:, 2]  aperture_mm            ``x exp(s2 z)`` (beam width ~ 1 / aperture)
    z2[:, 3]  centre_frequency_mhz   ``x exp(s3 z)`` (axial and lateral grain)
    z2[:, 4]  fractional_bandwidth   ``x exp(s4 z)`` (axial grain)
    ========  =====================  ==============================================

    The sensitivities ``s`` are learned (initialised to 1 dB, 3 %, 5 %, 3 %, 5 % per unit of z).
    The remaining z2 dimensions drive the residual texture of the refinement network.

    Args:
        z2_dim: size of z2.
        defaults: initial settings.

    ``forward(z2 (B, z2_dim))`` -> dict of ``(B,)`` tensors, keys :data:`STYLE_KEYS`.
    """

    #: parameters in decibel units (the rest are logarithms or unitless); the trainer can give them a
    #: larger learning rate (``train.lr_scanner_db_scale``)
    DECIBEL_PARAMETERS = ("gain_db", "tgc_db_per_cm", "noise_db")

    def __init__(self, z2_dim: int, defaults: ScannerDefaults | None = None) -> None:
        super().__init__()
        d = defaults or ScannerDefaults()
        self.n_style = min(len(Z2_STYLE), z2_dim)
        self.gain_db = nn.Parameter(torch.tensor(d.gain_db))
        self.log_dynamic_range = nn.Parameter(torch.tensor(math.log(d.dynamic_range_db)))
        self.log_centre_frequency = nn.Parameter(torch.tensor(math.log(d.centre_frequency_mhz)))
        self.log_bandwidth = nn.Parameter(torch.tensor(math.log(d.fractional_bandwidth)))
        self.log_aperture = nn.Parameter(torch.tensor(math.log(d.aperture_mm)))
        self.log_focus = nn.Parameter(torch.tensor(math.log(d.focus_mm)))
        self.tgc_db_per_cm = nn.Parameter(torch.tensor(d.tgc_db_per_cm))
        self.noise_db = nn.Parameter(torch.tensor(d.noise_db))
        self.sensitivity = nn.Parameter(torch.tensor([1.0, 0.03, 0.05, 0.03, 0.05][: self.n_style]))

    def forward(self, z2: torch.Tensor) -> dict[str, torch.Tensor]:
        b = z2.shape[0]
        dz = torch.zeros(b, len(Z2_STYLE), device=z2.device, dtype=torch.float32)
        dz[:, : self.n_style] = z2[:, : self.n_style].float() * self.sensitivity
        ones = torch.ones(b, device=z2.device)
        f0 = torch.exp(self.log_centre_frequency + dz[:, 3])
        fbw = torch.exp(self.log_bandwidth + dz[:, 4])
        aperture = torch.exp(self.log_aperture + dz[:, 2])
        focus = torch.exp(self.log_focus) * ones
        lam = _SPEED_OF_SOUND * 1e-3 / f0  # wavelength [mm]
        out: dict[str, torch.Tensor] = {
            "gain_db": self.gain_db + dz[:, 0],
            "dynamic_range_db": torch.exp(self.log_dynamic_range + dz[:, 1]),
            "centre_frequency_mhz": f0,
            "fractional_bandwidth": fbw,
            "aperture_mm": aperture,
            "focus_mm": focus,
            "tgc_db_per_cm": self.tgc_db_per_cm * ones,
            "noise_db": self.noise_db * ones,
            "axial_sigma_mm": torch.as_tensor(pulse_sigma_mm(f0, fbw, _SPEED_OF_SOUND)),
            "beam_sigma_focus_mm": gaussian_beam_sigma_mm(focus, lam, aperture, focus),
        }
        return out


class ScatterParamNet(nn.Module):
    """Per-pixel scattering parameters from the stage-1 mean, the label condition and z2.

    Runs at quarter resolution (the parameters are smooth within a tissue; the full-resolution
    mean carries the boundaries): 1x1 mixing, two circular 3x3 convolutions (FiLM-modulated by z2),
    a zero-initialised 3x3 head, bilinear upsampling (circular along angles).

    Args:
        cond_channels: channels of ``cat([mean, label condition])``.
        z_dim: size of z2.
        hidden: feature width.

    ``forward(cond (B, C, A', S'), z (B, z_dim), size=(A, S))`` -> ``(dP_db, sigma_n, sigma_t)`` each
    ``(B, A, S)``: power correction [dB] (0 at init), cell log-std and texture log-std (~0.1 at init).
    ``cond`` may be given at any resolution that pools to ``(A/4, S/4)`` by a power of two.
    """

    def __init__(self, cond_channels: int, z_dim: int, hidden: int = 12) -> None:
        super().__init__()
        self.mix = nn.Conv2d(cond_channels, hidden, 1)
        self.conv1 = PolarConv2d(hidden, hidden, 3)
        self.conv2 = PolarConv2d(hidden, hidden, 3)
        self.film = nn.Linear(z_dim, 2 * hidden)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.head = PolarConv2d(hidden, 3, 3)
        nn.init.zeros_(self.head.conv.weight)
        nn.init.zeros_(self.head.conv.bias)  # type: ignore[arg-type]

    def forward(self, cond: torch.Tensor, z: torch.Tensor, size: tuple[int, int] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        full = tuple(size or cond.shape[-2:])
        h = cond
        while h.shape[-1] > max(1, full[1] // 4) and h.shape[-2] % 2 == 0 and h.shape[-1] % 2 == 0:
            h = F.avg_pool2d(h, 2)
        h = F.leaky_relu(self.mix(h), 0.2)
        h = F.leaky_relu(self.conv1(h), 0.2)
        g, b = self.film(z).chunk(2, -1)
        h = F.leaky_relu(self.conv2(h) * (1 + g[..., None, None]) + b[..., None, None], 0.2)
        out = self.head(h)
        if tuple(out.shape[-2:]) != full:
            k = full[0] // out.shape[-2]  # upsampling factor along angles
            out = polar_pad(out, 1, 0)
            out = F.interpolate(out, size=(full[0] + 2 * k, full[1]), mode="bilinear", align_corners=False)
            out = out[..., k:-k, :]
        d_db = 10.0 * out[:, 0]
        sigma_n = F.softplus(out[:, 1] - 2.25)  # softplus(-2.25) ~ 0.1
        sigma_t = F.softplus(out[:, 2] - 2.25)
        return d_db, sigma_n, sigma_t


def _texture_field(white: torch.Tensor, sigma_angle: float = 1.5, sigma_depth: float = 2.0) -> torch.Tensor:
    """Unit-variance smooth Gaussian field ``(B, A, S)`` from white noise (circular along angles)."""
    def kern(sig: float) -> torch.Tensor:
        r = max(1, math.ceil(3 * sig))
        x = torch.arange(-r, r + 1, dtype=white.dtype, device=white.device)
        k = torch.exp(-0.5 * (x / sig) ** 2)
        return k / k.norm()  # unit energy: white unit variance stays unit variance

    ka, kd = kern(sigma_angle), kern(sigma_depth)
    ra, rd = ka.numel() // 2, kd.numel() // 2
    x = polar_pad(white[:, None], ra, 0)
    x = F.conv2d(x, ka.view(1, 1, -1, 1))
    x = F.conv2d(F.pad(x, (rd, rd, 0, 0)), kd.view(1, 1, 1, -1))
    return x[:, 0]


def form_image(mean: torch.Tensor, noise: torch.Tensor, style: dict[str, torch.Tensor], radius_mm: float,
               angle_step_rad: float, d_db: torch.Tensor | None = None, sigma_n: torch.Tensor | None = None,
               sigma_t: torch.Tensor | None = None, return_envelope: bool = False, oversample: int = 1
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Form a speckled display image from a mean display map (the speckle layer).

    Args:
        mean: ``(B, A, S)`` mean display values in [0, 1] (the stage-1 output).
        noise: ``(B, >= formation_noise_channels(oversample), A, S)`` standard normal channels (the
            model's noise; layout in :func:`formation_noise_channels`).
        style: scanner settings (``(B,)`` tensors, :class:`ScannerParams` output).
        radius_mm: radius of the polar grid [mm] (sample ``j`` at ``(j + 1/2) radius / S``).
        angle_step_rad: angle between A-lines of the full frame [rad] (``2 pi / n_angles``; a
            training window of fewer A-lines keeps the frame's spacing).
        d_db: ``(B, A, S)`` per-pixel power correction [dB] (None: 0).
        sigma_n: ``(B, A, S)`` log-std of independent per-cell scatterer power (None: 0, Rayleigh).
        sigma_t: ``(B, A, S)`` log-std of the smooth texture field (None: 0).
        return_envelope: also return the envelope (before TGC and compression; with ``oversample``
            averaged over each sample's fine samples, as the display is).
        oversample: form the speckle on a depth grid this many times finer and average the envelope
            back to the model grid (module docstring); 1 = the model grid.

    Returns:
        display ``(B, A, S)`` float32, *not* clipped to [0, 1] (the caller adds its residual and
        clips), and with ``return_envelope`` the envelope ``(B, A, S)``.
    """
    r = int(oversample)
    if noise.shape[1] < formation_noise_channels(r):
        raise ValueError(f"noise has {noise.shape[1]} channels; oversample={r} needs {formation_noise_channels(r)}")
    with torch.autocast(device_type=mean.device.type, enabled=False):
        mean = mean.float()
        noise = noise.float()
        _, a, s = mean.shape
        dev = mean.device
        dz = radius_mm / s
        depth = (torch.arange(s, device=dev, dtype=torch.float32) + 0.5) * dz  # (S,)
        col = {k: v.float()[:, None] for k, v in style.items()}  # (B, 1)
        gain, dr = col["gain_db"][..., None], col["dynamic_range_db"][..., None]  # (B, 1, 1)
        tgc_db = tgc_gain_db(depth, col["tgc_db_per_cm"], _TGC_START_MM)  # (B, S)
        noise_p = 10 ** (col["noise_db"][..., None] / 10)  # (B, 1, 1)
        # 1. mean display -> mean received power (before TGC) -> scatterer power (noise floor removed)
        p_db = clipped_display_to_power_db(mean, gain, dr) - 2 * tgc_db[:, None, :]
        if d_db is not None:
            p_db = p_db + d_db
        p_tot = 10 ** (p_db.clamp(-150.0, 60.0) / 10)
        p_scat = p_tot - noise_p * (1 - torch.exp(-p_tot / noise_p))  # smooth max(P - noise, 0)
        log_mod = torch.zeros_like(p_scat)
        if sigma_n is not None:
            log_mod = log_mod + sigma_n * noise[:, 2] - 0.5 * sigma_n**2
        if sigma_t is not None:
            log_mod = log_mod + sigma_t * _texture_field(noise[:, 3]) - 0.5 * sigma_t**2
        # per quadrature; the floor keeps the sqrt gradient finite where the power underflows to 0
        amp = (p_scat * torch.exp(log_mod) / 2).clamp_min(1e-20).sqrt()
        if r > 1:  # the fine grid: parameters repeated over each cell's r samples, fresh noise per sample
            amp = amp.repeat_interleave(r, -1)
            dz_f = dz / r
            depth_f = (torch.arange(s * r, device=dev, dtype=torch.float32) + 0.5) * dz_f
            tgc_f = tgc_gain_db(depth_f, col["tgc_db_per_cm"], _TGC_START_MM)
            scat, rx = _fine(noise, (0, 1), 0, r), _fine(noise, (4, 5), 2, r)
        else:
            dz_f, depth_f, tgc_f = dz, depth, tgc_db
            scat, rx = noise[:, 0:2], noise[:, 4:6]
        x = scat * amp[:, None]  # (B, 2, A, S r): re, im
        # 2. lateral beam (angular std of the two-way beam, in the window's own circle units)
        lam = _SPEED_OF_SOUND * 1e-3 / col["centre_frequency_mhz"]
        sig_x = gaussian_beam_sigma_mm(depth_f, lam, col["aperture_mm"], col["focus_mm"])  # (B, S r)
        sig_lines = sig_x / depth_f / angle_step_rad  # [A-lines]
        transfer = circular_gaussian_transfer(sig_lines * (2 * math.pi / a), a)  # (B, A//2+1, S r)
        x = lateral_filter(x, transfer[:, None])
        x = x + rx * (noise_p / 2).sqrt()[:, None]
        # 3. axial pulse (baseband Gaussian of the pulse envelope), unit energy
        n_fft = (s + _DEPTH_GUARD) * r
        sig_s = pulse_sigma_mm(col["centre_frequency_mhz"], col["fractional_bandwidth"], _SPEED_OF_SOUND) / dz_f
        f = torch.fft.fftfreq(n_fft, device=dev)  # cycles per sample
        h = unit_energy(gaussian_transfer(f, 0.0, 1 / (2 * math.pi * sig_s)).to(torch.complex64), n_fft)  # (B, n)
        iq = depth_filter(torch.complex(x[:, 0], x[:, 1]), h[:, None, :], n_fft)
        # 4. envelope, TGC, (decimation back to the model grid), log compression
        env = envelope(iq, eps=1e-20)
        env_tgc = env * 10 ** (tgc_f[:, None, :] / 20)
        if r > 1:
            env_tgc, env = decimate_depth(env_tgc, r), decimate_depth(env, r)
        disp = log_compress(env_tgc, gain, dr, clip=False)
    if return_envelope:
        return disp, env
    return disp
