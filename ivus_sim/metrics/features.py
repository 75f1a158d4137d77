"""Feature-space distances: Fréchet distance and kernel (KID / MMD) distance of patch embeddings.

The feature extractor: a small convolutional autoencoder trained, at evaluation time and from
a seed, on the pooled real and simulated polar patches of the run (:mod:`ivus_sim.metrics.patches`),
self-supervised (reconstruction loss); the embedding of a patch is the channel-wise mean and
standard deviation of the encoder's bottleneck (``2 x channels[-1]`` numbers), each dimension
standardised by the real patches' mean and std (distances in units of real variation). Why this one:

* it needs no download (Inception-v3 weights, the usual FID backbone, are trained on natural
  photographs, are not redistributable with the package, and are insensitive to speckle);
* it is trained on IVUS images of the very scanner, frequency and display settings being
  compared, on both sets equally, so neither set is privileged;
* it is independent of the model under test: scoring the learned simulator with its own
  stage-2 encoder would be circular (a model's encoder maps its own outputs well).

Real-vs-real reference values (the real frames split into two halves A and B by frame, equal
patch counts) are reported beside fake-vs-real (simulated patches, subsampled to the same count,
against the same half B), since both distances are biased upwards by finite samples and only
mean something relative to that floor. When simulated frames are paired with real ones by name
(made from their label maps), only those paired with half A are used, so both pairs compare the
same anatomy and only realism differs.

* Fréchet distance (Heusel et al., NeurIPS 2017): ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})``
  with :func:`scipy.linalg.sqrtm`.
* KID (Binkowski et al., ICLR 2018): unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets; ``mmd_linear``: unbiased MMD^2
  with the linear kernel (as :class:`monai.metrics.MMDMetric`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from scipy import linalg

from ivus_sim.errors import IvusSimError
from ivus_sim.metrics.patches import Patches
from ivus_sim.seeding import derive_seed, rng

__all__ = [
    "Kernel",
    "FeatureConfig",
    "build_autoencoder",
    "train_patch_encoder",
    "embed",
    "gaussian_stats",
    "frechet_distance",
    "mmd_unbiased",
    "kernel_inception_distance",
    "feature_distances",
]


class Kernel(str, Enum):
    """Kernel of the MMD estimate."""

    LINEAR = "linear"
    POLYNOMIAL = "polynomial"  # (x.y / d + 1)^3, as KID


@dataclass(frozen=True)
class FeatureConfig:
    """Feature extractor and distance settings.

    Args:
        channels: autoencoder channels per stage (each stage halves the patch side); the
            embedding has ``2 * channels[-1]`` dimensions.
        epochs: autoencoder training epochs.
        batch_size: minibatch size.
        lr: Adam learning rate.
        kid_subsets: random subsets averaged by KID.
        kid_subset_size: subset size (``None``: min(100, smaller set)).
        device: torch device.
    """

    channels: tuple[int, ...] = (16, 32, 16)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    kid_subsets: int = 50
    kid_subset_size: int | None = None
    device: str = "cpu"


def build_autoencoder(channels: tuple[int, ...]) -> tuple[Any, Any]:
    """Encoder and decoder (``torch.nn.Sequential`` of MONAI ``Convolution`` blocks) for 1-channel patches."""
    from monai.networks.blocks import Convolution
    from torch import nn

    enc: list[nn.Module] = []
    c_in = 1
    for i, c in enumerate(channels):
        last = i == len(channels) - 1
        enc.append(Convolution(2, c_in, c, strides=2, kernel_size=3, act="RELU", norm="BATCH", conv_only=last))
        c_in = c
    dec: list[nn.Module] = []
    for i, c in enumerate((*reversed(channels[:-1]), 1)):
        last = i == len(channels) - 1
        dec.append(Convolution(2, c_in, c, strides=2, kernel_size=3, act="RELU", norm="BATCH", conv_only=last,
                               is_transposed=True, output_padding=1))
        c_in = c
    return nn.Sequential(*enc), nn.Sequential(*dec)


def train_patch_encoder(patches: np.ndarray, config: FeatureConfig | None = None, seed: int = 0) -> Any:
    """Train the autoencoder on ``(P, p, p)`` patches in [0, 1]; return the encoder (eval mode).

    ``p`` must be divisible by ``2 ** len(channels)``.
    """
    import torch
    from torch import nn

    cfg = config or FeatureConfig()
    p = patches.shape[-1]
    if p % (2 ** len(cfg.channels)):
        raise IvusSimError(f"patch side {p} must be divisible by {2 ** len(cfg.channels)} for the feature encoder")
    dev = torch.device(cfg.device)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(derive_seed(seed, "features", "init"))
        enc, dec = build_autoencoder(cfg.channels)
    enc, dec = enc.to(dev), dec.to(dev)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=cfg.lr)
    x = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32)[:, None]).to(dev)
    g = rng(seed, "features", "batches")
    enc.train()
    dec.train()
    for _ in range(cfg.epochs):
        perm = g.permutation(len(x))
        for i in range(0, len(perm), cfg.batch_size):
            b = torch.from_numpy(perm[i:i + cfg.batch_size]).to(dev)
            if len(b) < 2:
                continue
            loss = nn.functional.mse_loss(dec(enc(x[b])), x[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return enc.eval()


def embed(encoder: Any, patches: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Embeddings ``(P, 2 C)``: channel-wise mean and std of the encoder bottleneck, float64."""
    import torch

    out = []
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32)[:, None])
        for i in range(0, len(x), 256):
            z = encoder(x[i:i + 256].to(device)).flatten(2)
            out.append(torch.cat([z.mean(-1), z.std(-1)], 1).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` of ``(n, d)`` features."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError("need an (n >= 2, d) feature array")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance between two Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``|mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^{1/2})``; when the product is
    near singular, ``eps`` is added to both diagonals (as the reference FID code).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean), 0.0))


def mmd_unbiased(x: np.ndarray, y: np.ndarray, kernel: Kernel = Kernel.POLYNOMIAL) -> float:
    """Unbiased MMD^2 estimate (Gretton et al., JMLR 2012, eq. 3) between ``(m, d)`` and ``(n, d)`` samples."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError("MMD needs at least two samples in each set")

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        dot = a @ b.T
        return dot if Kernel(kernel) == Kernel.LINEAR else (dot / a.shape[1] + 1.0) ** 3

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kernel_inception_distance(x: np.ndarray, y: np.ndarray, n_subsets: int = 50, subset_size: int | None = None,
                              seed: int = 0) -> tuple[float, float]:
    """KID: mean and std over random subsets of the polynomial-kernel unbiased MMD^2."""
    size = subset_size or min(100, len(x), len(y))
    size = min(size, len(x), len(y))
    g = rng(seed, "features", "kid")
    vals = [mmd_unbiased(x[g.choice(len(x), size, replace=False)], y[g.choice(len(y), size, replace=False)])
            for _ in range(n_subsets)]
    return float(np.mean(vals)), float(np.std(vals))


def _distances(a: np.ndarray, b: np.ndarray, cfg: FeatureConfig, seed: int) -> dict[str, float]:
    kid, kid_std = kernel_inception_distance(a, b, cfg.kid_subsets, cfg.kid_subset_size, seed)
    return {"frechet": frechet_distance(*gaussian_stats(a), *gaussian_stats(b)), "kid": kid, "kid_std": kid_std,
            "mmd_linear": mmd_unbiased(a, b, Kernel.LINEAR)}


def feature_distances(real: Patches, fake: Patches, config: FeatureConfig | None = None, seed: int = 0,
                      encoder: Any = None) -> dict[str, Any]:
    """Fréchet and kernel distances of simulated vs real patches, with a real-vs-real reference.

    Args:
        real: real patches (at least 2 frames, split into halves A and B by frame).
        fake: simulated patches.
        config: extractor and distance settings.
        seed: run seed.
        encoder: a trained encoder to use instead of training one (``module(x (B,1,p,p)) -> (B,C,h,w)``).

    Returns:
        ``{"fake_vs_real": {frechet, kid, kid_std, mmd_linear}, "real_vs_real": {...}, "frechet_ratio",
        "n_per_set", "paired", "dims", "extractor"}``; ``frechet_ratio`` = fake-vs-real / real-vs-real;
        ``paired``: simulated frames were matched to real half A by name.
    """
    cfg = config or FeatureConfig()
    frames = np.unique(real.frame)
    if frames.size < 2:
        raise IvusSimError("feature distances need at least 2 real frames (for the real-vs-real reference)")
    g = rng(seed, "features", "split")
    perm = g.permutation(frames)
    half_a = np.isin(real.frame, perm[: frames.size // 2])
    names_a = {real.names[int(f)] for f in perm[: frames.size // 2]}
    # simulated frames made from the label maps of half A (same name) face half B, exactly as real
    # half A does: both pairs then compare the same anatomy, and only realism differs
    fake_sel = np.array([fake.names[int(f)] in names_a for f in fake.frame], dtype=bool)
    paired = bool(fake_sel.any())
    if not paired:
        fake_sel[:] = True
    if encoder is None:
        encoder = train_patch_encoder(np.concatenate([real.data, fake.data]), cfg, seed)
    fr, ff = embed(encoder, real.data, cfg.device), embed(encoder, fake.data[fake_sel], cfg.device)
    # standardise every dimension by the real embeddings: distances in units of real variation
    loc, scale = fr.mean(0), np.maximum(fr.std(0), 1e-8)
    fr, ff = (fr - loc) / scale, (ff - loc) / scale
    a, b = fr[half_a], fr[~half_a]
    n = min(len(a), len(b), len(ff))
    a = a[np.sort(g.choice(len(a), n, replace=False))]
    b = b[np.sort(g.choice(len(b), n, replace=False))]
    f = ff[np.sort(g.choice(len(ff), n, replace=False))]
    rr = _distances(a, b, cfg, derive_seed(seed, "rr"))
    fk = _distances(f, b, cfg, derive_seed(seed, "fr"))
    return {
        "fake_vs_real": fk,
        "real_vs_real": rr,
        "frechet_ratio": fk["frechet"] / rr["frechet"] if rr["frechet"] > 0 else None,
        "n_per_set": int(n),
        "paired": paired,
        "dims": int(fr.shape[1]),
        "extractor": "convolutional autoencoder trained on the pooled real+simulated patches of this run "
                     f"(channels {list(cfg.channels)}, {cfg.epochs} epochs); embedding = bottleneck channel mean+std",
    }
