"""The stage-0 physics engine: :class:`PhysicsSimulator` runs the pseudo B-mode pipeline.

Pipeline (one module per physical step, read in order; all in the polar A-line x depth domain,
vectorised over the batch with torch, on any device):

1. parameters: preset + tissue acoustics -> :class:`~ivus_sim.physics.grid.PolarGrid`,
   :class:`~ivus_sim.physics.tissue_table.TissueTable`, :class:`~ivus_sim.physics.psf.Psf`;
2. labels -> polar grid (nearest), :mod:`~ivus_sim.physics.scatterers` (Poisson counts x Gaussian
   amplitudes x smooth texture);
3. :mod:`~ivus_sim.physics.attenuation` (cumulative, frequency-dependent; shadows behind strong
   reflectors), :mod:`~ivus_sim.physics.interfaces` (specular echoes, reverberation),
   :mod:`~ivus_sim.physics.ringdown` (catheter rings);
4. :mod:`~ivus_sim.physics.psf`: lateral depth-dependent beam, receive :mod:`~ivus_sim.physics.noise`,
   axial pulse + Hilbert transform in one FFT pair -> analytic RF;
5. :mod:`~ivus_sim.physics.envelope`, :mod:`~ivus_sim.physics.tgc`,
   :mod:`~ivus_sim.physics.compression` (log, dynamic range), optional :mod:`~ivus_sim.physics.nurd`;
6. :mod:`~ivus_sim.physics.scan` (depth decimation + scan conversion to the label map's grid).

Each image ``i`` of a batch draws from its own streams ``torch_generator(seed, "physics",
first_index + i, <step>)``, so an image does not depend on the rest of its batch, and
``result.params`` (preset, acoustics, seed, geometry, every sampled scalar) regenerates it
bit for bit with :meth:`PhysicsSimulator.from_params`.

References: M. Rosales & P. Radeva, "A basic model for IVUS image simulation", in Handbook of
Biomedical Image Analysis (2005); F. Tom & D. Sheet, "Simulating patho-realistic ultrasound images
using deep generative networks with adversarial learning", ISBI 2018 (stage-0 pseudo B-mode);
J. A. Jensen, "A model for the propagation and scattering of ultrasound in tissue", JASA 1991
(convolution model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from ivus_sim.config import Preset, TissueAcoustics, load_preset, load_tissue_acoustics
from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import DEFAULT_FOV_MM, Interp, cart_to_polar
from ivus_sim.image import to_uint8
from ivus_sim.io import array_hash
from ivus_sim.physics.attenuation import leading_edges, two_way_attenuation
from ivus_sim.physics.compression import log_compress, log_compress_power
from ivus_sim.physics.envelope import envelope
from ivus_sim.physics.grid import PolarGrid
from ivus_sim.physics.interfaces import ROUGHNESS, specular_echoes, surface_layer
from ivus_sim.physics.noise import noise_power, receive_noise
from ivus_sim.physics.nurd import apply_nurd, sample_nurd
from ivus_sim.physics.psf import Psf
from ivus_sim.physics.ringdown import catheter_surface, ringdown_power_scale, ringdown_reflectors
from ivus_sim.physics.scan import decimate_depth, decimation_factor, scan_convert
from ivus_sim.physics.scatterers import sample_scatterers, texture_modulation
from ivus_sim.physics.tgc import tgc_gain
from ivus_sim.physics.tissue_table import TissueTable, lookup
from ivus_sim.seeding import rng, torch_generator
from ivus_sim.tissues import validate_labels

__all__ = ["PhysicsSimulator", "SimulationResult", "STAGES", "ENGINE_VERSION"]

#: bump when the pipeline changes its output for the same parameters
ENGINE_VERSION = 2
#: names of the intermediate stages returned with ``return_stages=True``, in pipeline order
STAGES = ("echogenicity", "scatterers", "rf", "envelope", "tgc", "log")
_STEPS = ("scatterers", "texture", "specular", "ringdown", "noise")


@dataclass
class SimulationResult:
    """Output of :meth:`PhysicsSimulator.simulate`.

    Attributes:
        image: ``(B, N, N)`` uint8 display images (0 outside the FOV).
        polar: ``(B, A, S)`` float32 display values in ``[0, 1]`` (A-lines x decimated depth).
        stages: stage name -> ``(B, N, N)`` float32 scan-converted intermediate (when requested):
            ``echogenicity`` (mean display map), ``scatterers``, ``rf``, ``envelope``, ``tgc``
            (envelope after TGC), ``log`` (display before quantisation).
        params: JSON-able dict that regenerates the images bit for bit.
    """

    image: np.ndarray
    polar: np.ndarray
    params: dict[str, Any]
    stages: dict[str, np.ndarray] = field(default_factory=dict)


class PhysicsSimulator:
    """Pseudo B-mode IVUS physics engine.

    Args:
        preset: transducer preset (default: the shipped ``20mhz``).
        acoustics: tissue acoustics table (None: the shipped ``tissue_acoustics.yaml``).
        device: torch device (``"cpu"``, ``"cuda"``).
        n_angles: override the preset's number of A-lines (e.g. 64 for tiny regression tests).

    >>> import numpy as np
    >>> from ivus_sim.phantom import Phantom
    >>> lab = np.zeros((32, 32), np.uint8); lab[10:22, 10:22] = 1
    >>> ph = Phantom.from_array(lab)
    >>> res = PhysicsSimulator(n_angles=64).simulate(ph.labels, seed=0)
    >>> res.image.shape, res.image.dtype
    ((1, 32, 32), dtype('uint8'))
    """

    def __init__(self, preset: Preset | None = None, acoustics: TissueAcoustics | None = None,
                 device: str | torch.device = "cpu", n_angles: int | None = None) -> None:
        self.preset = preset if preset is not None else load_preset("20mhz")
        self.acoustics = acoustics if acoustics is not None else load_tissue_acoustics()
        self.device = torch.device(device)
        self.n_angles = n_angles
        self.table = TissueTable.build(self.acoustics, self.preset, self.device)
        self._psf: dict[tuple[int, int, float], Psf] = {}

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_params(cls, params: dict[str, Any], device: str | torch.device = "cpu") -> PhysicsSimulator:
        """The simulator that produced ``params`` (a :attr:`SimulationResult.params` dict)."""
        try:
            preset = Preset.from_dict(params["preset"], "params.preset")
            acoustics = TissueAcoustics.from_dict(params["acoustics"], "params.acoustics")
            n_angles = int(params["polar_grid"]["n_angles"])
        except KeyError as e:
            raise IvusSimError(f"simulation parameters lack field {e.args[0]!r}") from None
        return cls(preset, acoustics, device=device, n_angles=n_angles)

    def grid(self, fov_mm: float) -> PolarGrid:
        """The polar RF grid for a field of view."""
        return PolarGrid.from_preset(self.preset, fov_mm, self.n_angles)

    def psf(self, grid: PolarGrid) -> Psf:
        key = (grid.n_angles, grid.n_samples, grid.radius_mm)
        if key not in self._psf:
            self._psf[key] = Psf.build(self.preset, grid, self.device)
        return self._psf[key]

    def _labels(self, labels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Validated ``(B, N, N)`` uint8 ids on the engine's device (rule: :func:`ivus_sim.tissues.validate_labels`)."""
        return torch.from_numpy(np.ascontiguousarray(validate_labels(labels, "labels"))).to(self.device)

    def _polar_labels(self, lab: torch.Tensor, grid: PolarGrid) -> torch.Tensor:
        pol = cast(torch.Tensor, cart_to_polar(lab, grid.n_angles, grid.n_samples, Interp.NEAREST))
        return pol.long()

    # ------------------------------------------------------------------ public API

    def simulate(self, labels: np.ndarray | torch.Tensor, seed: int = 0, fov_mm: float = DEFAULT_FOV_MM,
                 return_stages: bool = False, nurd: bool | None = None, first_index: int = 0) -> SimulationResult:
        """Simulate display images from finalised label maps.

        Args:
            labels: ``(N, N)`` or ``(B, N, N)`` uint8 tissue ids (255 outside the FOV, catheter at
                the centre: see :func:`ivus_sim.phantom.finalise_labels`).
            seed: the one seed; image ``i`` uses the streams ``(seed, "physics", first_index + i)``.
            fov_mm: field-of-view diameter [mm].
            return_stages: also return the scan-converted intermediate stages.
            nurd: apply non-uniform rotational distortion (None: the preset's ``nurd.enabled``).
            first_index: stream index of the first image (to regenerate image ``k`` of a batch alone).

        Returns:
            :class:`SimulationResult` with ``image`` ``(B, N, N)`` uint8 and ``polar`` ``(B, A, S)``.
        """
        if not fov_mm > 0:
            raise IvusSimError(f"fov_mm must be positive, got {fov_mm}")
        lab = self._labels(labels)
        b, n = lab.shape[0], lab.shape[-1]
        grid = self.grid(fov_mm)
        psf = self.psf(grid)
        proc = self.preset.processing
        dev = self.device
        pol = self._polar_labels(lab, grid)
        idx = [first_index + i for i in range(b)]
        gens = {s: [torch_generator(seed, "physics", i, s, device=dev) for i in idx] for s in _STEPS}
        use_nurd = self.preset.nurd.enabled if nurd is None else nurd
        nurd_coeffs = [sample_nurd(self.preset.nurd, rng(seed, "physics", i, "nurd")) if use_nurd else None
                       for i in idx]

        with torch.no_grad():
            x = sample_scatterers(pol, self.table, grid, gens["scatterers"])
            x = x * texture_modulation(pol, self.table, grid, gens["texture"])
            edges = leading_edges(pol)
            at_sample, at_front = two_way_attenuation(pol, self.table, grid, edges)
            at_sample, at_front = at_sample * psf.gain, at_front * psf.gain  # + diffraction (focal gain)
            surface = surface_layer(pol, self.table, grid.dz_mm, edges)
            x = x * (at_sample if surface is None else at_sample * surface.sqrt())
            x = x + specular_echoes(pol, self.table, at_front, gens["specular"], edges)
            blank = lookup(self.table.blank, pol)
            x = torch.where(blank, torch.zeros((), device=dev), x)
            x = x + ringdown_reflectors(pol, self.table, grid, self.preset.ringdown, gens["ringdown"])
            xl = psf.lateral_filter(x)
            xl = xl + receive_noise(tuple(xl.shape), proc.noise_db, gens["noise"], dev)
            rf = psf.analytic_rf(xl)
            env = envelope(rf)
            env_tgc = env * tgc_gain(proc, grid, dev)
            q = decimation_factor(grid.n_samples, n)
            disp = log_compress(decimate_depth(env_tgc, q), proc.gain_db, proc.dynamic_range_db)
            # blank decimated samples whose centre lies inside the catheter core
            first = catheter_surface(pol, self.table)  # (B, A) first imaged RF sample
            centre = torch.arange(disp.shape[-1], device=dev) * q + (q - 1) / 2
            disp = torch.where(centre < first[..., None], torch.zeros((), device=dev), disp)
            disp = self._nurd(disp, nurd_coeffs)
            image = to_uint8(scan_convert(disp, n))  # the one float -> uint8 rule
            stages: dict[str, np.ndarray] = {}
            if return_stages:
                full = {
                    "scatterers": x, "rf": rf.real, "envelope": env, "tgc": env_tgc,
                    "log": torch.where(blank, torch.zeros((), device=dev),
                                       log_compress(env_tgc, proc.gain_db, proc.dynamic_range_db)),
                }
                stages["echogenicity"] = self._echogenicity(lab, pol, grid, psf, nurd_coeffs)
                for k, v in full.items():
                    stages[k] = scan_convert(self._nurd(v.float(), nurd_coeffs), n).cpu().numpy()
        params = self._params(seed, fov_mm, n, grid, psf, q, idx, nurd_coeffs, lab)
        return SimulationResult(image=image, polar=disp.float().cpu().numpy(), params=params,
                                stages={k: stages[k] for k in STAGES if k in stages})

    def regenerate(self, labels: np.ndarray | torch.Tensor, params: dict[str, Any],
                   return_stages: bool = False) -> SimulationResult:
        """Re-run a simulation recorded in ``params`` (use with :meth:`from_params`)."""
        try:
            nurd = any(im.get("nurd") is not None for im in params["images"])
            return self.simulate(labels, seed=int(params["seed"]), fov_mm=float(params["geometry"]["fov_mm"]),
                                 return_stages=return_stages, nurd=nurd, first_index=int(params["first_index"]))
        except KeyError as e:
            raise IvusSimError(f"simulation parameters lack field {e.args[0]!r}") from None

    def echogenicity(self, labels: np.ndarray | torch.Tensor, fov_mm: float = DEFAULT_FOV_MM) -> np.ndarray:
        """Deterministic mean-intensity map ``(B, N, N)`` float32 in display units ``[0, 1]``.

        The noise-free, tissue-specific mean of the display: expected echo power of every sample
        (backscatter x two-way attenuation incl. shadows, convolved with the PSF power, plus the
        coherent specular/reverberation/ring-down echoes and the noise floor), times TGC, mapped
        through the log compression as the mean of log-compressed Rayleigh speckle.
        """
        lab = self._labels(labels)
        grid = self.grid(fov_mm)
        pol = self._polar_labels(lab, grid)
        with torch.no_grad():
            return self._echogenicity(lab, pol, grid, self.psf(grid), [None] * lab.shape[0])

    # ------------------------------------------------------------------ internals

    def _nurd(self, x: torch.Tensor, coeffs: list[dict[str, Any] | None]) -> torch.Tensor:
        if all(c is None for c in coeffs):
            return x
        return torch.stack([apply_nurd(x[i], c) if c is not None else x[i] for i, c in enumerate(coeffs)])

    def _echogenicity(self, lab: torch.Tensor, pol: torch.Tensor, grid: PolarGrid, psf: Psf,
                      nurd_coeffs: list[dict[str, Any] | None]) -> np.ndarray:
        proc = self.preset.processing
        dev = self.device
        at_sample, at_front = two_way_attenuation(pol, self.table, grid)
        at_sample, at_front = at_sample * psf.gain, at_front * psf.gain
        blank = lookup(self.table.blank, pol)
        p = lookup(self.table.backscatter, pol) * at_sample**2
        surface = surface_layer(pol, self.table, grid.dz_mm)
        if surface is not None:
            p = p * surface
        p = torch.where(blank, torch.zeros((), device=dev), p)
        incoherent = psf.lateral_filter(psf.axial_power_filter(p), power=True).clamp_min(0.0)
        coh = specular_echoes(pol, self.table, at_front, None)
        coh = torch.where(blank, torch.zeros((), device=dev), coh)
        ring = ringdown_reflectors(pol, self.table, grid, self.preset.ringdown, None)
        coherent = psf.analytic_rf(psf.lateral_filter(coh + ring)).abs() ** 2
        rd = ringdown_power_scale(self.preset.ringdown)
        power = incoherent + coherent * (1 + ROUGHNESS**2 + rd) / 2 + noise_power(proc.noise_db)
        power = power * tgc_gain(proc, grid, dev) ** 2
        disp = log_compress_power(power, proc.gain_db, proc.dynamic_range_db)
        disp = torch.where(blank, torch.zeros((), device=dev), disp)
        disp = self._nurd(disp, nurd_coeffs)
        return scan_convert(disp, lab.shape[-1]).cpu().numpy()

    def _params(self, seed: int, fov_mm: float, size: int, grid: PolarGrid, psf: Psf, q: int, idx: list[int],
                nurd_coeffs: list[dict[str, Any] | None], lab: torch.Tensor) -> dict[str, Any]:
        from ivus_sim import __version__

        labs = lab.cpu().numpy()
        return {
            "engine": "physics",
            "engine_version": ENGINE_VERSION,
            "ivus_sim_version": __version__,
            "seed": int(seed),
            "first_index": int(idx[0]) if idx else 0,
            "device": str(self.device),
            "geometry": {"size": int(size), "fov_mm": float(fov_mm), "pixel_mm": float(fov_mm) / size},
            "polar_grid": grid.to_dict(),
            "decimation": int(q),
            "psf": {"n_fft": psf.n_fft, "sigma_z_mm": psf.sigma_z_mm,
                    "lateral_sigma_mm_at_1_3_5_mm": [float(psf.sigma_theta[min(grid.n_samples - 1,
                                                    int(d / grid.dz_mm))]) * d for d in (1.0, 3.0, 5.0)]},
            "preset": self.preset.to_dict(),
            "acoustics": self.acoustics.to_dict(),
            "images": [{"index": i, "streams": [["physics", i, s] for s in _STEPS], "nurd": c,
                        "labels_hash": array_hash(labs[k])}
                       for k, (i, c) in enumerate(zip(idx, nurd_coeffs, strict=True))],
        }
