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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ivus_sim.config import Preset
from ivus_sim.physics.grid import PolarGrid

__all__ = ["Psf", "axial_sigma_mm", "beam_gain", "beam_sigma_mm"]


def _sigma_f_mhz(preset: Preset) -> float:
    t = preset.transducer
    return t.fractional_bandwidth * t.centre_frequency_mhz / (2 * math.sqrt(2 * math.log(2)))


def axial_sigma_mm(preset: Preset) -> float:
    """Standard deviation of the axial pulse envelope in depth [mm] (round trip: ``c sigma_t / 2``)."""
    sigma_t = 1 / (2 * math.pi * _sigma_f_mhz(preset))  # [us]
    return sigma_t * preset.transducer.speed_of_sound_m_s * 1e-3 / 2


def beam_sigma_mm(preset: Preset, depth_mm: torch.Tensor) -> torch.Tensor:
    """Two-way lateral Gaussian standard deviation ``sigma_x(z)`` [mm] at depths ``depth_mm``."""
    lam = preset.wavelength_mm
    a = preset.beam.aperture_mm / 2
    w0 = lam * preset.beam.focus_mm / (math.pi * a)  # one-way waist radius (1/e amplitude)
    zr = math.pi * w0**2 / lam  # Rayleigh range
    w = w0 * torch.sqrt(1 + ((depth_mm - preset.beam.focus_mm) / zr) ** 2)
    return w / 2


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
        h = torch.exp(-((f - f0) ** 2) / (2 * sigma_f**2))
        h[0] = 0.0
        analytic = 2 * h
        # unit energy of the analytic impulse response: sum |h_t|^2 = sum |H_k|^2 / n over all n bins
        energy = (analytic**2).sum() / n_fft
        analytic = analytic / energy.sqrt()
        # transfer of |h_t|^2 (analytic impulse response; numerically exact on the grid)
        h_t = torch.fft.ifft(torch.cat([analytic, torch.zeros(n_fft - analytic.numel(), dtype=analytic.dtype)]))
        axial_power = torch.fft.rfft(h_t.abs() ** 2)
        # lateral
        r = grid.depths_mm()
        sig_th = beam_sigma_mm(preset, r) / r  # (S,) rad
        # angular harmonics k (cycles per revolution): a Gaussian of std sigma_theta [rad] on the circle
        # has Fourier coefficients exp(-(k sigma_theta)^2 / 2)
        w = torch.fft.rfftfreq(grid.n_angles, d=1 / grid.n_angles, dtype=torch.float64)
        lat = torch.exp(-0.5 * (w[:, None] * sig_th[None, :]) ** 2)  # (A//2+1, S)
        # unit energy over the full (two-sided) spectrum of length A
        full = 2 * (lat**2).sum(0) - lat[0] ** 2
        if grid.n_angles % 2 == 0:
            full = full - lat[-1] ** 2
        lat_n = lat * torch.sqrt(grid.n_angles / full)[None, :]
        lat_p = torch.exp(-0.5 * (w[:, None] * sig_th[None, :] / math.sqrt(2)) ** 2)  # |h|^2: sigma / sqrt 2, sum 1
        return cls(n_fft=n_fft, axial=analytic.to(torch.complex64).to(device), lateral=lat_n.float().to(device),
                   axial_power=axial_power.to(torch.complex64).to(device), lateral_power=lat_p.float().to(device),
                   sigma_theta=sig_th.float().to(device), sigma_z_mm=sigma_z,
                   gain=beam_gain(preset, r).float().to(device))

    def lateral_filter(self, x: torch.Tensor, power: bool = False) -> torch.Tensor:
        """Depth-dependent circular lateral convolution of real ``(B, A, S)`` data."""
        a = x.shape[-2]
        spec = torch.fft.rfft(x, dim=-2)
        spec = spec * (self.lateral_power if power else self.lateral)
        return torch.fft.irfft(spec, n=a, dim=-2)

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
