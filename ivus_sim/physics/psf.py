"""Step: RF formation by PSF convolution (FFT), giving the analytic RF signal.

The point-spread function is separable into

* an **axial** Gaussian-modulated pulse at the centre frequency ``f0``: in the depth-frequency
  domain ``H(f) = exp(-(f - f0)^2 / (2 sigma_f^2))`` with the -6 dB two-way bandwidth
  ``B = fractional_bandwidth x f0`` (``sigma_f = B / (2 sqrt(2 ln 2))``); the RF echo is
  ``rf(t) = (x * h)(t)``, ``h(t) = exp(-t^2 / (2 sigma_t^2)) cos(2 pi f0 t)``, ``sigma_t = 1 / (2 pi sigma_f)``;
* a **lateral** Gaussian beam whose width changes with depth (Gaussian-beam optics of a focused
  aperture, see :class:`ivus_sim.config.Beam`): two-way profile ``exp(-x^2 / (2 sigma_x(z)^2))``,
  ``sigma_x = w(z) / 2``, i.e. an angular width ``sigma_x(z) / z`` on the polar grid - wide near the
  catheter (near field), narrowest at the focus, diverging beyond.

The lateral convolution is circular along the angle axis and exact per depth in the angular
Fourier domain (the kernel depends on depth only); the axial convolution and the Hilbert
transform are done in one FFT pair: multiplying the spectrum by ``2 u(f) H(f)`` gives the analytic
signal ``rf + i Hilbert(rf)`` directly, whose modulus is the envelope. Both kernels are
normalised to unit energy, so fully developed speckle of backscattered power ``b`` has mean
envelope power ``b``.

The transfer functions are built by small pure functions of tensors (:func:`gaussian_transfer`,
:func:`unit_energy`, :func:`circular_gaussian_transfer`, :func:`gaussian_beam_sigma_mm`,
:func:`pulse_sigma_mm`) and applied by :func:`lateral_filter` / :func:`depth_filter`. They are
differentiable and broadcast over leading batch dimensions, so the learned stage 2
(:mod:`ivus_sim.stage2.formation`) forms its speckle with the *same* code and learnable
parameters (one implementation; the engine calls them with the preset's constants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ivus_sim.config import Preset
from ivus_sim.physics.grid import PolarGrid

__all__ = [
    "Psf",
    "axial_sigma_mm",
    "beam_gain",
    "beam_sigma_mm",
    "circular_gaussian_transfer",
    "depth_filter",
    "gaussian_beam_sigma_mm",
    "gaussian_transfer",
    "lateral_filter",
    "pulse_sigma_f_mhz",
    "pulse_sigma_mm",
    "unit_energy",
]

_FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))

Scalar = float | torch.Tensor


# ---------------------------------------------------------------- pure, differentiable building blocks
def pulse_sigma_f_mhz(centre_frequency_mhz: Scalar, fractional_bandwidth: Scalar) -> Scalar:
    """Spectral standard deviation [MHz] of a Gaussian pulse of -6 dB two-way bandwidth ``fbw x f0``."""
    return fractional_bandwidth * centre_frequency_mhz / _FWHM_PER_SIGMA


def pulse_sigma_mm(centre_frequency_mhz: Scalar, fractional_bandwidth: Scalar,
                   speed_of_sound_m_s: Scalar = 1540.0) -> Scalar:
    """Standard deviation of the axial pulse envelope in depth [mm] (round trip: ``c sigma_t / 2``)."""
    sigma_t = 1 / (2 * math.pi * pulse_sigma_f_mhz(centre_frequency_mhz, fractional_bandwidth))  # [us]
    return sigma_t * speed_of_sound_m_s * 1e-3 / 2


def gaussian_beam_sigma_mm(depth_mm: torch.Tensor, wavelength_mm: Scalar, aperture_mm: Scalar,
                           focus_mm: Scalar) -> torch.Tensor:
    """Two-way lateral Gaussian standard deviation ``sigma_x(z) = w(z) / 2`` [mm] of a focused aperture.

    Gaussian-beam optics: waist ``w0 = lambda F / (pi a)`` (``a`` = aperture radius), Rayleigh range
    ``z_R = pi w0^2 / lambda``, ``w(z) = w0 sqrt(1 + ((z - F) / z_R)^2)``. Tensor arguments broadcast
    (e.g. ``depth (S,)`` with per-image parameters ``(B, 1)`` gives ``(B, S)``).
    """
    a = aperture_mm / 2
    w0 = wavelength_mm * focus_mm / (math.pi * a)  # one-way waist radius (1/e amplitude)
    zr = math.pi * w0**2 / wavelength_mm  # Rayleigh range
    w = w0 * torch.sqrt(1 + ((depth_mm - focus_mm) / zr) ** 2)
    return w / 2


def gaussian_transfer(freqs: torch.Tensor, centre: Scalar, sigma: Scalar) -> torch.Tensor:
    """Gaussian transfer function ``exp(-(f - centre)^2 / (2 sigma^2))`` on frequencies ``freqs``."""
    return torch.exp(-((freqs - centre) ** 2) / (2 * sigma**2))


def unit_energy(transfer: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Scale a full (two-sided, ``n_fft`` bins along the last axis) transfer to a unit-energy impulse response.

    Parseval: ``sum_t |h_t|^2 = sum_k |H_k|^2 / n_fft``.
    """
    energy = (transfer.abs() ** 2).sum(-1, keepdim=True) / n_fft
    return transfer / energy.sqrt()


def circular_gaussian_transfer(sigma_theta: torch.Tensor, n_angles: int, normalise: bool = True) -> torch.Tensor:
    """Angular transfer ``(..., n_angles // 2 + 1, S)`` of a circular Gaussian of std ``sigma_theta (..., S)`` [rad].

    A Gaussian of std ``sigma`` on the circle has Fourier coefficients ``exp(-(k sigma)^2 / 2)`` at
    harmonic ``k`` (cycles per revolution); with ``normalise`` the kernel has unit energy over the
    full two-sided spectrum of length ``n_angles`` (rfft layout along the angle axis).
    """
    w = torch.fft.rfftfreq(n_angles, d=1 / n_angles, dtype=sigma_theta.dtype, device=sigma_theta.device)
    lat = torch.exp(-0.5 * (w[:, None] * sigma_theta[..., None, :]) ** 2)  # (..., A//2+1, S)
    if not normalise:
        return lat
    full = 2 * (lat**2).sum(-2) - lat[..., 0, :] ** 2
    if n_angles % 2 == 0:
        full = full - lat[..., -1, :] ** 2
    return lat * torch.sqrt(n_angles / full)[..., None, :]


def lateral_filter(x: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    """Depth-dependent circular convolution along the angle axis (-2) of real ``x (..., A, S)``.

    ``transfer (..., A // 2 + 1, S)`` in rfft layout (broadcast against ``x``), e.g. from
    :func:`circular_gaussian_transfer`. Exact per depth in the angular Fourier domain.
    """
    a = x.shape[-2]
    return torch.fft.irfft(torch.fft.rfft(x, dim=-2) * transfer, n=a, dim=-2)


def depth_filter(x: torch.Tensor, transfer: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Convolution along depth (last axis) of complex (or real) ``x (..., S)`` with a full ``n_fft``-bin transfer.

    The signal is zero-padded to ``n_fft`` (guard band against circular wrap) and cropped back.
    """
    s = x.shape[-1]
    return torch.fft.ifft(torch.fft.fft(x, n=n_fft, dim=-1) * transfer, n=n_fft, dim=-1)[..., :s]


# ---------------------------------------------------------------- the engine's preset-bound wrappers
def _sigma_f_mhz(preset: Preset) -> float:
    t = preset.transducer
    return float(pulse_sigma_f_mhz(t.centre_frequency_mhz, t.fractional_bandwidth))


def axial_sigma_mm(preset: Preset) -> float:
    """Standard deviation of the axial pulse envelope in depth [mm] (round trip: ``c sigma_t / 2``)."""
    t = preset.transducer
    return float(pulse_sigma_mm(t.centre_frequency_mhz, t.fractional_bandwidth, t.speed_of_sound_m_s))


def beam_sigma_mm(preset: Preset, depth_mm: torch.Tensor) -> torch.Tensor:
    """Two-way lateral Gaussian standard deviation ``sigma_x(z)`` [mm] at depths ``depth_mm``."""
    return gaussian_beam_sigma_mm(depth_mm, preset.wavelength_mm, preset.beam.aperture_mm, preset.beam.focus_mm)


def beam_gain(preset: Preset, depth_mm: torch.Tensor) -> torch.Tensor:
    """Pulse-echo *amplitude* sensitivity ``(w0 / w(z))^(n / 2)`` along depth (1 at the focus)."""
    w = beam_sigma_mm(preset, depth_mm)
    w0 = beam_sigma_mm(preset, torch.tensor([preset.beam.focus_mm], dtype=depth_mm.dtype))
    return (w0 / w) ** (preset.beam.diffraction_exponent / 2)


@dataclass(frozen=True)
class Psf:
    """Precomputed transfer functions for one preset and grid.

    Attributes:
        n_fft: depth FFT length (``n_samples`` + guard band against circular wrap).
        axial: ``(n_fft // 2 + 1,)`` complex analytic transfer ``2 u(f) H(f)`` on the rfft frequencies.
        lateral: ``(A // 2 + 1, S)`` real angular transfer per depth (rfft along angles).
        axial_power: ``(n_fft // 2 + 1,)`` complex transfer of ``|h|^2`` (for mean power maps).
        lateral_power: ``(A // 2 + 1, S)`` transfer of ``|h_lat|^2``.
        sigma_theta: ``(S,)`` two-way angular beam width [rad].
        sigma_z_mm: axial envelope standard deviation [mm].
        gain: ``(S,)`` pulse-echo amplitude sensitivity along depth (:func:`beam_gain`).
    """

    n_fft: int
    axial: torch.Tensor
    lateral: torch.Tensor
    axial_power: torch.Tensor
    lateral_power: torch.Tensor
    sigma_theta: torch.Tensor
    sigma_z_mm: float
    gain: torch.Tensor

    @classmethod
    def build(cls, preset: Preset, grid: PolarGrid, device: str | torch.device = "cpu") -> Psf:
        t = preset.transducer
        dz = grid.dz_mm
        fs = t.speed_of_sound_m_s / (2 * dz * 1e3)  # effective sampling rate [MHz]
        f0 = t.centre_frequency_mhz
        sigma_f = _sigma_f_mhz(preset)
        sigma_z = axial_sigma_mm(preset)
        guard = math.ceil(10 * sigma_z / dz) + 8
        n_fft = _good_size(grid.n_samples + guard)
        f = torch.fft.rfftfreq(n_fft, d=1 / fs, dtype=torch.float64)
        h = gaussian_transfer(f, f0, sigma_f)
        h[0] = 0.0
        # unit energy of the analytic impulse response (the one-sided 2 u(f) H(f) holds all the energy)
        analytic = unit_energy(2 * h, n_fft)
        # transfer of |h_t|^2 (analytic impulse response; numerically exact on the grid)
        h_t = torch.fft.ifft(torch.cat([analytic, torch.zeros(n_fft - analytic.numel(), dtype=analytic.dtype)]))
        axial_power = torch.fft.rfft(h_t.abs() ** 2)
        # lateral
        r = grid.depths_mm()
        sig_th = beam_sigma_mm(preset, r) / r  # (S,) rad
        lat_n = circular_gaussian_transfer(sig_th, grid.n_angles)  # (A//2+1, S), unit energy
        # |h|^2 is a Gaussian of std sigma / sqrt 2 with unit sum (transfer 1 at k = 0)
        lat_p = circular_gaussian_transfer(sig_th / math.sqrt(2), grid.n_angles, normalise=False)
        return cls(n_fft=n_fft, axial=analytic.to(torch.complex64).to(device), lateral=lat_n.float().to(device),
                   axial_power=axial_power.to(torch.complex64).to(device), lateral_power=lat_p.float().to(device),
                   sigma_theta=sig_th.float().to(device), sigma_z_mm=sigma_z,
                   gain=beam_gain(preset, r).float().to(device))

    def lateral_filter(self, x: torch.Tensor, power: bool = False) -> torch.Tensor:
        """Depth-dependent circular lateral convolution of real ``(B, A, S)`` data."""
        return lateral_filter(x, self.lateral_power if power else self.lateral)

    def analytic_rf(self, x: torch.Tensor) -> torch.Tensor:
        """Axial pulse convolution + Hilbert transform: real ``(B, A, S)`` -> complex analytic RF ``(B, A, S)``."""
        s = x.shape[-1]
        spec = torch.fft.rfft(x, n=self.n_fft, dim=-1) * self.axial
        # ifft zero-pads the one-sided spectrum to n_fft: negative frequencies are zero (analytic signal)
        return torch.fft.ifft(spec, n=self.n_fft, dim=-1)[..., :s]

    def axial_power_filter(self, p: torch.Tensor) -> torch.Tensor:
        """Convolve real ``(B, A, S)`` power with ``|h|^2`` along depth (for mean power maps)."""
        s = p.shape[-1]
        spec = torch.fft.rfft(p, n=self.n_fft, dim=-1) * self.axial_power
        return torch.fft.irfft(spec, n=self.n_fft, dim=-1)[..., :s]


def _good_size(n: int) -> int:
    """Smallest ``m >= n`` with only factors 2, 3, 5 (fast FFT sizes)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1
