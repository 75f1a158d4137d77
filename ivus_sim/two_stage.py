"""TwoStageAAE: the learned IVUS generator (stage 1 + stage 2, each a conditional AAE).

Data flow (all networks run on the polar grid, see :mod:`ivus_sim.geometry`)::

    labels (B, N, N) Cartesian --cart_to_polar(NEAREST)--> (B, A, S)
      -> condition c1 = [one-hot, depth, cumulative tissue]               (ivus_sim.aae.condition)
      -> stage 1 decoder(c1, z1)                -> mean (B, 1, A, S)    z1 ~ prior (B, d1)
      -> stage 2 decoder(mean, labels, z2, noise)   -> image, style      z2 ~ prior (B, d2)
      --polar_to_cart(BILINEAR)--> (B, 1, N, N), 0 outside the FOV disc

Stage 2 (``model.stage2_kind``):

* ``physics`` (default): :class:`ivus_sim.stage2.decoder.PhysicsStage2Decoder`. z2's first
  ``min(5, d2)`` dimensions set scanner settings (gain, dynamic range, aperture, centre frequency,
  bandwidth; :class:`ivus_sim.stage2.formation.ScannerParams`), a small network predicts per-pixel
  scattering parameters from the mean, a seeded complex scatterer field (:meth:`TwoStageAAE.noise`)
  is convolved with the learned PSF, envelope-detected and log-compressed with the physics engine's
  functions, and a multi-scale circular refinement network adds a residual.
* ``spade`` (files written before the physics-informed stage 2): the SPADE residual decoder of
  :mod:`ivus_sim.stage2.model`; its ``style`` is empty.

Shadows, attenuation and the focal gain are part of the *mean*: stage 1 predicts them (its
targets are tissue-aware local means of the images, which keep the shadow behind calcium and the
depth trends); stage 2 inverts the mean to a backscattered power, so they carry through.

Training (one conditional AAE per stage, Makhzani et al. arXiv 1511.05644): an encoder maps the
target (with its condition) to z; the decoder rebuilds the target from condition and z
(reconstruction phase); a latent discriminator separates encoder codes from prior samples and
the encoder learns to fool it (regularisation phase). Stage 2 is sharpened by a conditional
MONAI patch discriminator (built only with ``training_parts=True``: generation never imports
MONAI). This module only computes *named losses*; the optimisers are stepped, in explicit order,
by the trainer, which weights them by name (``train.loss_weights``). Stage-2 losses:
``s2_rec`` (L1), ``s2_stats`` (local mean/std at 3 scales), ``s2_adv_g`` (patch GAN),
``s2_texture`` / ``s2_hist`` (per-tissue tile std, autocorrelation and grey-level histogram against
the batch's real images, :mod:`ivus_sim.stage2.texture_losses`; 0 by default, on in ``own_data``) and the
calibration losses ``cal_hist``, ``cal_profile``, ``cal_speckle`` against the real 20 MHz figures
(:mod:`ivus_sim.stage2.calibration_losses`).

Contract used by the generation API::

    model = TwoStageAAE(ModelConfig())
    model.z_dims        # (d1, d2)
    model.prior         # Prior
    model.polar_shape   # (n_angles, n_samples)
    out = model.render_polar(lab_p, z1, z2, model.noise(B, generator))   # THE learned forward pass
    # dict(mean=(B,1,A,S), image=(B,1,A,S) in [0,1], style={name: (B,)})
    out = model.generate(labels, z1=None, z2=None, generator=None, fov_mm=10.0)
    # dict(mean=(B,1,N,N), image=(B,1,N,N) float in [0,1], z1=(B,d1), z2=(B,d2), style)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ivus_sim.aae.condition import CONDITION_CHANNELS, N_CLASSES, depth_channel, label_condition, one_hot
from ivus_sim.aae.encoder import Encoder
from ivus_sim.aae.latent_discriminator import (
    LatentDiscriminator,
    encoder_regularisation_loss,
    latent_discriminator_loss,
)
from ivus_sim.aae.priors import Prior
from ivus_sim.errors import IvusSimError
from ivus_sim.geometry import DEFAULT_FOV_MM, Interp, cart_to_polar, polar_to_cart
from ivus_sim.stage1.model import Stage1Decoder
from ivus_sim.stage2.decoder import PhysicsStage2Decoder
from ivus_sim.stage2.losses import speckle_statistics_loss
from ivus_sim.stage2.model import Stage2Decoder
from ivus_sim.tissues import validate_labels

__all__ = ["ModelConfig", "Stage2Kind", "TwoStageAAE", "SEG2_CHANNELS"]


class Stage2Kind(str, Enum):
    """Which stage-2 decoder a model has."""

    PHYSICS = "physics"  #: learned speckle formation (PSF, envelope, log compression) + refinement
    SPADE = "spade"  #: legacy SPADE residual decoder (files written before ``stage2_kind`` existed)

#: channels of the stage-2 spatial condition: mean + one-hot + depth
SEG2_CHANNELS = 1 + N_CLASSES + 1


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a :class:`TwoStageAAE` (stored in checkpoints and model cards).

    Args:
        n_angles: A-lines of the polar grid (divisible by 2 ** (levels - 1) of every encoder/U-Net).
        n_samples: depth samples of the polar grid (same divisibility).
        z1_dim: stage-1 code size.
        z2_dim: stage-2 code size.
        prior: prior p(z) of both codes.
        stage1_channels: stage-1 U-Net widths, first level first.
        stage1_downsample: stage 1 runs at the polar grid divided by this (its output is smooth).
        stage2_channels: stage-2 feature width.
        stage2_blocks: stage-2 residual SPADE blocks.
        n_noise: stage-2 per-pixel noise channels (``physics``: extra channels for the refinement,
            on top of the 6 the formation draws; ``spade``: the decoder's noise maps).
        spade_hidden: hidden width of each SPADE block (``spade`` only).
        stage2_kind: ``physics`` (learned speckle formation) or ``spade`` (legacy).
        refine_channels: ``physics`` refinement widths per scale, finest first.
        param_hidden: ``physics`` scattering-parameter network width.
        mean_lock: ``physics``: side ``k`` [polar pixels] of the window over which stage 2's image
            keeps stage 1's mean (0 = off). Formed image + refinement residual are shifted until the
            ``k x k`` local mean of the displayed (clipped) image equals stage 1's, so stage 2 adds
            speckle and texture around the echogenicity that stage 1 sets and cannot move it:
            acoustic shadows behind calcium stay as dark as stage 1 draws them (measured: without it
            the formation and refinement filled them, 33 -> 15 grey levels).
        encoder_channels: encoder widths (stride-2 stages).
        latent_hidden: latent discriminator width.
        patch_channels: patch discriminator first-layer width.
        patch_layers: patch discriminator downsampling layers.
        fov_mm: FOV diameter [mm] of the training images (the polar grid spans this FOV).
        scan_conversion: interpolation between display images and the polar grid, both ways:
            training images -> polar targets, and generated polar images -> display. ``bicubic``
            keeps more of the speckle grain through the two resamplings (measured on a hidden
            40 MHz scanner: real frames sent through the 256 x 128 grid and back are told from the
            originals with classifier accuracy 0.88 with bilinear, 0.65 with bicubic, so a model
            on that grid could not look real with bilinear however well it learned); ``bilinear``
            is what models trained before this setting existed use.
        transmission: stage 1 also sees the transmission along each A-line computed with learned
            per-tissue attenuation (:class:`~ivus_sim.stage1.transmission.LearnedTransmission`),
            so thin reflectors (guidewire, stent struts) cast full shadows; ``False`` is what
            models trained before this setting existed use.
        formation_oversample: ``physics``: stage 2 forms its speckle on a depth grid this many times
            finer than ``n_samples`` and averages the envelope back (as a scanner decimates before
            display), so a pulse shorter than a model sample gives fine grain *and* the reduced
            contrast of averaged speckle (:mod:`ivus_sim.stage2.formation`); 1 is what models
            trained before this setting existed use. Costs 4 more noise channels per extra sample.
    """

    n_angles: int = 256
    n_samples: int = 128
    z1_dim: int = 8
    z2_dim: int = 8
    prior: Prior = Prior.GAUSSIAN
    stage1_channels: tuple[int, ...] = (16, 32, 64)
    stage1_downsample: int = 2
    stage2_channels: int = 24
    stage2_blocks: int = 3
    n_noise: int = 2
    spade_hidden: int = 16
    encoder_channels: tuple[int, ...] = (16, 32, 64)
    latent_hidden: int = 64
    patch_channels: int = 32
    patch_layers: int = 3
    fov_mm: float = DEFAULT_FOV_MM
    stage2_kind: Stage2Kind = Stage2Kind.PHYSICS
    refine_channels: tuple[int, ...] = (12, 24, 32, 48)
    param_hidden: int = 12
    mean_lock: int = 0
    scan_conversion: Interp = Interp.BILINEAR
    transmission: bool = False
    formation_oversample: int = 1

    def __post_init__(self) -> None:
        if self.formation_oversample not in (1, 2, 4):
            raise IvusSimError(f"model.formation_oversample must be 1, 2 or 4, got {self.formation_oversample}")
        if self.formation_oversample != 1 and self.stage2_kind is not Stage2Kind.PHYSICS:
            raise IvusSimError("model.formation_oversample needs model.stage2_kind: physics (the legacy spade "
                               "stage 2 forms no speckle)")
        if self.scan_conversion not in (Interp.BILINEAR, Interp.BICUBIC):
            raise IvusSimError(f"model.scan_conversion must be bilinear or bicubic, got {self.scan_conversion.value}")
        div = max(self.stage1_downsample * 2 ** (len(self.stage1_channels) - 1), 2 ** len(self.encoder_channels))
        if self.stage2_kind is Stage2Kind.PHYSICS:
            div = max(div, 2 ** len(self.refine_channels), 4)
        for name in ("n_angles", "n_samples"):
            v = getattr(self, name)
            if v < 8 or v % div:
                raise IvusSimError(f"model.{name}={v} must be >= 8 and divisible by {div}")
        if self.z1_dim < 1 or self.z2_dim < 1:
            raise IvusSimError("model.z1_dim and model.z2_dim must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prior"] = self.prior.value
        d["stage2_kind"] = self.stage2_kind.value
        d["scan_conversion"] = self.scan_conversion.value
        for k in ("stage1_channels", "encoder_channels", "refine_channels"):
            d[k] = list(getattr(self, k))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "model config") -> ModelConfig:
        """Build from a mapping through :func:`ivus_sim.schema.build` (types, enums, unknown keys, one line)."""
        from ivus_sim.schema import build

        if not isinstance(d, dict):
            raise IvusSimError(f"{source}: expected a mapping, got {type(d).__name__}")
        # files written before stage2_kind existed hold the SPADE decoder
        return build(cls, {"stage2_kind": Stage2Kind.SPADE.value, **d}, source, "model")


class TwoStageAAE(nn.Module):
    """Both stages with their encoders and discriminators.

    Args:
        config: the architecture.
        training_parts: also build the MONAI patch discriminator and its adversarial loss (the
            trainer needs them; generation from a generator-only file does not, and then MONAI is
            never imported).

    Batches passed to the loss methods are dicts of polar tensors: ``labels (B, A, S)`` tissue ids,
    ``mean (B, 1, A, S)`` the stage-1 target, ``image (B, 1, A, S)`` the stage-2 target, in [0, 1].
    """

    def __init__(self, config: ModelConfig | None = None, training_parts: bool = True) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        self.prior: Prior = cfg.prior
        self.stage1 = Stage1Decoder(CONDITION_CHANNELS, cfg.z1_dim, cfg.stage1_channels, cfg.stage1_downsample,
                                    transmission=cfg.transmission)
        self.encoder1 = Encoder(1 + CONDITION_CHANNELS, cfg.z1_dim, cfg.encoder_channels)
        self.latent_d1 = LatentDiscriminator(cfg.z1_dim, cfg.latent_hidden)
        self.stage2: nn.Module
        if cfg.stage2_kind is Stage2Kind.PHYSICS:
            self.stage2 = PhysicsStage2Decoder(cfg.z2_dim, cfg.n_angles, cfg.fov_mm / 2, cfg.n_noise,
                                               cfg.refine_channels, cfg.param_hidden,
                                               mean_lock=cfg.mean_lock, oversample=cfg.formation_oversample)
        else:
            self.stage2 = Stage2Decoder(SEG2_CHANNELS, cfg.z2_dim, cfg.stage2_channels, cfg.stage2_blocks,
                                        cfg.n_noise, cfg.spade_hidden)
        self.encoder2 = Encoder(1 + SEG2_CHANNELS, cfg.z2_dim, cfg.encoder_channels)
        self.latent_d2 = LatentDiscriminator(cfg.z2_dim, cfg.latent_hidden)
        if training_parts:
            # MONAI only here (training); generation builds the model without it
            from ivus_sim.stage2.discriminator import ConditionalPatchDiscriminator, make_adversarial_loss

            self.patch_d = ConditionalPatchDiscriminator(SEG2_CHANNELS, cfg.patch_channels, cfg.patch_layers)
            self.adversarial_loss = make_adversarial_loss()
        self._calibration: Any = None
        #: the model card when loaded by :func:`ivus_sim.training.checkpoint.load_model` (else empty)
        self.card: dict[str, Any] = {}

    # ---------------------------------------------------------------- contract
    @staticmethod
    def default_loss_weights() -> dict[str, float]:
        """Documented default weight of every named loss (``train.loss_weights`` overrides each).

        ``cal_*`` pull the ``physics`` stage 2 towards the real *20 MHz* figures: 0 by default (they
        would pull a model of another scanner, or of your own data, the wrong way); the
        ``cpu_default`` config, which trains the embedded 20 MHz default, turns them on.
        """
        return {"s1_rec": 1.0, "s1_latent_d": 1.0, "s1_latent_e": 1.0,
                "s2_rec": 0.2, "s2_stats": 2.0, "s2_adv_g": 0.1, "s2_patch_d": 1.0, "s2_latent_d": 1.0,
                "s2_latent_e": 1.0, "s2_texture": 0.0, "s2_hist": 0.0, "s2_tissue_texture": 0.0,
                "s2_diversity": 0.0,
                "cal_hist": 0.0, "cal_profile": 0.0, "cal_speckle": 0.0}

    @property
    def z_dims(self) -> tuple[int, int]:
        """Sizes of the stage-1 and stage-2 codes."""
        return self.config.z1_dim, self.config.z2_dim

    @property
    def polar_shape(self) -> tuple[int, int]:
        """Polar grid ``(n_angles, n_samples)`` the networks run on."""
        return self.config.n_angles, self.config.n_samples

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def physical_parameters(self) -> list[nn.Parameter]:
        """The physical scalars (stage 2's scanner: gain, dynamic range, PSF, TGC; stage 1's tissue
        attenuation when ``transmission`` is on). The trainer gives them ``train.lr_scanner``."""
        out: list[nn.Parameter] = []
        scanner = getattr(self.stage2, "scanner", None)
        if scanner is not None:
            out += list(scanner.parameters())
        if self.stage1.transmission is not None:
            out += list(self.stage1.transmission.parameters())
        return out

    def decibel_parameters(self) -> list[nn.Parameter]:
        """The physical scalars kept in decibels (stage 2's gain, receiver noise floor and TGC slope
        [dB/cm]), a subset of :meth:`physical_parameters`; ``train.lr_scanner_db_scale`` speeds them up."""
        scanner = getattr(self.stage2, "scanner", None)
        if scanner is None:
            return []
        return [getattr(scanner, name) for name in scanner.DECIBEL_PARAMETERS]

    def generator_modules(self) -> dict[str, nn.Module]:
        """The parts needed at generation time (what the embedded weights must hold)."""
        return {"stage1": self.stage1, "stage2": self.stage2}

    # ---------------------------------------------------------------- building blocks
    def seg2(self, mean: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Stage-2 spatial condition ``(B, SEG2_CHANNELS, A, S)`` from ``mean (B,1,A,S)`` and labels ``(B,A,S)``."""
        oh = one_hot(labels)
        b, _, a, s = oh.shape
        return torch.cat([mean, oh, depth_channel(b, a, s, oh.device)], 1)

    @property
    def noise_channels(self) -> int:
        """Channels of :meth:`noise` (``physics``: the formation's channels + ``n_noise``)."""
        if isinstance(self.stage2, PhysicsStage2Decoder):
            return self.stage2.noise_channels
        return self.config.n_noise

    def noise(self, batch: int, generator: torch.Generator | None = None,
              shape: tuple[int, int] | None = None) -> torch.Tensor:
        """Standard-normal noise ``(B, noise_channels, A, S)`` on the model's device: stage 2's randomness.

        ``physics``: channels 0-1 the complex scatterer field (re, im), 2 the per-cell scatterer
        heterogeneity, 3 the texture field's white seed, 4-5 the complex receiver noise, with
        ``formation_oversample`` the fine samples' channels
        (:func:`~ivus_sim.stage2.formation.formation_noise_channels`), then ``n_noise`` channels for
        the refinement. ``shape`` overrides ``(A, S)`` (training on angular
        windows); default :attr:`polar_shape`. Image ``i`` draws its channels in order from ``generator``.
        """
        a, s = shape or self.polar_shape
        gdev = generator.device if generator is not None else self.device
        n = torch.randn(batch, self.noise_channels, a, s, generator=generator, device=gdev)
        return n.to(self.device)

    def sample_prior(self, batch: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Codes ``(B, dim)`` from the prior on the model's device."""
        gdev = generator.device if generator is not None else self.device
        return self.prior.sample(batch, dim, generator=generator, device=gdev).to(self.device)

    def encode1(self, mean: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Stage-1 encoder: ``mean (B,1,A,S)``, labels ``(B,A,S)`` -> ``z1 (B, d1)``."""
        return self.encoder1(torch.cat([mean, label_condition(labels)], 1))

    def decode1(self, labels: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """Stage-1 decoder: labels ``(B,A,S)``, ``z1 (B,d1)`` -> mean ``(B,1,A,S)``."""
        return self.stage1(label_condition(labels), z1)

    def encode2(self, image: torch.Tensor, mean: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Stage-2 encoder: ``image (B,1,A,S)`` given its mean and labels -> ``z2 (B, d2)``."""
        return self.encoder2(torch.cat([image, self.seg2(mean, labels)], 1))

    def decode2_full(self, mean: torch.Tensor, labels: torch.Tensor, z2: torch.Tensor,
                     noise: torch.Tensor) -> dict[str, Any]:
        """Stage-2 decoder -> ``{"image": (B,1,A,S) in [0, 1], "style": {name: (B,)}}`` (+ ``formed``)."""
        if self.config.stage2_kind is Stage2Kind.PHYSICS:
            out: dict[str, Any] = self.stage2(mean, labels, z2, noise)
            return out
        return {"image": self.stage2(self.seg2(mean, labels), noise, z2), "style": {}}

    def decode2(self, mean: torch.Tensor, labels: torch.Tensor, z2: torch.Tensor,
                noise: torch.Tensor) -> torch.Tensor:
        """Stage-2 decoder -> image ``(B,1,A,S)``."""
        img: torch.Tensor = self.decode2_full(mean, labels, z2, noise)["image"]
        return img

    def calibration_losses(self, image: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named calibration losses ``cal_hist``, ``cal_profile``, ``cal_speckle`` of polar images (training)."""
        if self._calibration is None:
            from ivus_sim.stage2.calibration_losses import CalibrationLosses

            self._calibration = CalibrationLosses(self.config.n_angles)
        out: dict[str, torch.Tensor] = self._calibration(image, labels)
        return out

    # ---------------------------------------------------------------- named losses
    def stage1_reconstruction(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """AAE phase 1 for stage 1. Returns ``({"s1_rec": MSE}, z1)``.

        Squared error, not L1: the target (a tissue-aware local mean of the image) keeps texture
        that no label map predicts, and L1 would fit its *median*, which for right-skewed display
        values sits 10-15 grey levels below the mean that stage 2's formation inverts (measured
        on the physics corpus). The ``physics`` stage 2 then draws images too dark.
        """
        z = self.encode1(batch["mean"], batch["labels"])
        fake = self.decode1(batch["labels"], z)
        return {"s1_rec": F.mse_loss(fake, batch["mean"])}, z

    def stage2_reconstruction(self, batch: dict[str, torch.Tensor], noise: torch.Tensor,
                              skip: Collection[str] = (), noise2: torch.Tensor | None = None
                              ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """AAE phase 1 for stage 2 plus the patch-GAN generator loss.

        Teacher forcing: stage 2 is conditioned on the stage-1 *target*, so the stages train
        independently. Returns ``({"s2_rec", "s2_stats", "s2_adv_g", "s2_texture", "s2_hist",
        "s2_tissue_texture", "cal_hist", "cal_profile", "cal_speckle", "s2_diversity"}, z2, fake)``; the calibration
        losses only for the ``physics`` stage 2; ``s2_diversity`` only with ``noise2`` (a second,
        independent noise draw: the batch is decoded again with it,
        :mod:`ivus_sim.stage2.diversity_loss`).
        ``skip``: loss names the caller weights 0 (the trainer's); an optional group (texture losses,
        calibration losses, diversity) whose names are all in it is not computed (training speed).
        """
        z = self.encode2(batch["image"], batch["mean"], batch["labels"])
        fake = self.decode2(batch["mean"], batch["labels"], z, noise)
        seg = self.seg2(batch["mean"], batch["labels"])
        logits = self.patch_d(fake, seg)[-1]
        adv = self.adversarial_loss(logits, target_is_real=True, for_discriminator=False)
        losses = {
            "s2_rec": F.l1_loss(fake, batch["image"]),
            "s2_stats": speckle_statistics_loss(fake, batch["image"]),
            "s2_adv_g": adv if isinstance(adv, torch.Tensor) else torch.stack(adv).mean(),
        }
        # training only, imported here: not on the generation path
        from ivus_sim.stage2.calibration_losses import CALIBRATION_LOSS_NAMES
        from ivus_sim.stage2.diversity_loss import DIVERSITY_LOSS_NAMES, diversity_loss
        from ivus_sim.stage2.texture_losses import TEXTURE_LOSS_NAMES, texture_losses

        if not set(TEXTURE_LOSS_NAMES) <= set(skip):
            losses.update(texture_losses(fake, batch["image"], batch["labels"],
                                         tissue_texture="s2_tissue_texture" not in skip))
        if self.config.stage2_kind is Stage2Kind.PHYSICS and not set(CALIBRATION_LOSS_NAMES) <= set(skip):
            losses.update(self.calibration_losses(fake, batch["labels"]))
        if noise2 is not None and not set(DIVERSITY_LOSS_NAMES) <= set(skip):
            fake2 = self.decode2(batch["mean"], batch["labels"], z, noise2)
            losses.update(diversity_loss(fake, fake2, batch["labels"]))
        return losses, z, fake

    def patch_discriminator_losses(self, batch: dict[str, torch.Tensor], fake: torch.Tensor
                                   ) -> dict[str, torch.Tensor]:
        """Patch-GAN discriminator loss ``{"s2_patch_d"}`` (real targets vs detached fakes)."""
        seg = self.seg2(batch["mean"], batch["labels"])
        real = self.adversarial_loss(self.patch_d(batch["image"], seg)[-1], target_is_real=True,
                                     for_discriminator=True)
        fk = self.adversarial_loss(self.patch_d(fake.detach(), seg)[-1], target_is_real=False,
                                   for_discriminator=True)
        assert isinstance(real, torch.Tensor) and isinstance(fk, torch.Tensor)
        return {"s2_patch_d": 0.5 * (real + fk)}

    def latent_discriminator_losses(self, stage: int, z_encoded: torch.Tensor,
                                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """AAE phase 2a: ``{"s<stage>_latent_d": BCE}`` of prior samples (real) vs detached codes (fake)."""
        disc = self.latent_d1 if stage == 1 else self.latent_d2
        z_real = self.sample_prior(z_encoded.shape[0], z_encoded.shape[1], generator)
        loss = latent_discriminator_loss(disc(z_real), disc(z_encoded.detach()))
        return {f"s{stage}_latent_d": loss}

    def encoder_regularisation_losses(self, stage: int, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """AAE phase 2b: ``{"s<stage>_latent_e": BCE}``, the encoder trying to pass its codes as prior samples."""
        if stage == 1:
            z = self.encode1(batch["mean"], batch["labels"])
            d = self.latent_d1(z)
        else:
            z = self.encode2(batch["image"], batch["mean"], batch["labels"])
            d = self.latent_d2(z)
        return {f"s{stage}_latent_e": encoder_regularisation_loss(d)}

    # ---------------------------------------------------------------- generation
    def _check_code(self, z: torch.Tensor | None, batch: int, dim: int, name: str,
                    generator: torch.Generator | None) -> torch.Tensor:
        if z is None:
            return self.sample_prior(batch, dim, generator)
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() == 1:
            z = z.unsqueeze(0).expand(batch, -1)
        if tuple(z.shape) != (batch, dim):
            raise IvusSimError(f"{name} must have shape ({batch}, {dim}), got {tuple(z.shape)}")
        return z.to(self.device)

    def render_polar(self, lab_p: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, noise: torch.Tensor
                     ) -> dict[str, Any]:
        """THE learned forward pass (used by :meth:`generate`, the simulator, the trainer's samples, tests).

        Args:
            lab_p: ``(B, A, S)`` integer tissue ids on the model's polar grid.
            z1: ``(B, d1)`` stage-1 codes; z2: ``(B, d2)`` stage-2 codes.
            noise: ``model.noise(B, generator)`` (the stage-2 random field; its shape is the model's).

        Returns:
            ``{"mean": (B,1,A,S), "image": (B,1,A,S)}`` in [0, 1] and ``"style"``: dict of ``(B,)``
            scanner-style quantities decoded from z2 (``physics``:
            :data:`ivus_sim.stage2.formation.STYLE_KEYS`; empty for ``spade`` models).
        """
        cond = label_condition(lab_p)
        mean_p = self.stage1(cond, z1)
        if self.config.stage2_kind is Stage2Kind.PHYSICS:
            out = self.stage2(mean_p, lab_p, z2, noise, cond=cond)
        else:
            out = self.decode2_full(mean_p, lab_p, z2, noise)
        style = {k: v.detach() for k, v in out["style"].items()}
        return {"mean": mean_p.clamp(0, 1), "image": out["image"].clamp(0, 1), "style": style}

    @torch.no_grad()
    def generate(self, labels: torch.Tensor | np.ndarray, z1: torch.Tensor | None = None,
                 z2: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 fov_mm: float = DEFAULT_FOV_MM) -> dict[str, torch.Tensor]:
        """Simulate images from Cartesian label maps.

        Args:
            labels: ``(B, N, N)`` (or ``(N, N)``) uint8 tissue ids, finalised (see
                :func:`ivus_sim.phantom.finalise_labels`).
            z1: ``(B, d1)`` (or ``(d1,)``, shared) stage-1 codes; ``None`` draws them from the prior.
            z2: ``(B, d2)`` stage-2 codes; ``None`` draws them from the prior.
            generator: torch generator for the codes (z1 first, then z2) and the noise maps.
            fov_mm: FOV diameter of the labels [mm]. The networks work in FOV-normalised polar
                coordinates; a FOV different from the training FOV (``config.fov_mm``) is
                accepted, but tissue texture then keeps its training scale per FOV fraction.

        Returns:
            dict with ``mean`` and ``image`` ``(B, 1, N, N)`` float in [0, 1] (0 outside the FOV),
            ``z1 (B, d1)``, ``z2 (B, d2)`` (the codes used) and ``style`` (see :meth:`render_polar`).
        """
        if not fov_mm > 0:
            raise IvusSimError(f"fov_mm must be positive, got {fov_mm}")
        lab = torch.from_numpy(validate_labels(labels, "labels"))  # the one label rule -> uint8 (B, N, N)
        b, n = lab.shape[0], lab.shape[-1]
        a, s = self.polar_shape
        lab_p = cart_to_polar(lab.to(torch.uint8).cpu(), a, s, Interp.NEAREST)
        assert isinstance(lab_p, torch.Tensor)
        lab_p = lab_p.to(self.device)
        z1t = self._check_code(z1, b, self.config.z1_dim, "z1", generator)
        z2t = self._check_code(z2, b, self.config.z2_dim, "z2", generator)
        noise = self.noise(b, generator)
        was_training = self.training
        self.eval()
        try:
            out = self.render_polar(lab_p, z1t, z2t, noise)
        finally:
            self.train(was_training)
        mean = polar_to_cart(out["mean"].float(), n, Interp.BILINEAR, 0.0)
        image = polar_to_cart(out["image"].float(), n, self.config.scan_conversion, 0.0)
        assert isinstance(mean, torch.Tensor) and isinstance(image, torch.Tensor)
        return {"mean": mean.clamp(0, 1), "image": image.clamp(0, 1), "z1": z1t, "z2": z2t, "style": out["style"]}
