"""The learned backend: a trained :class:`~ivus_sim.two_stage.TwoStageAAE` behind the generation API.

The forward pass is the model's own :meth:`TwoStageAAE.render_polar` (the one learned forward
pass, shared with :meth:`TwoStageAAE.generate` and the trainer's sample grids); this module only
draws the random inputs from named streams, converts each distinct label frame to the polar grid
once, runs ``render_polar`` on the batch, and scan-converts the result.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ivus_sim.device import Precision, resolve_precision
from ivus_sim.engines import Engine
from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import Interp, cart_to_polar, polar_to_cart
from ivus_sim.image import to_uint8
from ivus_sim.seeding import torch_generator

if TYPE_CHECKING:
    from ivus_sim.aae.priors import Prior
    from ivus_sim.two_stage import TwoStageAAE

__all__ = ["LearnedBackend", "load_default", "load_from_path", "model_key", "DEFAULT_SOURCE"]

DEFAULT_SOURCE = "ivus_sim.weights (embedded default)"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _load_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [OSError, RuntimeError, ValueError, KeyError, EOFError, TypeError]
    try:
        from safetensors import SafetensorError

        errs.append(SafetensorError)
    except ImportError:  # pragma: no cover - safetensors is a dependency
        pass
    return tuple(errs)


def load_default(device: torch.device) -> tuple[TwoStageAAE, dict[str, Any], str]:
    """The embedded default model ``(model, card, model_id)`` (:func:`ivus_sim.modelio.load_default_model`)."""
    from ivus_sim.modelio import load_default_model

    try:
        return load_default_model(device)
    except IvusSimError:
        raise
    except _load_errors() as e:
        raise IvusSimError(f"cannot load the embedded default model: {_first_line(e)}; reinstall ivus-sim") from None


def load_from_path(path: Path, device: torch.device) -> tuple[TwoStageAAE, dict[str, Any], str]:
    """A user's model (run folder, ``model/`` folder or ``.safetensors`` file): ``(model, card, model_id)``.

    A missing, truncated or corrupt model file is a one-line :class:`IvusSimError`
    (:func:`ivus_sim.modelio.load_model_from_path`).
    """
    from ivus_sim.modelio import load_model_from_path

    if not path.exists():
        raise IvusSimError(f"model not found: {path}")
    try:
        return load_model_from_path(path, device)
    except IvusSimError:
        raise
    except _load_errors() as e:
        raise IvusSimError(f"cannot load model {path}: {_first_line(e)}") from None


def _sha12(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return "unreadable"


def model_key(model: Path | None) -> str:
    """A cheap identity of a learned model, computed WITHOUT loading it (no torch work).

    ``default-<sha>`` for the embedded default, ``<resolved path>@<sha>`` for a user's model
    (sha: first 12 hex digits of the weights file's sha256). Output planning compares it to decide
    whether an existing output was made by the same request (resume) before any model is loaded.
    """
    from ivus_sim.modelio import DEFAULT_PACKAGE, WEIGHTS_NAME, find_model_files

    if model is None:
        w = resources.files(DEFAULT_PACKAGE) / WEIGHTS_NAME
        return f"default-{_sha12(Path(str(w)))}" if w.is_file() else "default-missing"
    weights, _ = find_model_files(model)
    return f"{model.resolve()}@{_sha12(weights)}"


class LearnedBackend:
    """A trained :class:`~ivus_sim.two_stage.TwoStageAAE` (its generator parts).

    Args:
        model: the model (moved to eval mode; channels-last on CPU for faster oneDNN convolutions).
        model_id: identifier recorded in sidecars.
        source: where the model came from (recorded).
        card: the model card.
        precision: network arithmetic (resolved against the model's device).
    """

    engine = Engine.LEARNED

    def __init__(self, model: TwoStageAAE, model_id: str, source: str, card: dict[str, Any],
                 precision: Precision | str = Precision.AUTO) -> None:
        self.model = model.eval()
        if self.model.device.type == "cpu":
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
        """``k`` anchor draws of z1 ``(k, d1)``, z2 ``(k, d2)`` and noise ``(k, ...)`` for image ``index``.

        Anchor ``j`` uses its own streams ``(seed, "generate", <z1|z2|noise>, index, j)``, so anchor 0
        of a pullback is exactly the draw of a single-frame image with the same seed and index. The
        noise is whatever ``model.noise(1, generator)`` draws (its shape is the model's business).
        """
        d1, d2 = self.z_dims
        z1, z2, noise = [], [], []
        for j in range(k):
            z1.append(self.prior.sample(1, d1, generator=torch_generator(seed, "generate", "z1", index, j)))
            z2.append(self.prior.sample(1, d2, generator=torch_generator(seed, "generate", "z2", index, j)))
            noise.append(self.model.noise(1, torch_generator(seed, "generate", "noise", index, j)).cpu())
        return {"z1": torch.cat(z1), "z2": torch.cat(z2), "noise": torch.cat(noise)}

    @torch.inference_mode()
    def render(self, frames: np.ndarray, frame_index: np.ndarray, z1: torch.Tensor, z2: torch.Tensor,
               noise: torch.Tensor, want_mean: bool = False, want_polar: bool = False) -> dict[str, Any]:
        """One batch: label ``frames`` ``(U, N, N)``; item ``b`` shows ``frames[frame_index[b]]`` with
        codes ``z1[b]``, ``z2[b]`` and noise ``noise[b]``.

        Each distinct frame is converted to the polar grid once (``n`` images of one phantom share
        it), then :meth:`TwoStageAAE.render_polar` runs on the batch.

        Returns:
            dict: ``image`` uint8 ``(B, N, N)``; ``mean`` float32 ``(B, N, N)`` (when ``want_mean``);
            ``polar`` float32 ``(B, A, S)`` in [0, 1] (when ``want_polar``); ``style``: name ->
            float32 ``(B,)`` scanner-style quantities decoded from z2 (may be empty).
        """
        m = self.model
        dev = m.device
        a, s = m.polar_shape
        n = frames.shape[-1]
        lab_u = cart_to_polar(torch.from_numpy(np.array(frames, dtype=np.uint8)), a, s, Interp.NEAREST)
        assert isinstance(lab_u, torch.Tensor)
        idx = torch.as_tensor(np.asarray(frame_index), dtype=torch.long)
        lab_p = lab_u.long()[idx].to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.precision is Precision.BF16):
            out = m.render_polar(lab_p, z1.to(dev), z2.to(dev), noise.to(dev))
        img_p = out["image"].float().clamp(0, 1)
        img = polar_to_cart(img_p, n, m.config.scan_conversion, 0.0)
        assert isinstance(img, torch.Tensor)
        res: dict[str, Any] = {"image": to_uint8(img[:, 0])}
        if want_mean:
            mean = polar_to_cart(out["mean"].float().clamp(0, 1), n, Interp.BILINEAR, 0.0)
            assert isinstance(mean, torch.Tensor)
            res["mean"] = mean[:, 0].cpu().numpy().astype(np.float32)
        if want_polar:
            res["polar"] = img_p[:, 0].cpu().numpy().astype(np.float32)
        res["style"] = {k: v.detach().float().reshape(-1).cpu().numpy() for k, v in (out.get("style") or {}).items()}
        return res
