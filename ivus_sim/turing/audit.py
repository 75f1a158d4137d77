"""Leakage audit: can anything other than realism tell the real files from the simulated ones?

The audit looks at two sets of image files (real, simulated) the way a suspicious reader or
a curious browser could, and flags every *trivial* cue that separates them:

* **categorical facts** - file format, pixel mode / bit depth, dimensions, metadata (PNG
  ancillary chunks, EXIF, JFIF/ICC/comment fields): flagged when a value occurs in one class
  only (so it identifies its class). In ``strict`` mode (used on the study's own encoded
  files) every file must also share one format, one mode, one size and carry no metadata.
* **scalar facts** - file size in bytes and the intensity range inside the field of view
  (min, 1st percentile, mean, 99th percentile, max): each is used as a one-feature classifier;
  its rank AUC (Mann-Whitney U / n_real n_fake) is flagged when ``max(AUC, 1-AUC) >=
  auc_threshold`` **and** the two-sided Mann-Whitney p-value is below ``alpha``.
* **a simple classifier** - L2-regularised logistic regression on a 16-bin intensity
  histogram and an 8-band radial power spectrum (log power fraction per band of spatial
  frequency, a generator "fingerprint"), scored out-of-fold with stratified k-fold
  cross-validation (k = min(5, smallest class)); the out-of-fold scores are judged like a
  scalar fact (AUC and Mann-Whitney p; the p-value is approximate because out-of-fold scores
  are not independent).
* **a localised test** (``localised_difference``) - burnt-in overlays, a dark scan line, a
  marker in one class only: cues that live in a few pixels and vanish in whole-image
  statistics. Features per image (all inside the FOV disc): every pixel, 3x3 and 7x7 box
  means (strokes, small text), row and column means (horizontal/vertical lines), means over
  angular sectors about 1 px wide at the rim (radial scan lines) and over 1-px rings (ring
  artefacts). Each feature gets a two-sample t statistic (real vs simulated, pooled SD - a
  class-mean difference image standardised by the speckle); each family's maximum ``|t|`` is
  standardised by the mean and SD of its own permutation null (so the 50,000 pixels do not
  drown the 40 rows), and the largest standardised maximum is judged against its
  permutation null, from ``n_perm`` = 299 random permutations of the class labels (a
  permutation test over all features and families at once: the false-alarm rate is
  ``alpha`` whatever the image size; ``ivus_sim.seeding`` stream ``turing-audit-perm``). Flagged when that
  p-value is below ``alpha`` **and** the rank AUC of the single most different feature
  reaches ``auc_threshold`` (a consistent, visible cue - not a tiny systematic difference
  found with many images). Needs at least 3 images per class of one size (always true of a
  study's encoded images; a source audit of mixed sizes skips it). Measured false-alarm rate
  on same-source classes: see docs/reader-study.md ("Leakage audit").

The build runs the audit on its encoded output and refuses to produce a study when anything
is flagged (``--force`` overrides and the audit is recorded with the study). Defaults:
``auc_threshold=0.75``, ``alpha=0.01``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.turing.encode import load_grey, png_chunks

__all__ = [
    "CheckKind",
    "LeakageCheck",
    "LeakageAudit",
    "FileFacts",
    "file_facts",
    "pixel_features",
    "audit_files",
    "cross_validated_scores",
    "DEFAULT_AUC_THRESHOLD",
    "DEFAULT_ALPHA",
]

DEFAULT_AUC_THRESHOLD = 0.75
DEFAULT_ALPHA = 0.01

_BITS = {"1": 1, "L": 8, "P": 8, "LA": 16, "RGB": 24, "RGBA": 32, "CMYK": 32, "YCbCr": 24,
         "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}
_PNG_CRITICAL = {"IHDR", "IDAT", "IEND", "PLTE"}
N_HIST_BINS = 16
N_SPECTRUM_BANDS = 8


class CheckKind(str, Enum):
    """How a check decides."""

    CATEGORICAL = "categorical"
    SCALAR = "scalar"
    CLASSIFIER = "classifier"
    LOCALISED = "localised"


@dataclass
class LeakageCheck:
    """One audited cue.

    Attributes:
        name: the cue (``file_size``, ``metadata``, ``histogram_spectrum_classifier``...).
        kind: how it was judged.
        flagged: True when the cue separates the classes (or, strict mode, is not uniform).
        auc: rank AUC of "real" vs "simulated" for scalar/classifier checks (0.5 = no signal).
        p_value: two-sided Mann-Whitney p-value for scalar/classifier checks.
        detail: a one-line human explanation (values seen per class, or why skipped).
    """

    name: str
    kind: CheckKind
    flagged: bool
    auc: float | None = None
    p_value: float | None = None
    detail: str = ""


@dataclass
class LeakageAudit:
    """The result of :func:`audit_files`."""

    n_real: int
    n_fake: int
    auc_threshold: float
    alpha: float
    strict: bool
    checks: list[LeakageCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no check is flagged."""
        return not any(c.flagged for c in self.checks)

    @property
    def flagged(self) -> list[LeakageCheck]:
        return [c for c in self.checks if c.flagged]

    def summary(self) -> str:
        """One line naming the flagged cues (or saying the audit passed)."""
        if self.passed:
            return (f"leakage audit passed ({len(self.checks)} checks, {self.n_real} real / {self.n_fake} "
                    "simulated files)")
        parts = []
        for c in self.flagged:
            parts.append(f"{c.name} (AUC {c.auc:.2f})" if c.auc is not None else f"{c.name} ({c.detail})")
        return "leakage audit failed: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        for c in d["checks"]:
            c["kind"] = CheckKind(c["kind"]).value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LeakageAudit:
        checks = [LeakageCheck(name=c["name"], kind=CheckKind(c["kind"]), flagged=bool(c["flagged"]),
                               auc=c.get("auc"), p_value=c.get("p_value"), detail=c.get("detail", ""))
                  for c in d.get("checks", [])]
        return cls(n_real=int(d["n_real"]), n_fake=int(d["n_fake"]), auc_threshold=float(d["auc_threshold"]),
                   alpha=float(d["alpha"]), strict=bool(d["strict"]), checks=checks)

    def write(self, path: str | Path) -> Path:
        """Write the audit as JSON (atomically)."""
        from ivus_sim.io import write_json

        return write_json(path, self.to_dict())


@dataclass(frozen=True)
class FileFacts:
    """What a browser or a reader could learn from one file without looking at anatomy."""

    size_bytes: int
    format: str
    mode: str
    bit_depth: int
    width: int
    height: int
    metadata: str  # sorted, comma-joined metadata keys / ancillary chunk types ('' = none)
    intensity: tuple[float, float, float, float, float]  # min, p1, mean, p99, max inside the FOV
    features: tuple[float, ...]  # histogram + spectrum features for the classifier
    pixels: np.ndarray | None = field(default=None, compare=False, repr=False)  # centre square, [0, 1] float32


def _metadata_keys(path: Path, data: bytes, im: Any) -> list[str]:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return sorted({c for c in png_chunks(data) if c not in _PNG_CRITICAL})
    keys = {str(k) for k in im.info if k not in ("progression", "progressive")}
    try:
        if len(im.getexif()):
            keys.add("exif")
    except Exception:
        keys.add("exif-unreadable")
    return sorted(keys)


def pixel_features(image: np.ndarray) -> tuple[tuple[float, float, float, float, float], np.ndarray]:
    """Intensity range and classifier features of a ``(H, W)`` grey image in [0, 1].

    The image is centre-cropped to a square and only pixels inside the FOV disc are used.

    Returns:
        ``(min, p1, mean, p99, max)`` and a ``(16 + 8,)`` feature vector: the normalised
        16-bin histogram on [0, 1] and log10 of the fraction of (mean-removed) spectral power
        in 8 equal bands of radial spatial frequency from 0 to 0.5 cycles/pixel.
    """
    from ivus_sim.geometry import fov_mask

    h, w = image.shape
    s = min(h, w)
    sq = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].astype(np.float64)
    mask = fov_mask(s)
    vals = sq[mask]
    p1, p99 = np.percentile(vals, [1.0, 99.0])
    rng_stats = (float(vals.min()), float(p1), float(vals.mean()), float(p99), float(vals.max()))
    hist = np.histogram(vals, bins=N_HIST_BINS, range=(0.0, 1.0))[0].astype(np.float64)
    hist /= max(hist.sum(), 1.0)
    centred = np.where(mask, sq - vals.mean(), 0.0)
    power = np.abs(np.fft.fft2(centred)) ** 2
    fy = np.fft.fftfreq(s)[:, None]
    fx = np.fft.fftfreq(s)[None, :]
    fr = np.hypot(fy, fx)
    bands = np.minimum((fr / 0.5 * N_SPECTRUM_BANDS).astype(int), N_SPECTRUM_BANDS - 1)
    band_power = np.bincount(bands.ravel(), weights=power.ravel(), minlength=N_SPECTRUM_BANDS)
    spec = np.log10(band_power / max(band_power.sum(), 1e-300) + 1e-12)
    return rng_stats, np.concatenate([hist, spec])


def file_facts(path: str | Path) -> FileFacts:
    """Collect the :class:`FileFacts` of one image file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    data = path.read_bytes()
    if path.suffix.lower() == ".npy":
        arr = np.load(path, allow_pickle=False)
        fmt, mode, bits, (h, w), meta = "NPY", str(arr.dtype), arr.dtype.itemsize * 8, arr.shape[:2], ""
    else:
        try:
            with Image.open(path) as im:
                fmt, mode = str(im.format), str(im.mode)
                bits = _BITS.get(mode, 0)
                w, h = im.size
                meta = ",".join(_metadata_keys(path, data, im))
        except (UnidentifiedImageError, OSError) as e:
            raise IvusSimError(f"{path}: cannot decode image ({e})") from None
    grey = load_grey(path)
    rng_stats, feats = pixel_features(grey)
    gh, gw = grey.shape
    s = min(gh, gw)
    square = np.asarray(grey[(gh - s) // 2:(gh - s) // 2 + s, (gw - s) // 2:(gw - s) // 2 + s], np.float32)
    return FileFacts(size_bytes=len(data), format=fmt, mode=mode, bit_depth=int(bits), width=int(w),
                     height=int(h), metadata=meta, intensity=rng_stats, features=tuple(float(v) for v in feats),
                     pixels=square)


def _rank_check(name: str, kind: CheckKind, real: np.ndarray, fake: np.ndarray, auc_threshold: float,
                alpha: float) -> LeakageCheck:
    from scipy.stats import mannwhitneyu

    if np.all(real == real[0]) and np.all(fake == real[0]):
        return LeakageCheck(name, kind, False, 0.5, 1.0, f"identical in every file ({real[0]:.6g})")
    u, p = mannwhitneyu(real, fake, alternative="two-sided")
    auc = float(u) / (len(real) * len(fake))
    sep = max(auc, 1.0 - auc)
    flagged = bool(sep >= auc_threshold and p < alpha)
    detail = (f"real median {np.median(real):.6g}, simulated median {np.median(fake):.6g}; "
              f"separation {sep:.2f} (threshold {auc_threshold:.2f}), p={p:.2g}")
    return LeakageCheck(name, kind, flagged, auc, float(p), detail)


def _categorical_check(name: str, real: list[str], fake: list[str], strict: bool,
                       must_be_empty: bool = False) -> LeakageCheck:
    sr, sf = set(real), set(fake)
    only_r, only_f = sorted(sr - sf), sorted(sf - sr)
    reasons = []
    if only_r:
        reasons.append(f"only real: {', '.join(v or '<none>' for v in only_r)}")
    if only_f:
        reasons.append(f"only simulated: {', '.join(v or '<none>' for v in only_f)}")
    if strict and len(sr | sf) > 1:
        reasons.append(f"not uniform: {', '.join(sorted(v or '<none>' for v in sr | sf))}")
    if strict and must_be_empty and any(sr | sf):
        reasons.append(f"present: {', '.join(sorted(v for v in sr | sf if v))}")
    if reasons:
        return LeakageCheck(name, CheckKind.CATEGORICAL, True, detail="; ".join(reasons))
    shown = ", ".join(sorted(v or "<none>" for v in sr | sf))
    return LeakageCheck(name, CheckKind.CATEGORICAL, False, detail=f"same in both classes: {shown}")


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    xb = np.hstack([x, np.ones((len(x), 1))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = xb @ w
        # log(1 + e^z) - y z, numerically stable
        nll = np.sum(np.logaddexp(0.0, z) - y * z)
        grad = xb.T @ (1.0 / (1.0 + np.exp(-z)) - y)
        reg = 0.5 * l2 * np.sum(w[:-1] ** 2)
        return float(nll + reg), grad + l2 * np.concatenate([w[:-1], [0.0]])

    res = minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(res.x)


def cross_validated_scores(x: np.ndarray, y: np.ndarray, seed: int = 0, n_folds: int = 5,
                           l2: float = 1.0) -> np.ndarray:
    """Out-of-fold logistic-regression scores (linear predictor) with stratified k-fold CV.

    Args:
        x: ``(n, d)`` features. y: ``(n,)`` labels in {0, 1}.
        seed: drives the fold assignment (``ivus_sim.seeding`` stream ``turing-audit-cv``).
        n_folds: requested folds (reduced to the size of the smallest class).
        l2: ridge penalty on standardised features.

    Returns:
        ``(n,)`` scores, each predicted by a model that never saw that sample.
    """
    from ivus_sim.seeding import rng

    y = np.asarray(y, dtype=np.float64)
    k = int(min(n_folds, (y == 1).sum(), (y == 0).sum()))
    if k < 2:
        raise ValueError("need at least 2 samples per class for cross-validation")
    g = rng(seed, "turing-audit-cv")
    folds = np.empty(len(y), dtype=int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        folds[g.permutation(idx)] = np.arange(len(idx)) % k
    scores = np.empty(len(y))
    for f in range(k):
        tr, te = folds != f, folds == f
        mu, sd = x[tr].mean(0), x[tr].std(0)
        sd[sd < 1e-12] = 1.0
        w = _fit_logistic((x[tr] - mu) / sd, y[tr], l2)
        scores[te] = np.hstack([(x[te] - mu) / sd, np.ones((te.sum(), 1))]) @ w
    return scores


def _box_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over a ``k x k`` window (clipped at the border) of each image of ``(n, H, W)``."""
    _, h, w = x.shape
    c = np.cumsum(np.cumsum(np.pad(x, ((0, 0), (1, 0), (1, 0))), 1), 2)
    r = k // 2
    i0, i1 = np.clip(np.arange(h) - r, 0, h), np.clip(np.arange(h) + r + 1, 0, h)
    j0, j1 = np.clip(np.arange(w) - r, 0, w), np.clip(np.arange(w) + r + 1, 0, w)
    s = c[:, i1][:, :, j1] - c[:, i0][:, :, j1] - c[:, i1][:, :, j0] + c[:, i0][:, :, j0]
    return s / ((i1 - i0)[:, None] * (j1 - j0)[None, :])


def localised_features(x: np.ndarray) -> dict[str, np.ndarray]:
    """Feature families of ``(n, S, S)`` square images for :func:`localised_check` (``name -> (n, d)``)."""
    from ivus_sim.geometry import fov_mask

    n, s, _ = x.shape
    mask = fov_mask(s).ravel()
    yy, xx = np.mgrid[:s, :s]
    c = (s - 1) / 2
    n_sec = max(32, int(np.pi * s))  # sectors about 1 px wide at the rim
    sector = ((np.arctan2(yy - c, xx - c) + np.pi) / (2 * np.pi) * n_sec).astype(int) % n_sec
    ring = np.hypot(yy - c, xx - c).astype(int)
    flat = x.reshape(n, -1)[:, mask]

    def grouped(label: np.ndarray) -> np.ndarray:
        lab = label.ravel()[mask]
        cnt = np.bincount(lab)
        onehot = np.zeros((len(lab), len(cnt)), np.float32)
        onehot[np.arange(len(lab)), lab] = 1.0
        return (flat @ onehot)[:, cnt > 0] / cnt[cnt > 0]

    return {"pixel": flat, "box3": _box_mean(x, 3).reshape(n, -1)[:, mask],
            "box7": _box_mean(x, 7).reshape(n, -1)[:, mask], "row": grouped(yy), "column": grouped(xx),
            "sector": grouped(sector), "ring": grouped(ring)}


def _abs_t(f: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``|t|`` (pooled SD) of every feature of ``f (n, d)`` for each label row of ``labels (B, n)``."""
    n = f.shape[0]
    n1 = labels.sum(1, keepdims=True)
    n0 = n - n1
    s_all, q_all = f.sum(0), (f * f).sum(0)
    s1, q1 = labels @ f, labels @ (f * f)
    s0, q0 = s_all - s1, q_all - q1
    m1, m0 = s1 / n1, s0 / n0
    ss = (q1 - s1 * m1) + (q0 - s0 * m0)
    sp = np.sqrt(np.maximum(ss / (n - 2), 1e-10))
    return np.abs(m1 - m0) / (sp * np.sqrt(1.0 / n1 + 1.0 / n0))


def localised_check(real: list[np.ndarray], fake: list[np.ndarray], *, auc_threshold: float = DEFAULT_AUC_THRESHOLD,
                    alpha: float = DEFAULT_ALPHA, seed: int = 0, n_perm: int = 299) -> LeakageCheck:
    """The localised class-difference test (see the module docstring)."""
    from scipy.stats import mannwhitneyu

    from ivus_sim.seeding import rng

    name = "localised_difference"
    if min(len(real), len(fake)) < 3:
        return LeakageCheck(name, CheckKind.LOCALISED, False, detail="skipped: fewer than 3 files in a class")
    if len({a.shape for a in real + fake}) != 1:
        return LeakageCheck(name, CheckKind.LOCALISED, False, detail="skipped: the images differ in size")
    x = np.stack(real + fake).astype(np.float32)
    y = np.r_[np.ones(len(real)), np.zeros(len(fake))].astype(np.float32)
    g = rng(seed, "turing-audit-perm")
    labels = np.stack([y] + [g.permutation(y) for _ in range(n_perm)])
    feats = localised_features(x)
    fam_z = []  # per family: its max |t| standardised by the permutation null of that family
    obs: dict[str, tuple[float, int]] = {}
    for fam, f in feats.items():
        t = _abs_t(f, labels)
        mx = t.max(1)
        obs[fam] = (float(mx[0]), int(t[0].argmax()))
        fam_z.append((mx - mx[1:].mean()) / max(float(mx[1:].std()), 1e-12))
    # the largest standardised family maximum, judged against its permutation null
    zz = np.stack(fam_z)
    top = zz.max(0)
    p = float((top[1:] >= top[0]).sum() + 1) / (n_perm + 1)
    fam = list(feats)[int(zz[:, 0].argmax())]
    where = (fam, obs[fam][1])
    v = feats[where[0]][:, where[1]]
    u, _ = mannwhitneyu(v[y == 1], v[y == 0], alternative="two-sided")
    auc = float(u) / (len(real) * len(fake))
    sep = max(auc, 1.0 - auc)
    flagged = bool(p < alpha and sep >= auc_threshold)
    detail = (f"max |t| {obs[fam][0]:.2f} ({fam} feature {where[1]}), permutation p={p:.3g} (largest "
              f"standardised maximum of {len(feats)} feature families, {n_perm} permutations); that feature "
              f"separates the classes at {sep:.2f} (threshold {auc_threshold:.2f})")
    return LeakageCheck(name, CheckKind.LOCALISED, flagged, auc, p, detail)


def audit_facts(real: list[FileFacts], fake: list[FileFacts], *, auc_threshold: float = DEFAULT_AUC_THRESHOLD,
                alpha: float = DEFAULT_ALPHA, strict: bool = False, seed: int = 0) -> LeakageAudit:
    """Run every check on already-collected facts (see :func:`audit_files`)."""
    if not real or not fake:
        raise IvusSimError("the leakage audit needs at least one real and one simulated file")
    audit = LeakageAudit(n_real=len(real), n_fake=len(fake), auc_threshold=auc_threshold, alpha=alpha,
                         strict=strict)
    audit.checks.append(_categorical_check("format", [f.format for f in real], [f.format for f in fake], strict))
    audit.checks.append(_categorical_check("mode_bit_depth", [f"{f.mode}/{f.bit_depth}" for f in real],
                                           [f"{f.mode}/{f.bit_depth}" for f in fake], strict))
    audit.checks.append(_categorical_check("dimensions", [f"{f.width}x{f.height}" for f in real],
                                           [f"{f.width}x{f.height}" for f in fake], strict))
    audit.checks.append(_categorical_check("metadata", [f.metadata for f in real], [f.metadata for f in fake],
                                           strict, must_be_empty=True))
    audit.checks.append(_rank_check("file_size", CheckKind.SCALAR, np.array([f.size_bytes for f in real], float),
                                    np.array([f.size_bytes for f in fake], float), auc_threshold, alpha))
    for i, name in enumerate(("intensity_min", "intensity_p1", "intensity_mean", "intensity_p99", "intensity_max")):
        audit.checks.append(_rank_check(name, CheckKind.SCALAR, np.array([f.intensity[i] for f in real]),
                                        np.array([f.intensity[i] for f in fake]), auc_threshold, alpha))
    if min(len(real), len(fake)) >= 2:
        x = np.array([f.features for f in real + fake])
        y = np.r_[np.ones(len(real)), np.zeros(len(fake))]
        s = cross_validated_scores(x, y, seed=seed)
        audit.checks.append(_rank_check("histogram_spectrum_classifier", CheckKind.CLASSIFIER, s[y == 1], s[y == 0],
                                        auc_threshold, alpha))
    else:
        audit.checks.append(LeakageCheck("histogram_spectrum_classifier", CheckKind.CLASSIFIER, False,
                                         detail="skipped: fewer than 2 files in a class"))
    if all(f.pixels is not None for f in real + fake):
        audit.checks.append(localised_check([f.pixels for f in real if f.pixels is not None],
                                            [f.pixels for f in fake if f.pixels is not None],
                                            auc_threshold=auc_threshold, alpha=alpha, seed=seed))
    return audit


def audit_files(real: list[Path], fake: list[Path], *, auc_threshold: float = DEFAULT_AUC_THRESHOLD,
                alpha: float = DEFAULT_ALPHA, strict: bool = False, seed: int = 0) -> LeakageAudit:
    """Audit two sets of image files for cues that separate real from simulated.

    Args:
        real: paths of the real images. fake: paths of the simulated images.
        auc_threshold: separation ``max(AUC, 1-AUC)`` at or above which a scalar cue is flagged.
        alpha: significance a scalar/classifier cue must also reach (two-sided Mann-Whitney).
        strict: also require uniform format/mode/dimensions and no metadata at all (study output).
        seed: drives the cross-validation folds.

    Returns:
        :class:`LeakageAudit`; ``.passed`` is False when any cue separates the classes.

    >>> # audit = audit_files(sorted(Path("real").glob("*.png")), sorted(Path("sim").glob("*.png")))
    """
    return audit_facts([file_facts(p) for p in real], [file_facts(p) for p in fake],
                       auc_threshold=auc_threshold, alpha=alpha, strict=strict, seed=seed)


def audit_html(audit: LeakageAudit, title: str = "Leakage audit") -> str:
    """A small self-contained HTML table of the audit."""
    import html

    rows = []
    for c in audit.checks:
        auc = "" if c.auc is None else f"{c.auc:.3f}"
        p = "" if c.p_value is None else f"{c.p_value:.3g}"
        status = "FLAGGED" if c.flagged else "ok"
        rows.append(f"<tr class='{status.lower()}'><td>{html.escape(c.name)}</td><td>{c.kind.value}</td>"
                    f"<td>{status}</td><td>{auc}</td><td>{p}</td><td>{html.escape(c.detail)}</td></tr>")
    return (f"<h2>{html.escape(title)}</h2><p>{html.escape(audit.summary())}</p>"
            "<table><tr><th>cue</th><th>kind</th><th>status</th><th>AUC</th><th>p</th><th>detail</th></tr>"
            + "".join(rows) + "</table>")


def audit_to_json(audit: LeakageAudit) -> str:
    return json.dumps(audit.to_dict())
