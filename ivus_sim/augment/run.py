"""Writing a synthetic segmentation dataset: resumable, parallel, shardable.

Output ``i`` (``0 <= i < n``) is a pure function of the run options and ``i``: its phantom
comes from :class:`~ivus_sim.augment.phantoms.PhantomSource` and its image seed is
``derive_seed(seed, "augment-image", i)``. So the bytes of every case are the same whatever
the number of workers, the sharding or how often the run was interrupted and resumed.

* **Resumable.** ``DIR/augment.json`` records the options; a rerun with the same options
  reads the manifest (:mod:`ivus_sim.augment.manifest`), skips the cases it lists (whose files
  exist) and makes the rest. Every file is written atomically, so a killed run leaves whole
  files or none; cases finished but not yet in the manifest are regenerated identically.
  Different options on an existing folder are refused.
* **Parallel.** ``workers`` processes (default: all cores) with one torch thread each. The
  simulator (and a ``--model``) is loaded once, in this process, and inherited by forked
  workers; where ``fork`` is unavailable each spawned worker builds its own.
* **Sharded.** ``Shard(i, k)`` makes the outputs ``j`` with ``j mod k == i``: the ``k``
  shards are disjoint and together complete, and may run at the same time on one shared
  folder (e.g. a Slurm array). ``dataset.json`` and ``manifest.csv`` are written by
  whichever run finds all ``n`` cases present.

>>> from ivus_sim.augment.run import Shard
>>> list(Shard.parse("1/3").indices(7))
[1, 4]
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim import __version__
from ivus_sim.augment.engine import Engine, EngineSpec, displayed_nurd, render, render_scanner
from ivus_sim.augment.labels import LabelMapping
from ivus_sim.augment.layout import CasePaths, DatasetLayout, ImageFormat, Layout
from ivus_sim.augment.manifest import (
    MANIFEST_NAME,
    PARTS_DIR,
    ManifestRow,
    part_files,
    read_rows,
    write_manifest,
    write_part,
)
from ivus_sim.augment.phantoms import PhantomSource
from ivus_sim.augment.randomise import ScannerRanges, sample_scanner
from ivus_sim.errors import IvusSimError
from ivus_sim.io import array_hash, clean_stale_temps, write_json
from ivus_sim.outputs import PlannedOutput, make_sidecar, reproducing_command
from ivus_sim.physics.nurd import warp_cartesian
from ivus_sim.seeding import derive_seed

__all__ = ["Shard", "AugmentConfig", "AugmentReport", "run_augment", "regenerate_case", "image_seed",
           "RUN_RECORD_NAME", "default_workers"]

RUN_RECORD_NAME = "augment.json"
_RECORD_KIND = "ivus-sim augment run"


def image_seed(seed: int, index: int) -> int:
    """Seed of the image draw of output ``index`` of a run with ``seed``."""
    return derive_seed(seed, "augment-image", index)


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` (0-based): the outputs ``j`` with ``j mod count == index``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise IvusSimError(f"--shard {self.index}/{self.count}: need 0 <= i < k")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/k"`` -> ``Shard(i, k)``."""
        try:
            i, k = (int(p) for p in text.strip().split("/"))
        except ValueError:
            raise IvusSimError(f"--shard {text!r}: expected i/k with integers, e.g. 0/4") from None
        return cls(i, k)

    def indices(self, n: int) -> range:
        return range(self.index, n, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class AugmentConfig:
    """What to write (everything that defines the bytes of the outputs, plus ``n``).

    Args:
        n: number of cases.
        out: dataset folder.
        seed: run seed (phantoms and images).
        engine: the image engine.
        phantoms: a folder of phantoms to use instead of random ones.
        size: image side ``N`` [px]; ``None``: 256 for random phantoms, the phantoms' own size
            for a folder.
        fov_mm: field-of-view diameter [mm] of random phantoms.
        fmt: PNG or NIfTI files.
        layout: MONAI (decathlon) or nnU-Net v2 folder layout.
        labels_map: task labels; ``None`` keeps tissue ids (with the ``outside`` tissue as the
            ``ignore`` label in the nnU-Net layout, which needs consecutive ids).
        randomise: scanner ranges (:mod:`ivus_sim.augment.randomise`): every case draws its own
            scanner (and, for random phantoms, field of view and catheter size); ``None``: the
            engine's fixed preset / model.
    """

    n: int
    out: Path
    seed: int = 0
    engine: EngineSpec = field(default_factory=EngineSpec)
    phantoms: Path | None = None
    size: int | None = None
    fov_mm: float = 10.0
    fmt: ImageFormat = ImageFormat.NIFTI
    layout: Layout = Layout.MONAI
    labels_map: LabelMapping | None = None
    randomise: ScannerRanges | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise IvusSimError(f"--n must be >= 1, got {self.n}")
        if self.size is not None and self.size < 16:
            raise IvusSimError(f"--size must be >= 16 pixels, got {self.size}")
        if self.randomise is not None and self.engine.tissues is not None:
            raise IvusSimError("a tissue table and --randomise exclude each other: every randomised scanner starts "
                               "from the shipped table (set tissue offsets in the ranges instead)")

    @property
    def mapping(self) -> LabelMapping:
        if self.labels_map is not None:
            return self.labels_map
        return LabelMapping.identity(consecutive=self.layout is Layout.NNUNET)

    def phantom_source(self) -> PhantomSource:
        size = self.size if self.size is not None or self.phantoms is not None else 256
        return PhantomSource(seed=self.seed, size=size, fov_mm=self.fov_mm, folder=self.phantoms)

    def dataset_layout(self) -> DatasetLayout:
        return DatasetLayout(Path(self.out), self.layout, self.fmt, self.mapping)


@dataclass
class AugmentReport:
    """What a run did.

    Args:
        out: the dataset folder.
        n: cases in the dataset.
        shard: the part this run made.
        written: cases written by this run.
        existing: cases of this shard that were already there (resume).
        present: cases of the whole dataset present at the end (all shards).
        seconds: wall time of the generation.
        complete: ``present == n``; then ``dataset.json`` and ``manifest.csv`` are written.
    """

    out: Path
    n: int
    shard: Shard
    written: int
    existing: int
    present: int
    seconds: float
    complete: bool

    @property
    def dataset_json(self) -> Path | None:
        return self.out / "dataset.json" if self.complete else None


# ----------------------------------------------------------------------------------- one case


class _CaseMaker:
    """Builds and writes one case (lives in each worker process)."""

    def __init__(self, config: AugmentConfig, run_record: dict[str, Any], simulator: Any | None = None) -> None:
        """``simulator``: already built from ``config.engine`` (by :meth:`EngineSpec.check`); default: built here."""
        self.config = config
        self.run_record = run_record
        self.mapping = config.mapping
        self.layout = config.dataset_layout()
        self.source = config.phantom_source()
        # a randomised physics run builds one engine per case (its own preset)
        randomised_physics = config.randomise is not None and config.engine.engine is Engine.PHYSICS
        if randomised_physics:
            self.simulator = None
        else:
            self.simulator = simulator if simulator is not None else config.engine.build()

    def arrays(self, index: int, scanner: dict[str, Any] | None = None
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """``(image (N, N) uint8, task labels (N, N) uint8, sidecar)`` of output ``index``.

        ``scanner``: a recorded scanner draw to apply (regeneration); default: drawn for ``index``.
        """
        cfg = self.config
        if cfg.randomise is not None and scanner is None:
            scanner = sample_scanner(cfg.seed, index, cfg.randomise)
        if scanner is not None:
            frame = self.source.get(index, fov_mm=float(scanner["fov_mm"]),
                                    catheter_radius_mm=float(scanner["catheter_radius_mm"]))
        else:
            frame = self.source.get(index)
        s = image_seed(cfg.seed, index)
        if scanner is not None:
            image, record = render_scanner(cfg.engine, self.simulator, scanner, frame.labels, s,
                                           frame.geometry.fov_mm, cfg.seed, index)
        else:
            image, record = render(self.simulator, frame.labels, s, frame.geometry.fov_mm)
        # labels as displayed: the same NURD warp as the image (a reader traces the distorted frame)
        task = self.mapping.apply(warp_cartesian(frame.labels, displayed_nurd(record), order=0))
        paths = self.layout.paths(index)
        record = {
            "kind": "ivus-sim augment case",
            "index": index,
            "case_id": paths.case_id,
            "image": paths.image,
            "label": paths.label,
            "seed": self.config.seed,
            "image_seed": s,
            "image_hash": array_hash(image),
            "label_hash": array_hash(task),
            "phantom": {"source": frame.source, "index": frame.index, "hash": frame.hash,
                        "geometry": frame.geometry.to_dict(), "meta": frame.meta},
            "simulator": record,
            "scanner": scanner,
            "run": self.run_record,
            "regenerate": "ivus_sim.augment.regenerate_case(<this sidecar>)",
        }
        # the one sidecar schema of ivus_sim.outputs; the command remakes the whole dataset (resumable)
        root = Path(self.config.out)
        item = PlannedOutput(root / paths.sidecar, [root / paths.image, root / paths.label],
                             {"run": self.run_record, "index": index})
        sidecar = make_sidecar(item, record, _command(self.config, index),
                               files={"image": Path(paths.image).name, "label": f"../{paths.label}"})
        return image, task, sidecar

    def make(self, index: int) -> ManifestRow:
        image, task, sidecar = self.arrays(index)
        ph = sidecar["phantom"]
        paths = self.layout.write_case(index, image, task, ph["geometry"]["pixel_mm"], sidecar)
        return ManifestRow(index=index, case_id=paths.case_id, image=paths.image, label=paths.label,
                           sidecar=paths.sidecar, seed=self.config.seed, image_seed=sidecar["image_seed"],
                           phantom_source=ph["source"], phantom_index=ph["index"], phantom_hash=ph["hash"],
                           image_hash=sidecar["image_hash"], label_hash=sidecar["label_hash"],
                           engine=self.config.engine.describe(),
                           phantom_params=json.dumps(ph["meta"].get("params", {}), separators=(",", ":"),
                                                     sort_keys=True),
                           scanner=json.dumps(sidecar["scanner"], separators=(",", ":"), sort_keys=True)
                           if sidecar["scanner"] is not None else "")


_WORKER: _CaseMaker | None = None
_WORKER_ERROR: BaseException | None = None


def _init_worker(config: AugmentConfig, run_record: dict[str, Any]) -> None:
    global _WORKER, _WORKER_ERROR
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    import torch

    torch.set_num_threads(1)
    if _WORKER is not None:  # inherited from the parent through fork
        return
    try:
        _WORKER = _CaseMaker(config, run_record)
    except BaseException as e:  # reported by the first task (a failing initializer would respawn forever)
        _WORKER_ERROR = e


def _work(index: int) -> ManifestRow:
    if _WORKER is None:
        raise _WORKER_ERROR or RuntimeError("augment worker was not initialised")
    return _WORKER.make(index)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # same arithmetic as the workers: bytes independent of the worker count
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------- the run


def _portable(preset: str) -> str:
    """A preset name as is, a preset file as an absolute path (the command runs in another folder)."""
    return str(Path(preset).resolve()) if Path(preset).is_file() else preset


def _command(config: AugmentConfig, index: int) -> str:
    """The ``ivus-sim augment`` command line that remakes case ``index`` (with the cases before it) when
    run in an empty folder (``--n index+1 --out .``: the sidecar does not depend on where the dataset
    lies or how far it was extended)."""
    eng = config.engine
    mapping = config.labels_map
    return reproducing_command("augment", {
        "n": index + 1, "out": ".", "seed": config.seed, "engine": eng.engine.value,
        "preset": _portable(eng.preset) if eng.engine is Engine.PHYSICS else None,
        "tissues": str(Path(eng.tissues).resolve()) if eng.tissues is not None else None,
        "model": str(Path(eng.model).resolve()) if eng.model is not None else None,
        "phantoms": str(Path(config.phantoms).resolve()) if config.phantoms is not None else None,
        "size": config.size, "fov_mm": config.fov_mm if config.phantoms is None else None,
        "format": config.fmt.value, "layout": config.layout.value,
        "labels_map": mapping.name if mapping is not None else None,
        "randomise": config.randomise.name if config.randomise is not None else None})


def _run_record(config: AugmentConfig, source: PhantomSource) -> dict[str, Any]:
    return {
        "kind": _RECORD_KIND,
        "ivus_sim_version": __version__,
        "seed": config.seed,
        "engine": config.engine.to_dict(),
        "phantoms": source.to_dict(),
        "format": config.fmt.value,
        "layout": config.layout.value,
        "labels": config.mapping.to_dict(),
        "randomise": config.randomise.to_dict() if config.randomise is not None else None,
    }


def _check_run_record(out: Path, record: dict[str, Any], n: int) -> None:
    """Create ``out/augment.json``, or check that the folder holds a run with the same options."""
    path = out / RUN_RECORD_NAME
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            raise IvusSimError(f"{path}: unreadable; delete the folder or choose another --out") from None
        if old.get("kind") != _RECORD_KIND:
            raise IvusSimError(f"{path} is not an ivus-sim augment record; choose another --out")
        # a run that made no case yet (e.g. a first attempt that failed) may be restarted with other options
        started = any(d.is_dir() and any(d.iterdir()) for d in (out / "imagesTr", out / "labelsTr", out / PARTS_DIR))
        if started:
            for key, value in record.items():
                if old.get(key) != value:
                    raise IvusSimError(f"{out} holds an augment run with different {key} ({_short(old.get(key))} vs"
                                       f" {_short(value)}); rerun with the same options to resume, or choose"
                                       " another --out")
            if n < int(old.get("n", 0)):
                raise IvusSimError(f"{out} holds an augment run of --n {old['n']}; pass --n {old['n']} to resume it"
                                   " (or more to extend it)")
            if n == int(old.get("n", 0)):
                return
    elif out.exists():
        if not out.is_dir():
            raise IvusSimError(f"--out {out}: exists and is not a folder")
        if any(not p.name.startswith(".") for p in out.iterdir()):
            raise IvusSimError(f"--out {out}: folder is not empty and holds no augment run; choose a new folder")
    write_json(path, {**record, "n": n})


def _short(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _present(layout: DatasetLayout, rows: dict[int, ManifestRow], indices: range) -> dict[int, ManifestRow]:
    out: dict[int, ManifestRow] = {}
    for i in indices:
        r = rows.get(i)
        if r is not None and layout.exists(CasePaths(r.case_id, r.image, r.label, r.sidecar)):
            out[i] = r
    return out


def _finalise(config: AugmentConfig, layout: DatasetLayout, rows: list[ManifestRow]) -> None:
    root = Path(config.out)
    parts = part_files(root)
    write_manifest(root, rows)
    cases = [CasePaths(r.case_id, r.image, r.label, r.sidecar) for r in rows]
    desc = (f"{config.n} synthetic IVUS frames from ivus-sim {__version__} ({config.engine.describe()},"
            f" seed {config.seed}); labels: {layout.mapping.name}")
    extra = {"ivus_sim": {"version": __version__, "seed": config.seed, "engine": config.engine.to_dict(),
                          "label_mapping": layout.mapping.to_dict(), "manifest": MANIFEST_NAME}}
    layout.write_dataset_json(cases, desc, extra)
    for p in parts:  # now merged into manifest.csv
        with contextlib.suppress(OSError):
            p.unlink()
    for d in (root, root / "imagesTr", root / "labelsTr", root / PARTS_DIR):
        clean_stale_temps(d)  # of killed writers only: a live shard's temp files stay
    with contextlib.suppress(OSError):  # only when empty (another shard may still be writing one)
        (root / PARTS_DIR).rmdir()


def run_augment(
    config: AugmentConfig,
    *,
    shard: Shard = Shard(),
    workers: int | None = None,
    progress: bool = True,
    flush_every: int = 32,
    flush_seconds: float = 5.0,
    on_case: Callable[[ManifestRow], None] | None = None,
) -> AugmentReport:
    """Write (or resume) the cases of ``shard`` of the dataset ``config`` describes.

    Args:
        config: the dataset.
        shard: which part to make (default: all).
        workers: worker processes (default: all cores; 0 or 1: in this process).
        progress: show a tqdm bar.
        flush_every: record finished cases in the manifest at least every this many cases...
        flush_seconds: ...and every this many seconds.
        on_case: called in this process after each case is written (e.g. a progress hook).

    Returns:
        An :class:`AugmentReport`; ``report.complete`` when all ``n`` cases exist (then
        ``dataset.json`` and ``manifest.csv`` are written).
    """
    from tqdm.auto import tqdm

    out = Path(config.out)
    layout = config.dataset_layout()
    source = config.phantom_source()
    record = _run_record(config, source)
    # a truncated --model fails here, before augment.json is written; the simulator it loaded is the run's
    simulator = config.engine.check()
    _check_run_record(out, record, config.n)

    mine = shard.indices(config.n)
    have = _present(layout, read_rows(out), mine)
    todo = [i for i in mine if i not in have]
    n_workers = default_workers() if workers is None else max(int(workers), 0)
    n_workers = min(n_workers, len(todo))

    pending: list[ManifestRow] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if pending:
            write_part(out, pending)
            pending.clear()
        last_flush = time.monotonic()

    t0 = time.perf_counter()
    written = 0
    desc = "augment" + (f" shard {shard}" if shard.count > 1 else "")
    with tqdm(total=len(mine), initial=len(have), disable=not progress, unit="img", desc=desc) as bar:
        rows = _generate(config, record, todo, n_workers, simulator)
        try:
            with contextlib.closing(rows):  # closing: stops the worker pool on any error
                for row in rows:
                    pending.append(row)
                    written += 1
                    bar.update(1)
                    if on_case is not None:
                        on_case(row)
                    if len(pending) >= flush_every or time.monotonic() - last_flush >= flush_seconds:
                        flush()
        finally:
            flush()
    seconds = time.perf_counter() - t0

    everything = _present(layout, read_rows(out), range(config.n))
    complete = len(everything) == config.n
    if complete:
        _finalise(config, layout, [everything[i] for i in range(config.n)])
    return AugmentReport(out=out, n=config.n, shard=shard, written=written, existing=len(have),
                         present=len(everything), seconds=seconds, complete=complete)


def _generate(config: AugmentConfig, record: dict[str, Any], todo: list[int], workers: int,
              simulator: Any | None = None) -> Generator[ManifestRow, None, None]:
    """The cases ``todo``, made in this process or by ``workers`` processes.

    ``simulator``: already built (by :meth:`EngineSpec.check`), used here and inherited by forked
    workers; spawned workers (no ``fork`` on this platform) build their own.
    """
    if not todo:
        return
    if workers <= 1:
        with _one_torch_thread():
            maker = _CaseMaker(config, record, simulator)
            for i in todo:
                yield maker.make(i)
        return
    global _WORKER
    methods = mp.get_all_start_methods()
    fork = "fork" in methods
    ctx = mp.get_context("fork" if fork else "spawn")
    if fork:
        # build the simulator (and import everything it needs) once, here: forked workers inherit it,
        # and an engine that cannot be built fails before any worker starts
        if config.fmt is ImageFormat.NIFTI:
            import nibabel  # noqa: F401
        _WORKER = _CaseMaker(config, record, simulator)
    try:
        with ctx.Pool(workers, initializer=_init_worker, initargs=(config, record)) as pool:
            yield from pool.imap_unordered(_work, todo, chunksize=1)
    finally:
        _WORKER = None


def regenerate_case(sidecar: dict[str, Any] | str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Re-make a case from its sidecar: ``(image (N, N) uint8, label map (N, N) uint8)``.

    The run options are in ``sidecar["run"]``; a folder of phantoms must still exist.
    """
    from ivus_sim.augment.engine import Engine

    sc: dict[str, Any] = json.loads(Path(sidecar).read_text()) if isinstance(sidecar, (str, Path)) else sidecar
    run = sc["run"]
    eng = run["engine"]
    spec = EngineSpec(engine=Engine(eng["engine"]), preset=eng.get("preset") or "20mhz",
                      model=Path(eng["model"]) if eng.get("model") else None, device=eng.get("device", "cpu"),
                      tissues=Path(eng["tissues"]) if eng.get("tissues") else None)
    ph = run["phantoms"]
    mapping = LabelMapping.from_record(run["labels"])
    ranges = ScannerRanges.from_dict(run["randomise"], "sidecar run.randomise") if run.get("randomise") else None
    config = AugmentConfig(n=int(sc["index"]) + 1, out=Path("."), seed=int(run["seed"]), engine=spec,
                           phantoms=Path(ph["folder"]) if ph["kind"] == "folder" else None,
                           size=ph.get("size"), fov_mm=float(ph.get("fov_mm", 10.0)), fmt=ImageFormat(run["format"]),
                           layout=Layout(run["layout"]), labels_map=mapping, randomise=ranges)
    with _one_torch_thread():
        image, task, _ = _CaseMaker(config, run).arrays(int(sc["index"]), scanner=sc.get("scanner"))
    return image, task
