"""Classifier two-sample test (C2ST): can a small CNN tell simulated patches from real ones?

Lopez-Paz & Oquab, "Revisiting classifier two-sample tests", ICLR 2017. A small CNN
(:class:`monai.networks.nets.Classifier`) is trained to separate real from simulated polar
patches (:mod:`ivus_sim.metrics.patches`), k-fold cross-validated with the folds split *by
frame* (all patches of a frame, and of real and simulated frames of the same name, are in the
same fold, so the classifier cannot match a test patch to its neighbours in training). From
the out-of-fold scores:

* ``accuracy`` with a Wilson 95 % interval (patches treated as independent, which is
  optimistic as patches of one frame correlate) and a frame-level bootstrap interval;
* ``auc`` (mean of the per-fold ROC AUCs, Mann-Whitney form) with a frame-level bootstrap
  interval (frames resampled with replacement within each fold and class).

0.5 means indistinguishable; 1.0 means trivially told apart. The simulated patches the
classifier found most "fake" are returned for the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata
from statsmodels.stats.proportion import proportion_confint

from ivus_sim.errors import IvusSimError
from ivus_sim.metrics.patches import Patches
from ivus_sim.seeding import derive_seed, rng

__all__ = ["C2STConfig", "C2STResult", "assign_folds", "roc_auc", "classifier_two_sample_test"]


@dataclass(frozen=True)
class C2STConfig:
    """Classifier and cross-validation settings.

    Args:
        folds: number of cross-validation folds (reduced to the number of frames when fewer).
        epochs: training epochs per fold.
        batch_size: minibatch size.
        lr: Adam learning rate.
        channels: CNN channels per stage (each stage halves the patch side).
        n_bootstrap: bootstrap resamples for the frame-level intervals.
        n_most_fake: how many most-"fake" simulated patches to return.
        device: torch device.
    """

    folds: int = 4
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    channels: tuple[int, ...] = (8, 16, 32)
    n_bootstrap: int = 500
    n_most_fake: int = 16
    device: str = "cpu"


@dataclass
class C2STResult:
    """Outcome of the test (label 1 = simulated; scores are out-of-fold logits of "simulated" minus the
    fold's decision threshold, the median training score)."""

    accuracy: float
    accuracy_ci_wilson: tuple[float, float]
    accuracy_ci_bootstrap: tuple[float, float]
    auc: float
    auc_ci_bootstrap: tuple[float, float]
    fold_accuracy: list[float]
    fold_auc: list[float]
    n_real: int
    n_fake: int
    folds: int
    most_fake: np.ndarray = field(repr=False)
    most_fake_info: list[dict[str, Any]] = field(default_factory=list)

    @property
    def distinguishable(self) -> bool:
        """True when the Wilson interval of the accuracy lies above 0.5."""
        return self.accuracy_ci_wilson[0] > 0.5

    def to_dict(self) -> dict[str, Any]:
        """Every number (patch pixels left out)."""
        return {
            "accuracy": self.accuracy,
            "accuracy_ci_wilson": list(self.accuracy_ci_wilson),
            "accuracy_ci_bootstrap": list(self.accuracy_ci_bootstrap),
            "auc": self.auc,
            "auc_ci_bootstrap": list(self.auc_ci_bootstrap),
            "fold_accuracy": self.fold_accuracy,
            "fold_auc": self.fold_auc,
            "patches_real": self.n_real,
            "patches_fake": self.n_fake,
            "folds": self.folds,
            "distinguishable": self.distinguishable,
            "most_fake": self.most_fake_info,
        }


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of ``scores`` for ``labels == 1`` (Mann-Whitney form, ties count half)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("AUC needs both classes")
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def assign_folds(real_names: list[str], fake_names: list[str], folds: int, seed: int) -> tuple[dict[str, int],
                                                                                                 dict[str, int]]:
    """Fold of every frame: real and simulated frames of the same name share a fold.

    Returns:
        (real name -> fold, fake name -> fold), each set spread round-robin over the folds in a
        seeded random order.
    """
    g = rng(seed, "c2st", "folds")
    real_fold = {n: i % folds for i, n in enumerate(g.permutation(sorted(set(real_names))).tolist())}
    fake_fold: dict[str, int] = {}
    unpaired = [n for n in sorted(set(fake_names)) if n not in real_fold]
    for n in fake_names:
        if n in real_fold:
            fake_fold[n] = real_fold[n]
    counts = np.bincount(list(fake_fold.values()), minlength=folds) if fake_fold else np.zeros(folds, int)
    for n in g.permutation(unpaired).tolist() if unpaired else []:
        k = int(np.argmin(counts))
        fake_fold[n] = k
        counts[k] += 1
    return real_fold, fake_fold


def _make_net(patch: int, config: C2STConfig) -> Any:
    from monai.networks.nets import Classifier

    return Classifier(in_shape=(1, patch, patch), classes=1, channels=config.channels,
                      strides=(2,) * len(config.channels), num_res_units=0, act="RELU", norm="BATCH")


def _train_and_score(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, config: C2STConfig,
                     seed: int) -> np.ndarray:
    import torch
    from torch import nn

    dev = torch.device(config.device)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(derive_seed(seed, "init"))
        net = _make_net(x_tr.shape[-1], config).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    g = rng(seed, "batches")
    xt = torch.from_numpy(x_tr[:, None]).to(dev)
    yt = torch.from_numpy(y_tr.astype(np.float32)).to(dev)
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(config.epochs):
        perm = g.permutation(len(xt))
        for i in range(0, len(perm), config.batch_size):
            b = torch.from_numpy(perm[i:i + config.batch_size]).to(dev)
            if len(b) < 2:
                continue
            xb = xt[b]
            if g.random() < 0.5:  # the angle direction carries no anatomy: flip for augmentation
                xb = xb.flip(-2)
            loss = loss_fn(net(xb).reshape(-1), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()

    def score(x: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            xe = torch.from_numpy(x[:, None]).to(dev)
            for i in range(0, len(xe), 256):
                out.append(net(xe[i:i + 256]).reshape(-1).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    # decision threshold: the median training score (classes are balanced), which is robust to
    # the offset batch-norm running statistics give a briefly trained network in eval mode
    return score(x_te) - float(np.median(score(x_tr)))


def classifier_two_sample_test(real: Patches, fake: Patches, config: C2STConfig | None = None, seed: int = 0,
                               progress: Any = None) -> C2STResult:
    """Run the cross-validated classifier two-sample test.

    Args:
        real: real patches.
        fake: simulated patches (the larger set is subsampled to the size of the smaller).
        config: classifier settings.
        seed: run seed (fold assignment, subsampling, initialisation, batches, bootstrap).
        progress: optional tqdm bar, advanced once per fold.

    Returns:
        :class:`C2STResult`.
    """
    cfg = config or C2STConfig()
    n_real_frames, n_fake_frames = len(set(real.names)), len(set(fake.names))
    if min(n_real_frames, n_fake_frames) < 2:
        raise IvusSimError("the classifier test needs at least 2 frames in each set (folds are split by frame)")
    folds = min(cfg.folds, n_real_frames, n_fake_frames)
    n = min(len(real), len(fake))
    g = rng(seed, "c2st", "balance")
    real = real.subset(np.sort(g.choice(len(real), n, replace=False)))
    fake = fake.subset(np.sort(g.choice(len(fake), n, replace=False)))
    real_fold, fake_fold = assign_folds(real.names, fake.names, folds, seed)
    x = np.concatenate([real.data, fake.data])
    y = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    fold = np.concatenate([[real_fold[real.names[f]] for f in real.frame],
                           [fake_fold[fake.names[f]] for f in fake.frame]]).astype(np.int64)
    group = np.concatenate([real.frame, fake.frame + len(real.names)])  # frame id unique across sets
    scores = np.zeros(len(x))
    for k in range(folds):
        te = fold == k
        tr = ~te
        if len(np.unique(y[te])) < 2 or len(np.unique(y[tr])) < 2:
            raise IvusSimError(f"fold {k} lacks real or simulated frames; use more frames or fewer --folds")
        scores[te] = _train_and_score(x[tr], y[tr], x[te], cfg, derive_seed(seed, "c2st", "fold", k))
        if progress is not None:
            progress.update(1)
    correct = (scores > 0) == (y == 1)
    acc = float(correct.mean())
    lo, hi = proportion_confint(int(correct.sum()), len(correct), alpha=0.05, method="wilson")
    fold_acc = [float(correct[fold == k].mean()) for k in range(folds)]
    fold_auc = [roc_auc(scores[fold == k], y[fold == k]) for k in range(folds)]
    acc_ci, auc_ci = _bootstrap(scores, y, fold, group, correct, folds, cfg.n_bootstrap, seed)
    # most "fake": rank within each fold's test set (fold models' score scales differ)
    pct = np.zeros(len(x))
    for k in range(folds):
        sel = fold == k
        pct[sel] = rankdata(scores[sel]) / sel.sum()
    fake_idx = np.nonzero(y == 1)[0]
    top = fake_idx[np.lexsort((-scores[fake_idx], -pct[fake_idx]))[: cfg.n_most_fake]]
    info = [{"frame": fake.names[int(fake.frame[i - n])], "angle": int(fake.corner[i - n, 0]),
             "depth": int(fake.corner[i - n, 1]), "score_fake": float(scores[i]),
             "fold_percentile": float(pct[i])} for i in top]
    return C2STResult(
        accuracy=acc, accuracy_ci_wilson=(float(lo), float(hi)), accuracy_ci_bootstrap=acc_ci,
        auc=float(np.mean(fold_auc)), auc_ci_bootstrap=auc_ci, fold_accuracy=fold_acc, fold_auc=fold_auc,
        n_real=n, n_fake=n, folds=folds, most_fake=x[top], most_fake_info=info,
    )


def _bootstrap(scores: np.ndarray, y: np.ndarray, fold: np.ndarray, group: np.ndarray, correct: np.ndarray,
               folds: int, n_boot: int, seed: int) -> tuple[tuple[float, float], tuple[float, float]]:
    g = rng(seed, "c2st", "bootstrap")
    # index lists of each frame, per fold and class
    cells: list[list[list[np.ndarray]]] = []
    for k in range(folds):
        per_class = []
        for c in (0, 1):
            sel = (fold == k) & (y == c)
            per_class.append([np.nonzero(sel & (group == fr))[0] for fr in np.unique(group[sel])])
        cells.append(per_class)
    accs, aucs = [], []
    for _ in range(n_boot):
        fold_aucs, idx_all = [], []
        for k in range(folds):
            idx_k = []
            for c in (0, 1):
                frames = cells[k][c]
                pick = g.integers(0, len(frames), len(frames))
                idx_k.append(np.concatenate([frames[i] for i in pick]))
            ik = np.concatenate(idx_k)
            idx_all.append(ik)
            fold_aucs.append(roc_auc(scores[ik], y[ik]))
        aucs.append(np.mean(fold_aucs))
        accs.append(correct[np.concatenate(idx_all)].mean())
    q = (2.5, 97.5)
    a_lo, a_hi = np.percentile(accs, q)
    u_lo, u_hi = np.percentile(aucs, q)
    return (float(a_lo), float(a_hi)), (float(u_lo), float(u_hi))
