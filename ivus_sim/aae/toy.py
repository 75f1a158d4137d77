"""A small unconditional adversarial autoencoder for teaching (2-D latent, polar IVUS patches).

The principle of the adversarial autoencoder (AAE; Makhzani et al., "Adversarial
Autoencoders", arXiv 1511.05644), reduced to what fits on a CPU in seconds and built from the
project's own parts (:class:`~ivus_sim.aae.encoder.Encoder`,
:class:`~ivus_sim.aae.latent_discriminator.LatentDiscriminator`, :class:`~ivus_sim.aae.priors.Prior`,
:class:`~ivus_sim.aae.layers.PolarConv2d`). Every minibatch runs two phases, in this order:

1. **reconstruction**: encoder and decoder minimise the L1 error of ``decoder(encoder(x))``;
2. **regularisation** (skipped when ``adversarial=False``, which gives a plain autoencoder):
   the latent discriminator learns to tell prior samples (real) from encoder codes (fake), then
   the encoder is updated to fool it. The aggregated posterior ``q(z)`` is pushed onto the prior
   ``p(z)``, so that decoding ``z ~ p(z)`` gives plausible images and the latent space has no holes.

The data are *polar patches* of stage-0 physics images of random phantoms
(:func:`ivus_sim.physics.patches.physics_patches`; this module holds the networks only):
``patch_angles`` neighbouring A-lines x the depth axis, so a patch shows one sector of catheter,
lumen, wall and perivascular tissue (and shadows behind calcium). :func:`prior_gap_fraction`
measures holes (the share of prior samples with no code nearby) and
:func:`ivus_sim.metrics.features.mmd_unbiased` the mismatch of codes and prior.

Randomness: model initialisation, minibatch order and prior draws come from
``ivus_sim.seeding`` streams of ``config.seed``; the same config and data give the same model.

>>> import torch
>>> x = torch.rand(16, 1, 16, 16)
>>> model, hist = train_toy_aae(x, ToyAAEConfig(epochs=1, batch_size=8, channels=(4, 8), disc_hidden=8))
>>> model.encode(x).shape, len(hist.reconstruction)
(torch.Size([16, 2]), 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ivus_sim.aae.encoder import Encoder
from ivus_sim.aae.latent_discriminator import (
    LatentDiscriminator,
    encoder_regularisation_loss,
    latent_discriminator_loss,
)
from ivus_sim.aae.layers import PolarConv2d
from ivus_sim.aae.priors import Prior
from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import derive_seed, torch_generator

__all__ = [
    "ToyAAEConfig",
    "ToyDecoder",
    "ToyAAE",
    "ToyHistory",
    "train_toy_aae",
    "encode_all",
    "decode_grid",
    "sample_images",
    "prior_gap_fraction",
]


@dataclass(frozen=True)
class ToyAAEConfig:
    """Settings of :func:`train_toy_aae`.

    Attributes:
        z_dim: latent size (2 lets you plot the latent space).
        prior: the prior ``p(z)`` the codes are matched to.
        adversarial: run the regularisation phase (False: a plain autoencoder, same networks).
        channels: encoder channels per stride-2 stage (decoder mirrors them); the patch sides
            must be divisible by ``2 ** len(channels)``.
        disc_hidden: hidden width of the latent discriminator.
        epochs: passes over the data. batch_size: patches per minibatch (the adversarial game
            needs steps: the defaults take ~1,800 minibatches on ~400 patches, ~20 s on one CPU thread).
        lr: Adam learning rate of the reconstruction phase.
        lr_discriminator: Adam learning rate of the latent discriminator.
        lr_regularisation: Adam learning rate of the encoder's regularisation (adversarial) step.
        seed: drives initialisation, minibatch order and prior draws.
        snapshot_epochs: after which epochs to record the codes of the first ``n_probe`` patches
            (0 = before training) in :attr:`ToyHistory.snapshots`.
        n_probe: patches encoded for each snapshot.
    """

    z_dim: int = 2
    prior: Prior = Prior.GAUSSIAN
    adversarial: bool = True
    channels: tuple[int, ...] = (8, 16)
    disc_hidden: int = 32
    epochs: int = 150
    batch_size: int = 32
    lr: float = 1e-3
    lr_discriminator: float = 1e-3
    lr_regularisation: float = 5e-4
    seed: int = 0
    snapshot_epochs: tuple[int, ...] = ()
    n_probe: int = 512

    def check(self, shape: Sequence[int]) -> None:
        """Raise :class:`IvusSimError` when the settings do not fit images of ``shape`` ``(N, 1, A, S)``."""
        if len(shape) != 4 or shape[1] != 1:
            raise IvusSimError(f"images must be (N, 1, A, S), got shape {tuple(shape)}")
        f = 2 ** len(self.channels)
        if shape[2] % f or shape[3] % f:
            raise IvusSimError(f"patch sides {tuple(shape[2:])} must be divisible by 2**len(channels) = {f}")
        if self.z_dim < 1 or self.epochs < 0 or self.batch_size < 1 or not self.channels:
            raise IvusSimError("z_dim and batch_size must be >= 1, epochs >= 0, channels non-empty")


class ToyDecoder(nn.Module):
    """Decoder ``z -> image``: a linear map to a coarse grid, then upsampling polar convolutions.

    Args:
        z_dim: latent size.
        out_shape: ``(A, S)`` of the output patch.
        channels: channels from the finest to the coarsest stage (the encoder's ``channels``).

    Shapes: ``z (B, z_dim)`` -> ``x (B, 1, A, S)`` in ``[0, 1]`` (sigmoid).
    """

    def __init__(self, z_dim: int, out_shape: tuple[int, int], channels: Sequence[int] = (8, 16)) -> None:
        super().__init__()
        f = 2 ** len(channels)
        self.coarse = (channels[-1], out_shape[0] // f, out_shape[1] // f)
        self.head = nn.Linear(z_dim, math.prod(self.coarse))
        layers: list[nn.Module] = []
        rev = list(channels)[::-1]
        for c_in, c_out in zip(rev, [*rev[1:], rev[-1]]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), PolarConv2d(c_in, c_out, 3),
                       nn.GroupNorm(math.gcd(8, c_out), c_out), nn.LeakyReLU(0.2)]
        layers.append(PolarConv2d(rev[-1], 1, 3))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.head(z), 0.2).view(-1, *self.coarse)
        return torch.sigmoid(self.net(h))


class ToyAAE(nn.Module):
    """Encoder, decoder and latent discriminator of the toy AAE.

    Args:
        out_shape: ``(A, S)`` of the patches.
        z_dim: latent size. channels: encoder/decoder channels. disc_hidden: discriminator width.
        prior: the prior ``p(z)`` (used by :meth:`sample`).
    """

    def __init__(self, out_shape: tuple[int, int], z_dim: int = 2, channels: Sequence[int] = (8, 16),
                 disc_hidden: int = 32, prior: Prior = Prior.GAUSSIAN) -> None:
        super().__init__()
        self.encoder = Encoder(1, z_dim=z_dim, channels=channels)
        self.decoder = ToyDecoder(z_dim, out_shape, channels)
        self.discriminator = LatentDiscriminator(z_dim, hidden=disc_hidden)
        self.prior = Prior(prior)
        self.z_dim = z_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, A, S)`` -> codes ``(B, z_dim)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, z_dim)`` -> images ``(B, 1, A, S)``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@dataclass
class ToyHistory:
    """Per-epoch mean losses and code snapshots of :func:`train_toy_aae`.

    Attributes:
        reconstruction: L1 reconstruction loss per epoch.
        discriminator: latent discriminator BCE per epoch (``log 2 ~ 0.693`` at equilibrium; empty
            for a plain autoencoder).
        regularisation: the encoder's adversarial loss per epoch (empty for a plain autoencoder).
        snapshots: epoch -> codes ``(n_probe, z_dim)`` of the first ``n_probe`` patches.
    """

    reconstruction: list[float] = field(default_factory=list)
    discriminator: list[float] = field(default_factory=list)
    regularisation: list[float] = field(default_factory=list)
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)


@torch.no_grad()
def encode_all(model: ToyAAE, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Codes ``(N, z_dim)`` float32 of ``images`` ``(N, 1, A, S)`` (eval mode, no gradients)."""
    was = model.training
    model.eval()
    out = [model.encode(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    model.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, model.z_dim), np.float32)


def train_toy_aae(images: torch.Tensor, config: ToyAAEConfig | None = None, *,
                  progress: bool = False) -> tuple[ToyAAE, ToyHistory]:
    """Train the toy (adversarial) autoencoder on ``images``.

    Args:
        images: ``(N, 1, A, S)`` float patches in ``[0, 1]``.
        config: :class:`ToyAAEConfig` (default: Gaussian prior, adversarial).
        progress: show a tqdm bar over epochs.

    Returns:
        ``(model, history)``; the model is in eval mode.

    Raises:
        IvusSimError: images of the wrong shape for the settings, or not finite.
    """
    from tqdm import tqdm

    cfg = config or ToyAAEConfig()
    x_all = torch.as_tensor(images, dtype=torch.float32)
    cfg.check(tuple(x_all.shape))
    if not torch.isfinite(x_all).all():
        raise IvusSimError("images contain NaN or inf")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "aae-toy", "init"))
        model = ToyAAE((x_all.shape[2], x_all.shape[3]), cfg.z_dim, cfg.channels, cfg.disc_hidden, cfg.prior)
    opt_ae = torch.optim.Adam([*model.encoder.parameters(), *model.decoder.parameters()], lr=cfg.lr)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=cfg.lr_discriminator, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam(model.encoder.parameters(), lr=cfg.lr_regularisation, betas=(0.5, 0.9))
    g_order = torch_generator(cfg.seed, "aae-toy", "order")
    g_prior = torch_generator(cfg.seed, "aae-toy", "prior")
    probe = x_all[: cfg.n_probe]
    hist = ToyHistory()
    if 0 in cfg.snapshot_epochs:
        hist.snapshots[0] = encode_all(model, probe)
    n = len(x_all)
    for epoch in tqdm(range(1, cfg.epochs + 1), desc="aae-toy", unit="epoch", disable=not progress):
        model.train()
        sums = np.zeros(3)
        steps = 0
        for idx in torch.randperm(n, generator=g_order).split(cfg.batch_size):
            x = x_all[idx]
            # 1. reconstruction phase: encoder + decoder
            rec = F.l1_loss(model(x), x)
            opt_ae.zero_grad(set_to_none=True)
            rec.backward()
            opt_ae.step()
            sums[0] += rec.item()
            if cfg.adversarial:
                # 2a. regularisation phase, discriminator: prior samples real, codes fake
                z_prior = model.prior.sample(len(x), cfg.z_dim, generator=g_prior)
                with torch.no_grad():
                    z_fake = model.encode(x)
                d_loss = latent_discriminator_loss(model.discriminator(z_prior), model.discriminator(z_fake))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                # 2b. regularisation phase, encoder as generator: make codes look like prior samples
                g_loss = encoder_regularisation_loss(model.discriminator(model.encode(x)))
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                sums[1:] += (d_loss.item(), g_loss.item())
            steps += 1
        hist.reconstruction.append(sums[0] / steps)
        if cfg.adversarial:
            hist.discriminator.append(sums[1] / steps)
            hist.regularisation.append(sums[2] / steps)
        if epoch in cfg.snapshot_epochs:
            hist.snapshots[epoch] = encode_all(model, probe)
    model.eval()
    return model, hist


@torch.no_grad()
def decode_grid(model: ToyAAE, lim: float = 2.5, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Decode a regular ``n x n`` grid of 2-D codes over ``[-lim, lim]^2`` (the latent manifold).

    Returns:
        ``(images, axis)``: ``images (n, n, A, S)`` with row ``i`` at ``z[1] = axis[::-1][i]``
        (top row = largest ``z[1]``) and column ``j`` at ``z[0] = axis[j]``; ``axis (n,)``.
    """
    if model.z_dim != 2:
        raise IvusSimError(f"decode_grid needs a 2-D latent, the model has z_dim={model.z_dim}")
    axis = np.linspace(-lim, lim, n)
    zz = torch.tensor([[a, b] for b in axis[::-1] for a in axis], dtype=torch.float32)
    img = model.decode(zz)[:, 0].numpy()
    return img.reshape(n, n, *img.shape[-2:]), axis


@torch.no_grad()
def sample_images(model: ToyAAE, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``n`` codes drawn from the model's prior: ``(images (n, A, S), codes (n, z_dim))``."""
    z = model.prior.sample(n, model.z_dim, generator=torch_generator(seed, "aae-toy", "sample"))
    return model.decode(z)[:, 0].numpy(), z.numpy()


def prior_gap_fraction(codes: np.ndarray, prior_samples: np.ndarray, radius: float = 0.25) -> float:
    """Share of prior samples with no code within ``radius`` (Euclidean, latent units).

    A decoder has only learnt to decode where codes lie; a prior sample far from every code falls
    in a *hole* of the latent space and decodes to something never seen in training. For codes
    that cover the prior densely the share is small; it tends to 1 when the codes occupy a region
    of different scale or shape.

    Args:
        codes: ``(n, d)`` encoder codes. prior_samples: ``(m, d)`` draws from the prior.
        radius: "nearby" distance.
    """
    c = torch.as_tensor(np.asarray(codes, np.float32))
    p = torch.as_tensor(np.asarray(prior_samples, np.float32))
    if c.ndim != 2 or p.ndim != 2 or c.shape[1] != p.shape[1] or not len(c) or not len(p):
        raise IvusSimError("codes and prior samples must be non-empty (n, d) arrays of the same d")
    nearest = torch.cat([torch.cdist(chunk, c).min(dim=1).values for chunk in p.split(1024)])
    return float((nearest > radius).float().mean())
