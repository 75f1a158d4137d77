"""Simulator: the user-facing generation API (learned default model or the physics engine).

The API mirrors ``ivus-sim generate``:

>>> from ivus_sim import Simulator                                   # doctest: +SKIP
>>> sim = Simulator.default(device="cpu")        # the embedded learned model (ivus_sim/weights)
>>> sim = Simulator.physics(preset="20mhz")      # the stage-0 pseudo B-mode engine
>>> sim = Simulator.from_run("runs/my_run")      # a user's trained run (or weights folder/file)
>>> res = sim.generate(label_map, n=4, seed=0)   # label map (N, N) / (F, N, N) uint8, or a Phantom
>>> res.images.shape                             # (n, N, N); (n, F, N, N) for a pullback
(4, 256, 256)

Randomness (every draw from :mod:`ivus_sim.seeding`, one seed): image ``i`` of a call uses only
the streams ``(seed, "generate", ..., i)``, so it does not depend on how many images were asked
for, and ``res.records[i]`` (its JSON sidecar) regenerates it with :meth:`Simulator.regenerate`.

Pullbacks ``(F, N, N)`` are simulated frame by frame with random inputs that vary *smoothly*
along the pullback, so neighbouring frames do not flicker: a few *anchor* draws are made, one
every ``frames_per_code`` frames, and every frame's latent codes and noise maps are spherical
interpolations (slerp) between the two anchors around it. For independent standard-normal
anchors slerp preserves the marginal distribution (``cos(t pi/2) a + sin(t pi/2) b`` in high
dimension), so every frame is still a draw from the model while neighbours are strongly
correlated. See Shoemake (1985) and White, "Sampling generative networks" (arXiv 1609.04468).
"""

from __future__ import annotations

import copy
import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ivus_sim import __version__
from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import DEFAULT_FOV_MM, Interp, cart_to_polar, polar_to_cart
from ivus_sim.io import json_default
from ivus_sim.phantom.phantom import Phantom
from ivus_sim.seeding import torch_generator

if TYPE_CHECKING:
    from ivus_sim.aae.priors import Prior
    from ivus_sim.two_stage import TwoStageAAE

__all__ = [
    "Engine",
    "Precision",
    "GenerationResult",
    "GridResult",
    "Simulator",
    "DEFAULT_FRAMES_PER_CODE",
    "resolve_device",
    "resolve_precision",
    "slerp",
    "smooth_path",
    "path_at",
    "to_uint8",
]

#: frames between two independent anchor draws along a pullback
DEFAULT_FRAMES_PER_CODE = 8
_DEFAULT_BATCH = 8


class Engine(str, Enum):
    """Which generator produces the images."""

    LEARNED = "learned"  # the two-stage conditional AAE (embedded default or a user's run)
    PHYSICS = "physics"  # the stage-0 pseudo B-mode physics engine


class Precision(str, Enum):
    """Arithmetic of the learned networks at generation time."""

    AUTO = "auto"  # BF16 where the hardware computes it natively (CPU avx512_bf16/AMX, CUDA), else FP32
    FP32 = "fp32"
    BF16 = "bf16"  # autocast to bfloat16: ~4x faster on CPUs with native bf16, <1 grey level from FP32


def _cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(precision: Precision | str, device: torch.device) -> Precision:
    """``AUTO`` -> ``BF16`` on CUDA with bf16 support or a CPU with native bf16 instructions, else ``FP32``."""
    try:
        p = Precision(precision)
    except ValueError:
        raise IvusSimError(f"precision must be one of {[x.value for x in Precision]}, got {precision!r}") from None
    if p is not Precision.AUTO:
        return p
    if device.type == "cuda":
        return Precision.BF16 if torch.cuda.is_bf16_supported() else Precision.FP32
    if device.type == "cpu":
        return Precision.BF16 if _cpu_has_native_bf16() else Precision.FP32
    return Precision.FP32


# ------------------------------------------------------------------------------------ helpers
def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when present, else CPU; otherwise the named device (checked)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise IvusSimError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise IvusSimError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


def to_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float image(s) in [0, 1] -> uint8 display values (round half up, clipped)."""
    a = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, np.float32)
    return np.clip(np.floor(a * 255.0 + 0.5), 0, 255).astype(np.uint8)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation between codes ``a`` and ``b`` ``(..., D)`` at fractions ``t``.

    ``t`` broadcasts against the leading dims (``(T, 1)`` with ``a, b`` of shape ``(D,)`` gives a
    ``(T, D)`` path). Falls back to linear interpolation for (anti-)parallel vectors.
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
    """Anchor draws needed for ``n_frames`` frames (1 for a single frame)."""
    return (max(n_frames, 1) - 1 + frames_per_code - 1) // frames_per_code + 1


def _as_phantom(x: Phantom | np.ndarray | torch.Tensor, fov_mm: float | None) -> Phantom:
    if isinstance(x, Phantom):
        if fov_mm is not None and not math.isclose(fov_mm, x.geometry.fov_mm):
            raise IvusSimError(f"fov_mm={fov_mm} conflicts with the phantom's field of view "
                               f"({x.geometry.fov_mm} mm); leave fov_mm unset for a Phantom")
        return x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise IvusSimError(f"expected a label map (numpy array) or a Phantom, got {type(x).__name__}")
    f = DEFAULT_FOV_MM if fov_mm is None else float(fov_mm)
    if not (f > 0 and math.isfinite(f)):
        raise IvusSimError(f"fov_mm must be a positive number of millimetres, got {fov_mm}")
    if x.ndim not in (2, 3):
        raise IvusSimError(f"label map: expected (N, N) or (F, N, N), got shape {x.shape}")
    if x.shape[-1] != x.shape[-2]:
        raise IvusSimError(f"label map must be square, got {x.shape[-2]}x{x.shape[-1]}")
    if x.shape[-1] < 8:
        raise IvusSimError(f"label map of side {x.shape[-1]} is too small (at least 8 pixels)")
    return Phantom.from_array(x, fov_mm=f)


def _parse_codes(z: Any, dims: tuple[int, int], n: int) -> torch.Tensor | None:
    """User codes -> float32 ``(n, d)`` with ``d`` = d1 or d1 + d2 (z1 then z2), or None."""
    if z is None:
        return None
    try:
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise IvusSimError(f"z must be a list of numbers, got {z!r}") from e
    d1, d2 = dims
    if zt.dim() == 1:
        zt = zt.unsqueeze(0).expand(n, -1)
    if zt.dim() != 2 or zt.shape[0] != n or zt.shape[1] not in (d1, d1 + d2):
        raise IvusSimError(f"z must have {d1 + d2} values (z1: {d1}, then z2: {d2}) or {d1} (z1 only); "
                           f"got shape {tuple(zt.shape)}")
    if not torch.isfinite(zt).all():
        raise IvusSimError("z contains NaN or Inf")
    return zt.contiguous()


def _floats(t: torch.Tensor) -> list[Any]:
    return t.detach().float().cpu().tolist()


# ------------------------------------------------------------------------------------ results
@dataclass
class GenerationResult:
    """What :meth:`Simulator.generate` returns.

    Args:
        images: uint8 display images, ``(n, N, N)`` for one frame or ``(n, F, N, N)`` for a
            pullback; 0 outside the field of view.
        records: one JSON-able dict per image (its sidecar: phantom hash, engine, model id,
            seed, index, latent codes, preset, geometry).
        stages: intermediate stages by name, float32 with the leading shape of ``images``
            (learned: ``"mean"``, the stage-1 mean intensity in [0, 1]; physics: the engine's
            stages). Empty unless ``return_stages=True``.
        phantom: the (validated, finalised) phantom the images were made from.
    """

    images: np.ndarray
    records: list[dict[str, Any]]
    stages: dict[str, np.ndarray] = field(default_factory=dict)
    phantom: Phantom | None = None


@dataclass
class GridResult:
    """What :meth:`Simulator.explore` and :meth:`Simulator.interpolate` return.

    Args:
        images: uint8 tiles ``(rows, cols, N, N)``.
        codes: the full latent code of each tile ``(rows, cols, d1 + d2)`` (z1 then z2).
        record: JSON-able description (phantom, model, dims, values, seed) that regenerates it.
    """

    images: np.ndarray
    codes: np.ndarray
    record: dict[str, Any]

    def mosaic(self, gap: int = 2) -> np.ndarray:
        """The tiles as one uint8 image ``(rows*N + gap*(rows-1), cols*N + gap*(cols-1))``."""
        r, c, n, _ = self.images.shape
        out = np.zeros((r * n + gap * (r - 1), c * n + gap * (c - 1)), np.uint8)
        for i in range(r):
            for j in range(c):
                out[i * (n + gap): i * (n + gap) + n, j * (n + gap): j * (n + gap) + n] = self.images[i, j]
        return out


# ------------------------------------------------------------------------------------ backends
class _LearnedBackend:
    """A trained :class:`~ivus_sim.two_stage.TwoStageAAE` (generator parts only)."""

    engine = Engine.LEARNED

    def __init__(self, model: TwoStageAAE, model_id: str, source: str, card: dict[str, Any],
                 precision: Precision | str = Precision.AUTO) -> None:
        self.model = model.eval()
        if self.model.device.type == "cpu":  # oneDNN convolutions are faster in NHWC
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model_id = model_id
        self.source = source
        self.card = card
        self.precision = resolve_precision(precision, self.model.device)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def z_dims(self) -> tuple[int, int]:
        return self.model.z_dims

    @property
    def prior(self) -> Prior:
        return self.model.prior

    def describe(self) -> dict[str, Any]:
        return {"engine": self.engine.value, "model_id": self.model_id, "model_source": self.source,
                "precision": self.precision.value, "device_type": self.device.type, "prior": self.prior.value,
                "z_dims": list(self.z_dims),
                "polar_shape": list(self.model.polar_shape), "training_fov_mm": self.model.config.fov_mm}

    def draw_anchors(self, k: int, seed: int, index: int) -> dict[str, torch.Tensor]:
        """``k`` anchor draws of z1 ``(k, d1)``, z2 ``(k, d2)`` and noise ``(k, C, A, S)`` for image ``index``.

        Anchor ``j`` uses its own streams ``(seed, "generate", <z1|z2|noise>, index, j)``, so anchor 0
        of a pullback is exactly the draw of a single-frame image with the same seed and index.
        """
        d1, d2 = self.z_dims
        a, s = self.model.polar_shape
        z1, z2, noise = [], [], []
        for j in range(k):
            z1.append(self.prior.sample(1, d1, generator=torch_generator(seed, "generate", "z1", index, j)))
            z2.append(self.prior.sample(1, d2, generator=torch_generator(seed, "generate", "z2", index, j)))
            gn = torch_generator(seed, "generate", "noise", index, j)
            noise.append(torch.randn(1, self.model.config.n_noise, a, s, generator=gn))
        return {"z1": torch.cat(z1), "z2": torch.cat(z2), "noise": torch.cat(noise)}

    @torch.inference_mode()
    def render(self, frames: np.ndarray, frame_index: np.ndarray, z1: torch.Tensor, z2: torch.Tensor,
               noise: torch.Tensor, want_mean: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """One batch: label ``frames`` ``(U, N, N)``; item ``b`` shows ``frames[frame_index[b]]`` with
        codes ``z1[b]``, ``z2[b]`` and noise ``noise[b]`` ``(C, A, S)``.

        The polar labels and the label conditions are computed once per distinct frame (n images of
        one phantom share them), then the stage networks run on the batch. Equivalent to
        :meth:`TwoStageAAE.generate` with the same codes and noise (tested).

        Returns:
            uint8 images ``(B, N, N)`` and, when ``want_mean``, the stage-1 means ``(B, N, N)`` float32.
        """
        from ivus_sim.aae.condition import depth_channel, label_condition, one_hot

        m = self.model
        dev = m.device
        a, s = m.polar_shape
        n = frames.shape[-1]
        lab_p = cart_to_polar(torch.from_numpy(np.array(frames, dtype=np.uint8)), a, s, Interp.NEAREST)
        assert isinstance(lab_p, torch.Tensor)
        lab_p = lab_p.to(dev)
        idx = torch.as_tensor(frame_index, dtype=torch.long, device=dev)
        b = idx.shape[0]
        cond1 = label_condition(lab_p)[idx]  # == label_condition(labels of the batch)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.precision is Precision.BF16):
            mean_p = m.stage1(cond1, z1.to(dev)).float()  # == m.decode1(labels, z1)
            seg2 = torch.cat([mean_p, one_hot(lab_p)[idx], depth_channel(b, a, s, dev)], 1)  # == m.seg2(mean, labels)
            img_p = m.stage2(seg2, noise.to(dev), z2.to(dev)).float()  # == m.decode2(mean, labels, z2, noise)
        img = polar_to_cart(img_p.float().clamp(0, 1), n, Interp.BILINEAR, 0.0)
        assert isinstance(img, torch.Tensor)
        mean_np = None
        if want_mean:
            mean = polar_to_cart(mean_p.float().clamp(0, 1), n, Interp.BILINEAR, 0.0)
            assert isinstance(mean, torch.Tensor)
            mean_np = mean[:, 0].cpu().numpy().astype(np.float32)
        return to_uint8(img[:, 0]), mean_np


class _PhysicsBackend:
    """The stage-0 pseudo B-mode engine (:class:`ivus_sim.physics.PhysicsSimulator`).

    Image ``i`` uses the engine's streams ``(seed, "physics", i)``. Along a pullback every frame of
    image ``i`` reuses those streams: the scatterer field is frozen (the limit of fully correlated
    neighbouring frames), so the speckle changes only where the tissue changes.
    """

    engine = Engine.PHYSICS

    def __init__(self, preset: str, device: torch.device) -> None:
        from ivus_sim.config import load_preset
        from ivus_sim.physics import PhysicsSimulator

        self.preset_name = preset
        self.preset = load_preset(preset)
        self.device = device
        self.engine_impl = PhysicsSimulator(preset=self.preset, device=str(device))
        self.model_id = f"physics-{Path(preset).stem}"

    def describe(self) -> dict[str, Any]:
        return {"engine": self.engine.value, "model_id": self.model_id, "preset": self.preset_name}

    def render(self, labels: np.ndarray, seed: int, first_index: int, fov_mm: float, return_stages: bool
               ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
        """Labels ``(B, N, N)``, image ``k`` on stream index ``first_index + k`` -> uint8 ``(B, N, N)``."""
        res = self.engine_impl.simulate(labels, seed=seed, fov_mm=fov_mm, return_stages=return_stages,
                                        first_index=first_index)
        stages = {k: np.asarray(v, dtype=np.float32) for k, v in res.stages.items()}
        return np.asarray(res.image, dtype=np.uint8), stages, res.params


# ------------------------------------------------------------------------------------ the API
class Simulator:
    """Turn tissue phantoms into IVUS images (see the module docstring).

    Build one with :meth:`default`, :meth:`physics` or :meth:`from_run`.
    """

    def __init__(self, backend: _LearnedBackend | _PhysicsBackend) -> None:
        self._backend = backend

    # ------------------------------------------------------------- constructors
    @classmethod
    def default(cls, device: str | torch.device | None = "auto",
                precision: Precision | str = Precision.AUTO) -> Simulator:
        """The embedded default model shipped in :mod:`ivus_sim.weights` (no download, no training).

        Args:
            device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
            precision: network arithmetic (:class:`Precision`; recorded in every sidecar).
        """
        from ivus_sim.weights import load_default_model

        dev = resolve_device(device)
        model, card, model_id = load_default_model(dev)
        return cls(_LearnedBackend(model, model_id, "ivus_sim.weights (embedded default)", card, precision))

    @classmethod
    def physics(cls, preset: str = "20mhz", device: str | torch.device | None = "cpu") -> Simulator:
        """The stage-0 physics engine with a transducer preset (name such as ``"20mhz"`` or a YAML path)."""
        return cls(_PhysicsBackend(preset, resolve_device(device)))

    @classmethod
    def from_run(cls, path: str | Path, device: str | torch.device | None = "auto",
                 precision: Precision | str = Precision.AUTO) -> Simulator:
        """A user's trained model: a training run folder, its ``model/`` folder, or a ``.safetensors`` file
        with its card beside it (arguments as :meth:`default`)."""
        from ivus_sim.weights import load_model_from_path

        dev = resolve_device(device)
        model, card, model_id = load_model_from_path(Path(path), dev)
        return cls(_LearnedBackend(model, model_id, str(Path(path)), card, precision))

    # ------------------------------------------------------------- properties
    @property
    def engine(self) -> Engine:
        return self._backend.engine

    @property
    def model_id(self) -> str:
        """Identifier of the model (content hash for learned models, preset for physics)."""
        return self._backend.model_id

    @property
    def z_dims(self) -> tuple[int, int]:
        """Sizes of the stage-1 and stage-2 latent codes (learned engine only)."""
        return self._learned("latent codes").z_dims

    @property
    def model(self) -> TwoStageAAE:
        """The underlying :class:`~ivus_sim.two_stage.TwoStageAAE` (learned engine only)."""
        return self._learned("a model").model

    @property
    def model_card(self) -> dict[str, Any]:
        """The model card of a learned model (training data, config, metrics, reproducing commands)."""
        return copy.deepcopy(self._learned("a model card").card)

    def describe(self) -> dict[str, Any]:
        """JSON-able description of the engine/model (goes into every sidecar)."""
        return self._backend.describe()

    def _learned(self, what: str) -> _LearnedBackend:
        if not isinstance(self._backend, _LearnedBackend):
            raise IvusSimError(f"{what} needs the learned engine; the physics engine has no latent code")
        return self._backend

    # ------------------------------------------------------------- generation
    def generate(
        self,
        phantom: Phantom | np.ndarray | torch.Tensor,
        n: int = 4,
        seed: int = 0,
        z: Sequence[float] | np.ndarray | torch.Tensor | None = None,
        fov_mm: float | None = None,
        return_stages: bool = False,
        *,
        first_index: int = 0,
        frames_per_code: int = DEFAULT_FRAMES_PER_CODE,
        batch_size: int = _DEFAULT_BATCH,
    ) -> GenerationResult:
        """Simulate ``n`` IVUS images of one phantom.

        Args:
            phantom: a :class:`~ivus_sim.phantom.Phantom`, or a uint8 label map ``(N, N)`` /
                pullback ``(F, N, N)`` of tissue ids (validated and finalised: FOV mask, catheter).
            n: number of images (independent draws of the latent codes and noise).
            seed: the one seed of every random draw.
            z: fixed latent code (learned engine): ``d1 + d2`` values (z1 then z2) or ``d1`` values
                (z1 only; z2 drawn), shared by all images and frames; or ``(n, d)`` per image.
            fov_mm: field-of-view diameter [mm] of an array input (default 10 mm); a Phantom
                carries its own.
            return_stages: also return intermediate stages (``res.stages``).
            first_index: index of the first image: image ``k`` uses the random streams of index
                ``first_index + k`` (so one image of a batch can be regenerated alone).
            frames_per_code: pullbacks: frames between independent anchor draws (smoothness).
            batch_size: frames per forward pass.

        Returns:
            :class:`GenerationResult` with ``images`` uint8 ``(n, N, N)`` or ``(n, F, N, N)``.
        """
        ph = _as_phantom(phantom, fov_mm)
        if not isinstance(n, numbers.Integral) or n < 1:
            raise IvusSimError(f"n must be a positive number of images, got {n}")
        if not isinstance(seed, numbers.Integral) or seed < 0:
            raise IvusSimError(f"seed must be a non-negative integer, got {seed}")
        n, seed = int(n), int(seed)
        if frames_per_code < 1:
            raise IvusSimError(f"frames_per_code must be >= 1, got {frames_per_code}")
        if first_index < 0:
            raise IvusSimError(f"first_index must be >= 0, got {first_index}")
        if isinstance(self._backend, _LearnedBackend):
            images, stages, extras = self._generate_learned(ph, n, seed, z, first_index, frames_per_code,
                                                            max(1, batch_size), return_stages)
        else:
            if z is not None:
                raise IvusSimError("z (a latent code) needs the learned engine; the physics engine has none")
            images, stages, extras = self._generate_physics(ph, n, seed, first_index, return_stages)
        records = [self._record(ph, seed, first_index + k, frames_per_code, extras[k]) for k in range(n)]
        if ph.n_frames == 1:
            images = images[:, 0]
            stages = {k: v[:, 0] for k, v in stages.items()}
        return GenerationResult(images=images, records=records, stages=stages if return_stages else {}, phantom=ph)

    def _generate_learned(self, ph: Phantom, n: int, seed: int, z: Any, first_index: int,
                          frames_per_code: int, batch_size: int, return_stages: bool
                          ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, Any]]]:
        be = self._learned("learned generation")
        d1, d2 = be.z_dims
        fixed = _parse_codes(z, (d1, d2), n)
        nf = ph.n_frames
        k = n_anchors(nf, frames_per_code)
        anchors, extras = [], []
        for i in range(n):
            anc = be.draw_anchors(k, seed, first_index + i)
            if fixed is not None:
                anc["z1"] = fixed[i, :d1].expand(k, -1)
                if fixed.shape[1] == d1 + d2:
                    anc["z2"] = fixed[i, d1:].expand(k, -1)
            anchors.append(anc)
            if nf == 1:
                zrec: dict[str, Any] = {"z1": _floats(anc["z1"][0]), "z2": _floats(anc["z2"][0])}
            else:
                zrec = {"z1_anchors": _floats(anc["z1"]), "z2_anchors": _floats(anc["z2"]),
                        "frames_per_code": frames_per_code}
            zrec["z_fixed"] = "none" if fixed is None else ("z1" if fixed.shape[1] == d1 else "z1+z2")
            extras.append(zrec)
        size = ph.geometry.size
        images = np.zeros((n, nf, size, size), np.uint8)
        means = np.zeros((n, nf, size, size), np.float32) if return_stages else None
        # frame-major order: a batch holds the n images of a few frames, which share label conditions
        items = [(f, i) for f in range(nf) for i in range(n)]
        for lo in range(0, len(items), batch_size):
            batch = items[lo:lo + batch_size]
            fs = np.array([f for f, _ in batch])
            ims = np.array([i for _, i in batch])
            uniq, inv = np.unique(fs, return_inverse=True)
            z1 = torch.stack([path_at(anchors[i]["z1"], f, frames_per_code) for f, i in batch])
            z2 = torch.stack([path_at(anchors[i]["z2"], f, frames_per_code) for f, i in batch])
            nz = torch.stack([path_at(anchors[i]["noise"], f, frames_per_code) for f, i in batch])
            img, mean = be.render(ph.labels[uniq], inv, z1, z2, nz, return_stages)
            images[ims, fs] = img
            if means is not None and mean is not None:
                means[ims, fs] = mean
        return images, ({"mean": means} if means is not None else {}), extras

    def _generate_physics(self, ph: Phantom, n: int, seed: int, first_index: int, return_stages: bool
                          ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, Any]]]:
        be = self._backend
        assert isinstance(be, _PhysicsBackend)
        fov = ph.geometry.fov_mm
        if ph.n_frames == 1:  # one batched call; image k on stream first_index + k
            lab = np.repeat(ph.labels, n, axis=0)
            img, st, params = be.render(lab, seed, first_index, fov, return_stages)
            per_image: list[dict[str, Any]] = [
                {"physics_params": {**params, "first_index": first_index + k, "images": [params["images"][k]]}}
                for k in range(n)]
            return img[:, None], {k: v[:, None] for k, v in st.items()}, per_image
        imgs: list[np.ndarray] = []
        extras: list[dict[str, Any]] = []
        stages: dict[str, list[np.ndarray]] = {}
        for i in range(n):  # frozen scatterers along the pullback: every frame on stream first_index + i
            frames = [be.render(ph.labels[f:f + 1], seed, first_index + i, fov, return_stages)
                      for f in range(ph.n_frames)]
            imgs.append(np.concatenate([fr[0] for fr in frames]))
            for name in frames[0][1]:
                stages.setdefault(name, []).append(np.concatenate([fr[1][name] for fr in frames]))
            p0 = frames[0][2]
            extras.append({"physics_params": {**p0, "images": [fr[2]["images"][0] for fr in frames]},
                           "scatterers": "frozen along the pullback"})
        return np.stack(imgs), {k: np.stack(v) for k, v in stages.items()}, extras

    def _record(self, ph: Phantom, seed: int, index: int, frames_per_code: int,
                extra: dict[str, Any]) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "generator": "ivus_sim.Simulator.generate",
            "ivus_sim_version": __version__,
            **self.describe(),
            "seed": seed,
            "index": index,
            "phantom": ph.to_dict(),
            "geometry": ph.geometry.to_dict(),
            "frames": ph.n_frames,
            **extra,
        }
        if ph.n_frames > 1:
            rec["frames_per_code"] = frames_per_code
        return json.loads(json.dumps(rec, default=json_default))

    # ------------------------------------------------------------- regeneration
    def regenerate(self, record: dict[str, Any], phantom: Phantom | np.ndarray) -> np.ndarray:
        """Rebuild the image a sidecar ``record`` describes from its phantom (checked by hash).

        Returns the uint8 image ``(N, N)`` (or ``(F, N, N)``), bit-identical on the same device.
        """
        fov = float(record.get("geometry", {}).get("fov_mm", DEFAULT_FOV_MM))
        ph = phantom if isinstance(phantom, Phantom) else _as_phantom(phantom, fov)
        want = record.get("phantom", {}).get("hash")
        if want is not None and ph.hash() != want:
            raise IvusSimError(f"phantom hash {ph.hash()} does not match the sidecar's {want}")
        if record.get("model_id") != self.model_id:
            raise IvusSimError(f"sidecar was made by model {record.get('model_id')!r}, this simulator is "
                               f"{self.model_id!r}")
        z = None
        fixed = record.get("z_fixed", "none")
        if fixed != "none":  # a fixed code is the same at every anchor of a pullback
            z1 = record["z1"] if "z1" in record else record["z1_anchors"][0]
            z2 = record["z2"] if "z2" in record else record["z2_anchors"][0]
            z = z1 + z2 if fixed == "z1+z2" else z1
        be = self._backend
        saved = be.precision if isinstance(be, _LearnedBackend) else None
        if isinstance(be, _LearnedBackend) and "precision" in record:
            be.precision = Precision(record["precision"])  # the arithmetic the image was made with
        try:
            res = self.generate(ph, n=1, seed=int(record["seed"]), z=z, first_index=int(record["index"]),
                                frames_per_code=int(record.get("frames_per_code", DEFAULT_FRAMES_PER_CODE)))
        finally:
            if isinstance(be, _LearnedBackend) and saved is not None:
                be.precision = saved
        return res.images[0]

    # ------------------------------------------------------------- latent exploration
    def _explore_setup(self, phantom: Phantom | np.ndarray, fov_mm: float | None, frame: int
                       ) -> tuple[_LearnedBackend, Phantom, np.ndarray]:
        be = self._learned("latent exploration")
        ph = _as_phantom(phantom, fov_mm)
        if not 0 <= frame < ph.n_frames:
            raise IvusSimError(f"frame {frame} out of range: the phantom has {ph.n_frames} frame(s)")
        return be, ph, ph.labels[frame]

    def _tiles(self, be: _LearnedBackend, labels: np.ndarray, codes: torch.Tensor, seed: int,
               batch_size: int) -> np.ndarray:
        d1, _ = be.z_dims
        noise = be.draw_anchors(1, seed, 0)["noise"]
        out = []
        for lo in range(0, codes.shape[0], batch_size):
            c = codes[lo:lo + batch_size]
            img, _ = be.render(labels[None], np.zeros(c.shape[0], np.int64), c[:, :d1], c[:, d1:],
                               noise.expand(c.shape[0], -1, -1, -1), False)
            out.append(img)
        return np.concatenate(out)

    def explore(self, phantom: Phantom | np.ndarray, grid: int = 8, dims: tuple[int, int] = (0, 1),
                seed: int = 0, *, base: Sequence[float] | None = None, fov_mm: float | None = None,
                frame: int = 0, quantile: float = 0.05, batch_size: int = _DEFAULT_BATCH) -> GridResult:
        """Latent manifold sweep: a ``grid x grid`` mosaic over two latent dimensions.

        Dimension indices refer to the concatenated code ``[z1, z2]`` (``0 .. d1-1`` stage 1,
        ``d1 .. d1+d2-1`` stage 2). The swept values run between the ``quantile`` and
        ``1 - quantile`` quantiles of the prior's marginal (measured on prior samples, so any
        prior works), as in the classic AAE manifold figures (Makhzani et al., arXiv 1511.05644).
        Every other dimension is held at ``base`` (default: the prior mean, 0), and the stage-2
        noise maps are fixed (drawn from ``seed``), so only the swept code changes across tiles.

        Returns:
            :class:`GridResult` with tiles ``(grid, grid, N, N)``: rows follow ``dims[0]``, columns ``dims[1]``.
        """
        be, ph, labels = self._explore_setup(phantom, fov_mm, frame)
        d1, d2 = be.z_dims
        d = d1 + d2
        if not 2 <= grid <= 32:
            raise IvusSimError(f"grid must be between 2 and 32, got {grid}")
        if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= k < d for k in dims):
            raise IvusSimError(f"dims must be two different latent dimensions in 0..{d - 1} "
                               f"(z1: 0..{d1 - 1}, z2: {d1}..{d - 1}), got {list(dims)}")
        if not 0 < quantile < 0.5:
            raise IvusSimError(f"quantile must be in (0, 0.5), got {quantile}")
        b = torch.zeros(d) if base is None else _parse_codes(base, (d1, d2), 1)
        assert b is not None
        b = b.reshape(-1)
        if b.numel() != d:
            raise IvusSimError(f"base must have {d} values (z1 then z2), got {b.numel()}")
        ref = be.prior.sample(20000, 1, generator=torch_generator(0, "explore", "prior-quantiles"))[:, 0]
        qs = torch.linspace(quantile, 1 - quantile, grid)
        values = torch.quantile(ref, qs)
        codes = b.repeat(grid, grid, 1)
        codes[:, :, dims[0]] = values[:, None]
        codes[:, :, dims[1]] = values[None, :]
        tiles = self._tiles(be, labels, codes.reshape(-1, d), seed, batch_size)
        rec = {"generator": "ivus_sim.Simulator.explore", "ivus_sim_version": __version__, **self.describe(),
               "phantom": ph.to_dict(), "frame": frame, "grid": grid, "dims": list(dims), "seed": seed,
               "quantile": quantile, "values": _floats(values), "base": _floats(b)}
        return GridResult(images=tiles.reshape(grid, grid, *labels.shape), codes=codes.numpy(), record=rec)

    def interpolate(self, phantom: Phantom | np.ndarray, z_a: Sequence[float], z_b: Sequence[float],
                    steps: int = 8, seed: int = 0, *, fov_mm: float | None = None, frame: int = 0,
                    batch_size: int = _DEFAULT_BATCH) -> GridResult:
        """Images along the spherical interpolation from code ``z_a`` to ``z_b`` (each d1 + d2 values).

        The stage-2 noise maps are fixed (drawn from ``seed``). Returns tiles ``(1, steps, N, N)``.
        """
        be, ph, labels = self._explore_setup(phantom, fov_mm, frame)
        d1, d2 = be.z_dims
        if not 2 <= steps <= 64:
            raise IvusSimError(f"steps must be between 2 and 64, got {steps}")
        za, zb = (_parse_codes(v, (d1, d2), 1) for v in (z_a, z_b))
        assert za is not None and zb is not None
        if za.shape[1] != d1 + d2 or zb.shape[1] != d1 + d2:
            raise IvusSimError(f"interpolation codes need {d1 + d2} values each (z1 then z2)")
        t = torch.linspace(0, 1, steps)[:, None]
        codes = slerp(za[0], zb[0], t)
        tiles = self._tiles(be, labels, codes, seed, batch_size)
        rec = {"generator": "ivus_sim.Simulator.interpolate", "ivus_sim_version": __version__, **self.describe(),
               "phantom": ph.to_dict(), "frame": frame, "steps": steps, "seed": seed,
               "z_a": _floats(za[0]), "z_b": _floats(zb[0])}
        return GridResult(images=tiles.reshape(1, steps, *labels.shape), codes=codes.numpy()[None], record=rec)

