"""Build a reader study folder: pairs, neutralised images, leakage audit, schedules, database.

Layout of a study folder (nothing in it is served as a directory; the web app maps opaque
tokens to files itself)::

    STUDY/
      study.sqlite          answer key, schedules, reader tokens, answers, audit log (server only)
      chain-anchor.log      the audit-log head after every committed change (outside the database;
                            see ivus_sim.turing.store, "Integrity model")
      study.json            sidecar: every build parameter and source file hash (regenerates the
                            images and schedules; reader/trial tokens are fresh random secrets)
      leakage_audit.json    the audit of the encoded images (+ leakage_audit.html)
      images/<token>.png    the encoded images, named by 128-bit random tokens

The build happens in a hidden temporary folder that is renamed onto ``STUDY`` only when
everything succeeded: a failed audit leaves nothing behind (no study, no report beside it; the
error names the flagged cues, and ``--force`` builds and records the full audit).

Randomness: pairing, catch material, schedules and audit folds come from ``ivus_sim.seeding``
streams of the study seed. Reader link tokens, trial tokens, view tokens and file names come
from :mod:`secrets` on purpose: they must be unguessable even to someone holding the sidecar.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.io import write_json
from ivus_sim.seeding import rng
from ivus_sim.turing.audit import (
    DEFAULT_ALPHA,
    DEFAULT_AUC_THRESHOLD,
    LeakageAudit,
    audit_files,
    audit_html,
)
from ivus_sim.turing.encode import IMAGE_SUFFIXES, IntensityNorm, load_grey, neutralise, opaque_name, write_encoded
from ivus_sim.turing.modes import PLAN_META, StudyMode, StudyPlan, Truth, insert_reader
from ivus_sim.turing.pairing import PairingMode, make_pairs
from ivus_sim.turing.schedule import CatchItems
from ivus_sim.turing.store import DB_NAME, Store

__all__ = ["StudyConfig", "BuiltStudy", "build_study", "list_images", "reader_links", "read_text_file", "SIDECAR_NAME"]

SIDECAR_NAME = "study.json"
AUDIT_NAME = "leakage_audit"


@dataclass(frozen=True)
class StudyConfig:
    """Every parameter of a study build.

    Attributes:
        n_pairs: main pairs (``None``: as many as possible, see :func:`make_pairs`).
        n_readers: number of readers (ids ``R01``, ``R02``...) unless ``reader_ids`` is given.
        reader_ids: explicit reader ids (overrides ``n_readers``).
        seed: the study seed.
        n_catch: catch trials *of each kind* (obvious fake, real-vs-real, repeated swapped pair).
        size: side of the encoded images [pixels].
        block_size: trials per block (a break page between blocks).
        pairing: how simulated images are paired with real ones.
        intensity: display-range normalisation applied to every image.
        auc_threshold, alpha: leakage audit thresholds (see :mod:`ivus_sim.turing.audit`).
        force: build even when the leakage audit fails (the failure is recorded).
        mode: ``2afc`` (pairs side by side) or ``single`` (one frame at a time, real or
            simulated with a rating); see :mod:`ivus_sim.turing.modes`.
        n_practice: practice trials with feedback before the study (spare images; excluded
            from the analysis).
        consent_text, debrief_text: the consent page shown before the instructions and the
            debrief shown at the end (plain text, paragraphs separated by blank lines;
            ``None``: the built-in texts).
    """

    n_pairs: int | None = None
    n_readers: int = 3
    reader_ids: tuple[str, ...] | None = None
    seed: int = 0
    n_catch: int = 0
    size: int = 256
    block_size: int = 50
    pairing: PairingMode = PairingMode.AUTO
    intensity: IntensityNorm = IntensityNorm.NONE
    auc_threshold: float = DEFAULT_AUC_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    force: bool = False
    mode: StudyMode = StudyMode.TWO_AFC
    n_practice: int = 0
    consent_text: str | None = None
    debrief_text: str | None = None

    def ids(self) -> tuple[str, ...]:
        if self.reader_ids is not None:
            ids = tuple(self.reader_ids)
            if len(set(ids)) != len(ids) or not all(ids):
                raise IvusSimError("reader ids must be unique and non-empty")
            return ids
        if self.n_readers < 1:
            raise IvusSimError(f"--readers must be >= 1, got {self.n_readers}")
        width = max(2, len(str(self.n_readers)))
        return tuple(f"R{i + 1:0{width}d}" for i in range(self.n_readers))

    def to_dict(self) -> dict[str, Any]:
        return {"n_pairs": self.n_pairs, "reader_ids": list(self.ids()), "seed": self.seed, "n_catch": self.n_catch,
                "size": self.size, "block_size": self.block_size, "pairing": PairingMode(self.pairing).value,
                "intensity": IntensityNorm(self.intensity).value, "auc_threshold": self.auc_threshold,
                "alpha": self.alpha, "force": self.force, "mode": StudyMode(self.mode).value,
                "n_practice": self.n_practice, "consent_text": self.consent_text, "debrief_text": self.debrief_text}


@dataclass
class BuiltStudy:
    """What :func:`build_study` made."""

    path: Path
    audit: LeakageAudit
    source_audit: LeakageAudit
    readers: dict[str, str] = field(default_factory=dict)  # reader id -> link token
    n_trials: dict[str, int] = field(default_factory=dict)
    chain_head: str = ""  # audit-log head after the build (keep it outside the study: `turing analyze --anchor`)


def list_images(folder: str | Path) -> list[Path]:
    """Supported image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IvusSimError(f"{folder} is not a directory")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise IvusSimError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shuffle_inside_fov(image: np.ndarray, g: np.random.Generator) -> np.ndarray:
    from ivus_sim.geometry import fov_mask

    mask = fov_mask(image.shape[0])
    out = image.copy()
    vals = out[mask]
    out[mask] = vals[g.permutation(len(vals))]
    return out


def read_text_file(path: str | Path, limit: int = 20_000) -> str:
    """A consent or debrief text file (UTF-8, at most ``limit`` characters)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise IvusSimError(f"{path}: not UTF-8 text") from None
    if len(text) > limit:
        raise IvusSimError(f"{path}: longer than {limit} characters")
    if not text.strip():
        raise IvusSimError(f"{path}: empty")
    return text


def _practice_material(spare_real: list[Path], spare_fake: list[Path],
                       cfg: StudyConfig) -> tuple[list[Path], list[Path]]:
    """Practice images: spare real and simulated images used nowhere else (feedback reveals them)."""
    n = cfg.n_practice
    if not n:
        return [], []
    n_real, n_fake = (n, n) if StudyMode(cfg.mode) is StudyMode.TWO_AFC else ((n + 1) // 2, n // 2)
    if len(spare_real) < n_real or len(spare_fake) < n_fake:
        raise IvusSimError(f"--practice {n} needs {n_real} real and {n_fake} simulated images used nowhere else in "
                           f"the study (have {len(spare_real)} and {len(spare_fake)}); lower --pairs, --catch or "
                           "--practice")
    g = rng(cfg.seed, "turing-practice-material")
    return ([spare_real[int(i)] for i in g.permutation(len(spare_real))[:n_real]],
            [spare_fake[int(i)] for i in g.permutation(len(spare_fake))[:n_fake]])


def reader_links(study: str | Path, base_url: str = "http://127.0.0.1:8000") -> dict[str, str]:
    """``reader id -> link`` for a built study."""
    with Store(Path(study) / DB_NAME) as store:
        return {rid: f"{base_url.rstrip('/')}/r/{tok}" for rid, tok in store.readers()}


def build_study(real_dir: str | Path, fake_dir: str | Path, out: str | Path, config: StudyConfig | None = None, *,
                overwrite: bool = False, progress: bool = True) -> BuiltStudy:
    """Build a reader study from a folder of real and a folder of simulated images.

    Args:
        real_dir: folder of real images. fake_dir: folder of simulated images.
        out: the study folder to create.
        config: build parameters (:class:`StudyConfig`).
        overwrite: replace an existing study folder.
        progress: show a progress bar while encoding.

    Returns:
        :class:`BuiltStudy` (reader link tokens included).

    Raises:
        IvusSimError: bad input, or a failed leakage audit without ``force`` (nothing is written).
    """
    from tqdm import tqdm

    cfg = config or StudyConfig()
    out = Path(out)
    if out.exists() and not overwrite:
        raise IvusSimError(f"{out} exists; pass --overwrite to replace it")
    if cfg.size < 16:
        raise IvusSimError(f"--size must be >= 16 pixels, got {cfg.size}")
    if cfg.block_size < 1:
        raise IvusSimError(f"--block-size must be >= 1, got {cfg.block_size}")
    if cfg.n_catch < 0:
        raise IvusSimError(f"--catch must be >= 0, got {cfg.n_catch}")
    if cfg.n_practice < 0:
        raise IvusSimError(f"--practice must be >= 0, got {cfg.n_practice}")
    mode = StudyMode(cfg.mode)
    reader_ids = cfg.ids()
    real_files, fake_files = list_images(real_dir), list_images(fake_dir)
    pairs = make_pairs(real_files, fake_files, mode=cfg.pairing, n_pairs=cfg.n_pairs, seed=cfg.seed)
    if cfg.n_catch > len(pairs):
        raise IvusSimError(f"--catch {cfg.n_catch} repeats more pairs than the study has ({len(pairs)})")

    # catch material: obvious-fake trials use spare real images only (a real image seen next to an
    # obvious fake would be revealed as real if it also appeared in a main pair)
    g = rng(cfg.seed, "turing-catch")
    used_real = {p.real for p in pairs}
    spare = [r for r in real_files if r not in used_real]
    spare = [spare[int(i)] for i in g.permutation(len(spare))]
    k = cfg.n_catch
    if k and len(spare) < k:
        raise IvusSimError(f"--catch {k} needs {k} real images not used in main pairs for the obvious-fake trials "
                           f"(have {len(spare)}); lower --pairs or --catch")
    obvious_real = spare[:k]
    # real-vs-real trials use spare real images too: a main-pair real image shown beside a second
    # partner would reveal itself (any image seen with two partners must be real)
    rest = spare[k:]
    if k and len(rest) < 2 * k:
        raise IvusSimError(f"--catch {k} needs {3 * k} real images not used in main pairs ({k} obvious-fake, "
                           f"{2 * k} real-vs-real; have {len(spare)}); lower --pairs or --catch")
    real_real = [(rest[2 * i], rest[2 * i + 1]) for i in range(k)]
    obvious_src = [fake_files[int(i)] for i in g.choice(len(fake_files), size=k, replace=len(fake_files) < k)] if k \
        else []
    taken_real = used_real | set(obvious_real) | {r for ab in real_real for r in ab}
    taken_fake = {p.fake for p in pairs} | set(obvious_src)
    practice_real, practice_fake = _practice_material([r for r in real_files if r not in taken_real],
                                                      [f for f in fake_files if f not in taken_fake], cfg)

    source_audit = audit_files([p.real for p in pairs], [p.fake for p in pairs], auc_threshold=cfg.auc_threshold,
                               alpha=cfg.alpha, strict=False, seed=cfg.seed)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.building-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        (tmp / "images").mkdir()
        store = Store(tmp / DB_NAME, create=True)
        ids: dict[tuple[str, Path], int] = {}
        files: dict[int, Path] = {}
        sources: list[tuple[str, Path, int | None]] = []  # role, source path, obvious index
        for p in pairs:
            sources += [("real", p.real, None), ("fake", p.fake, None)]
        sources += [("real", r, None) for r in obvious_real]
        sources += [("real", r, None) for ab in real_real for r in ab]
        sources += [("obvious", f, i) for i, f in enumerate(obvious_src)]
        sources += [("practice_real", r, None) for r in practice_real]
        sources += [("practice_fake", f, None) for f in practice_fake]
        with store.transaction() as db:
            for role, src, oi in tqdm(sources, desc="encoding", unit="img", disable=not progress):
                key = (role if oi is None else f"obvious{oi}", src)
                if key in ids:
                    continue
                img = neutralise(load_grey(src), cfg.size, cfg.intensity)
                if oi is not None:
                    img = _shuffle_inside_fov(img, rng(cfg.seed, "turing-obvious", oi))
                name = opaque_name(".png")
                write_encoded(tmp / "images" / name, img)
                cur = db.execute("INSERT INTO images (file, role, source, sha256) VALUES (?, ?, ?, ?)",
                                 (name, role, str(src.resolve()), _sha256(src)))
                ids[key] = int(cur.lastrowid or 0)
                files[ids[key]] = tmp / "images" / name
            pair_ids = []
            for i, p in enumerate(pairs):
                r, f = ids[("real", p.real)], ids[("fake", p.fake)]
                db.execute("INSERT INTO pairs VALUES (?, ?, ?, ?)", (i, r, f, p.matched_by))
                pair_ids.append((r, f))

        audit = audit_files([files[r] for r, _ in pair_ids], [files[f] for _, f in pair_ids],
                            auc_threshold=cfg.auc_threshold, alpha=cfg.alpha, strict=True, seed=cfg.seed)
        if not audit.passed and not cfg.force:
            # nothing is left behind (no study, no report beside it): the error names the cues; the
            # full audit is written with the study by --force
            store.close()
            raise IvusSimError(f"{audit.summary()}; pass --force to build anyway (the failed audit is recorded in "
                               f"the study's {AUDIT_NAME}.html)")

        catch = CatchItems(obvious=tuple((ids[("real", r)], ids[(f"obvious{i}", f)])
                                         for i, (r, f) in enumerate(zip(obvious_real, obvious_src, strict=True))),
                           real_real=tuple((ids[("real", a)], ids[("real", b)]) for a, b in real_real),
                           n_repeats=k)
        built = BuiltStudy(path=out, audit=audit, source_audit=source_audit)
        now = time.time_ns()
        plan = StudyPlan(
            mode=mode, seed=cfg.seed, block_size=cfg.block_size, pairs=tuple(pair_ids), catch=catch,
            practice_pairs=tuple((ids[("practice_real", r)], ids[("practice_fake", f)])
                                 for r, f in zip(practice_real, practice_fake, strict=True))
            if mode is StudyMode.TWO_AFC else (),
            practice_images=tuple([(ids[("practice_real", r)], Truth.REAL.value) for r in practice_real]
                                  + [(ids[("practice_fake", f)], Truth.SIMULATED.value) for f in practice_fake])
            if mode is StudyMode.SINGLE else ())
        with store.transaction() as db:
            for rid in reader_ids:
                built.readers[rid], built.n_trials[rid] = insert_reader(db, rid, plan)
            for meta_key, value in (("study_id", secrets.token_hex(8)), ("seed", cfg.seed),
                               ("block_size", cfg.block_size), ("config", cfg.to_dict()),
                               ("leakage_audit", audit.to_dict()), ("source_audit", source_audit.to_dict()),
                               ("audit_forced", bool(cfg.force and not audit.passed)),
                               (PLAN_META, plan.to_dict()), ("consent_text", cfg.consent_text),
                               ("debrief_text", cfg.debrief_text)):
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (meta_key, json.dumps(value)))
            built.chain_head = store.append_log(
                db, "build", None, {"readers": list(reader_ids), "pairs": len(pairs), "audit_passed": audit.passed,
                                    "forced": bool(cfg.force), "key": store.key_digests(db)}, now)
        store.close()
        audit.write(tmp / f"{AUDIT_NAME}.json")
        from ivus_sim.io import atomic_write

        html_doc = ("<!doctype html><meta charset='utf-8'><title>Leakage audit</title>"
                    + audit_html(audit, "Leakage audit of the encoded study images")
                    + audit_html(source_audit, "Leakage audit of the source files (before neutralisation)"))
        atomic_write(tmp / f"{AUDIT_NAME}.html", lambda fh: fh.write(html_doc.encode()))
        write_json(tmp / SIDECAR_NAME, {
            "kind": "ivus-sim reader study",
            "config": cfg.to_dict(),
            "real_dir": str(Path(real_dir).resolve()),
            "fake_dir": str(Path(fake_dir).resolve()),
            "pairs": [{"real": p.real.name, "fake": p.fake.name, "matched_by": p.matched_by,
                       "real_sha256": _sha256(p.real), "fake_sha256": _sha256(p.fake)} for p in pairs],
            "catch": {"obvious_real": [r.name for r in obvious_real], "obvious_source": [f.name for f in obvious_src],
                      "real_real": [[a.name, b.name] for a, b in real_real]},
            "n_trials": built.n_trials,
            "leakage_audit": {"passed": audit.passed, "forced": bool(cfg.force and not audit.passed),
                              "summary": audit.summary()},
            "note": "reader, trial and view tokens and image file names are random secrets, not derived from the seed",
        })
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return built
