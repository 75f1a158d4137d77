"""The augmentation manifest: which outputs exist, with their seeds and phantom parameters.

While a run is in progress, finished cases are recorded in small CSV *part* files under
``DIR/manifest.d/`` (each written atomically, never appended to), so a killed run loses at
most the cases finished since the last part was written, and those are simply regenerated
(deterministically, byte-identical). Parts from every shard and every resumed run are read
together and de-duplicated by output index. When all ``n`` cases exist, the parts are merged
into ``DIR/manifest.csv`` (one row per case, sorted by index) and removed.

Columns: :data:`COLUMNS`, then one ``phantom.<key>`` column per scalar phantom parameter and
``phantom.n_<key>`` per list of components (e.g. ``phantom.n_calcium``); the full parameter
dict is the JSON column ``phantom_params``.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ivus_sim.errors import IvusSimError
from ivus_sim.io import atomic_write

__all__ = ["ManifestRow", "COLUMNS", "MANIFEST_NAME", "PARTS_DIR", "read_rows", "write_part", "write_manifest",
           "part_files"]

MANIFEST_NAME = "manifest.csv"
PARTS_DIR = "manifest.d"


@dataclass(frozen=True)
class ManifestRow:
    """One written case.

    Args:
        index: output index ``i`` in ``[0, n)``.
        case_id: dataset case identifier.
        image, label, sidecar: paths relative to the dataset root.
        seed: the run seed.
        image_seed: seed of the image draw (``derive_seed(seed, "augment-image", i)``).
        phantom_source: ``random`` or the phantom file the label map came from.
        phantom_index: random-phantom index, or frame index into the ``--phantoms`` list.
        phantom_hash: content hash of the tissue label map.
        image_hash, label_hash: :func:`ivus_sim.io.array_hash` of the written arrays.
        engine: engine description (``physics:20mhz``, ``learned:default``, ``model:PATH``).
        phantom_params: the phantom's sampled parameters as compact JSON.
        scanner: the case's randomised scanner (``--randomise``) as compact JSON; empty without.
    """

    index: int
    case_id: str
    image: str
    label: str
    sidecar: str
    seed: int
    image_seed: int
    phantom_source: str
    phantom_index: int
    phantom_hash: str
    image_hash: str
    label_hash: str
    engine: str
    phantom_params: str
    scanner: str = ""

    @classmethod
    def from_csv(cls, d: dict[str, str]) -> ManifestRow:
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in _OPTIONAL and f.name not in d:
                continue
            v = d[f.name]
            kw[f.name] = int(v) if f.type in ("int", int) else v
        return cls(**kw)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.phantom_params) if self.phantom_params else {}
        return out


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ManifestRow))
_OPTIONAL = ("scanner",)  # columns added later (older manifests lack them)


def part_files(root: Path) -> list[Path]:
    """The part files under ``root/manifest.d`` (sorted)."""
    d = Path(root) / PARTS_DIR
    return sorted(d.glob("part-*.csv")) if d.is_dir() else []


def _read_csv(path: Path) -> list[ManifestRow]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or []) and c not in _OPTIONAL]
            if missing:
                raise IvusSimError(f"{path}: not an augment manifest (missing columns {', '.join(missing)})")
            return [ManifestRow.from_csv(r) for r in reader]
    except (ValueError, KeyError, csv.Error) as e:
        raise IvusSimError(f"{path}: unreadable manifest ({e}); delete it to regenerate its cases") from None


def read_rows(root: Path) -> dict[int, ManifestRow]:
    """All recorded cases of the dataset at ``root`` (``manifest.csv`` and parts), by index.

    Parts may be merged and removed by a concurrent shard while they are read; then the reading
    starts again (the merged ``manifest.csv`` holds their rows).
    """
    for _ in range(5):
        rows: dict[int, ManifestRow] = {}
        try:
            sources = [Path(root) / MANIFEST_NAME] if (Path(root) / MANIFEST_NAME).is_file() else []
            for path in [*sources, *part_files(Path(root))]:
                for r in _read_csv(path):
                    rows.setdefault(r.index, r)
            return rows
        except FileNotFoundError:
            continue
    raise IvusSimError(f"{root}: the manifest kept changing while being read; rerun to resume")


def _csv_text(header: list[str], records: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for rec in records:
        w.writerow(rec)
    return buf.getvalue().encode("utf-8")


def write_part(root: Path, rows: list[ManifestRow]) -> Path:
    """Record ``rows`` in a new part file (atomic; a unique name, so concurrent shards never collide)."""
    rows = sorted(rows, key=lambda r: r.index)
    name = f"part-{rows[0].index:09d}-{uuid.uuid4().hex[:8]}.csv"
    data = _csv_text(list(COLUMNS), [asdict(r) for r in rows])
    return atomic_write(Path(root) / PARTS_DIR / name, lambda fh: fh.write(data))


def _scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None


def write_manifest(root: Path, rows: list[ManifestRow]) -> Path:
    """Write ``root/manifest.csv``: rows sorted by index, plus flattened scalar phantom parameters."""
    rows = sorted(rows, key=lambda r: r.index)
    records: list[dict[str, Any]] = []
    extra: dict[str, None] = {}
    for r in rows:
        rec: dict[str, Any] = asdict(r)
        for k, v in r.params().items():
            if isinstance(v, list) and all(isinstance(x, dict) for x in v):
                k, v = f"n_{k}", len(v)  # e.g. the number of calcium arcs
            if _scalar(v):
                rec[f"phantom.{k}"] = v
                extra.setdefault(f"phantom.{k}", None)
        scanner = json.loads(r.scanner) if r.scanner else {}
        for k, v in scanner.items():
            if _scalar(v) and k not in ("version", "ranges"):
                rec[f"scanner.{k}"] = v
                extra.setdefault(f"scanner.{k}", None)
        records.append(rec)
    data = _csv_text([*COLUMNS, *extra], records)
    return atomic_write(Path(root) / MANIFEST_NAME, lambda fh: fh.write(data))
