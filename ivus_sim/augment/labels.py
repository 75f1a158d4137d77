"""Task labels: merging tissue ids into the classes a segmentation model is trained on.

A phantom label map holds tissue ids from :mod:`ivus_sim.tissues`. A segmentation task
usually wants fewer classes (e.g. background / lumen / vessel wall). A
:class:`LabelMapping` assigns every tissue of the table to exactly one task label; task
label ids are consecutive from 0 in the order the labels are listed (the first one is the
background), which is what nnU-Net v2 requires.

Mapping file (YAML or JSON), one entry per task label, in id order::

    background: [perivascular, outside]
    lumen: [lumen, catheter, guidewire]
    wall: [fibrous, fibro_fatty, necrotic_core, dense_calcium, media, stent_strut]

A label named ``ignore`` (nnU-Net v2's ignore label: pixels excluded from the loss) must be
listed last. Built-in mappings can be named instead of a file (see :data:`BUILTIN_MAPPINGS`).

>>> m = LabelMapping.builtin("lumen-wall")
>>> m.names
('background', 'lumen', 'wall')
>>> int(m.apply(np.array([[1, 6, 255]], dtype=np.uint8)).max())
2
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.tissues import TISSUES, Tissue, tissue_by_name

__all__ = ["TaskLabel", "LabelMapping", "BUILTIN_MAPPINGS", "IGNORE_LABEL", "load_label_mapping"]

#: nnU-Net v2's name for the label whose pixels do not contribute to the loss
IGNORE_LABEL = "ignore"

#: named mappings usable in place of a file (``--labels-map lumen-wall``)
BUILTIN_MAPPINGS: dict[str, dict[str, list[str]]] = {
    # lumen + vessel wall (everything between the lumen border and the EEM: intima, plaque, media);
    # the catheter and guidewire lie inside the lumen border, as in clinical lumen contours.
    "lumen-wall": {
        "background": ["perivascular", "outside"],
        "lumen": ["lumen", "catheter", "guidewire"],
        "wall": ["fibrous", "fibro_fatty", "necrotic_core", "dense_calcium", "media", "stent_strut"],
    },
}


@dataclass(frozen=True)
class TaskLabel:
    """One class of the segmentation task.

    Args:
        name: class name written into ``dataset.json``.
        id: integer value of the class in the written label maps.
        tissues: the tissues merged into this class.
    """

    name: str
    id: int
    tissues: tuple[Tissue, ...]


@dataclass(frozen=True)
class LabelMapping:
    """A total map from tissue ids to task label ids.

    Args:
        labels: the task labels, ordered by id; every tissue of the table appears in exactly one.
        name: a short description (``"tissues"``, a built-in name or the mapping file's name).
    """

    labels: tuple[TaskLabel, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        names = [lab.name for lab in self.labels]
        if len(set(names)) != len(names):
            raise IvusSimError(f"label mapping {self.name}: duplicate label names in {names}")
        ids = [lab.id for lab in self.labels]
        if len(set(ids)) != len(ids):
            raise IvusSimError(f"label mapping {self.name}: duplicate label ids in {ids}")
        if IGNORE_LABEL in names and names[-1] != IGNORE_LABEL:
            raise IvusSimError(f"label mapping {self.name}: the {IGNORE_LABEL!r} label must be listed last")
        seen: dict[Tissue, str] = {}
        for lab in self.labels:
            for t in lab.tissues:
                if t in seen:
                    raise IvusSimError(f"label mapping {self.name}: tissue {TISSUES[t].name!r} is listed under both"
                                       f" {seen[t]!r} and {lab.name!r}")
                seen[t] = lab.name
        missing = [TISSUES[t].name for t in Tissue if t not in seen]
        if missing:
            raise IvusSimError(f"label mapping {self.name}: tissues not assigned to any label: {', '.join(missing)}"
                               " (list every tissue of the table exactly once)")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def identity(cls, consecutive: bool = False) -> LabelMapping:
        """One label per tissue, ids from the tissue table.

        Args:
            consecutive: nnU-Net v2 needs consecutive ids, so with ``True`` the ``outside``
                tissue (id 255, outside the field of view) becomes the ``ignore`` label with id
                ``max tissue id + 1``; every other id is unchanged.
        """
        labels = []
        inside = [t for t in Tissue if t != Tissue.OUTSIDE]
        for t in inside:
            labels.append(TaskLabel(TISSUES[t].name, int(t), (t,)))
        if consecutive:
            labels.append(TaskLabel(IGNORE_LABEL, max(int(t) for t in inside) + 1, (Tissue.OUTSIDE,)))
        else:
            labels.append(TaskLabel(TISSUES[Tissue.OUTSIDE].name, int(Tissue.OUTSIDE), (Tissue.OUTSIDE,)))
        return cls(tuple(labels), name="tissues" + ("-consecutive" if consecutive else ""))

    @classmethod
    def from_dict(cls, spec: Any, name: str = "custom") -> LabelMapping:
        """Build from ``{task label name: [tissue names]}`` (ids assigned in order from 0)."""
        if not isinstance(spec, dict) or not spec:
            raise IvusSimError(f"label mapping {name}: expected a mapping of task label name -> list of tissue names,"
                               f" got {type(spec).__name__}")
        if len(spec) < 2:
            raise IvusSimError(f"label mapping {name}: needs at least 2 labels (background first), got {len(spec)}")
        labels = []
        for i, (lab_name, tissues) in enumerate(spec.items()):
            if not isinstance(lab_name, str) or not lab_name.strip():
                raise IvusSimError(f"label mapping {name}: label names must be non-empty strings, got {lab_name!r}")
            if isinstance(tissues, str):
                tissues = [tissues]
            if not isinstance(tissues, list) or not tissues:
                raise IvusSimError(f"label mapping {name}: label {lab_name!r} needs a non-empty list of tissue names")
            ts = []
            for tn in tissues:
                if not isinstance(tn, str):
                    raise IvusSimError(f"label mapping {name}: label {lab_name!r}: tissue names must be strings,"
                                       f" got {tn!r}")
                try:
                    ts.append(tissue_by_name(tn))
                except KeyError:
                    known = ", ".join(info.name for info in TISSUES.values())
                    raise IvusSimError(f"label mapping {name}: label {lab_name!r}: unknown tissue {tn!r};"
                                       f" known: {known}") from None
            labels.append(TaskLabel(lab_name, i, tuple(ts)))
        return cls(tuple(labels), name=name)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LabelMapping:
        """Rebuild a mapping exactly (ids included) from :meth:`to_dict` output."""
        try:
            labels = tuple(TaskLabel(str(d["name"]), int(d["id"]), tuple(tissue_by_name(t) for t in d["tissues"]))
                           for d in record["labels"])
        except (KeyError, TypeError, ValueError) as e:
            raise IvusSimError(f"not a label-mapping record: {e}") from None
        return cls(labels, name=str(record.get("name", "custom")))

    @classmethod
    def builtin(cls, key: str) -> LabelMapping:
        """A named mapping from :data:`BUILTIN_MAPPINGS`."""
        if key not in BUILTIN_MAPPINGS:
            raise IvusSimError(f"unknown built-in label mapping {key!r}; known: {', '.join(BUILTIN_MAPPINGS)}")
        return cls.from_dict(BUILTIN_MAPPINGS[key], name=key)

    # -- use ----------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lab.name for lab in self.labels)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(lab.id for lab in self.labels)

    @property
    def is_consecutive(self) -> bool:
        """Ids are exactly ``0, 1, ..., len(labels) - 1`` (an nnU-Net v2 requirement)."""
        return sorted(self.ids) == list(range(len(self.labels)))

    def lut(self) -> np.ndarray:
        """A ``(256,)`` uint8 look-up table tissue id -> task id (unused entries are 0)."""
        table = np.zeros(256, dtype=np.uint8)
        for lab in self.labels:
            for t in lab.tissues:
                table[int(t)] = lab.id
        return table

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """Map a tissue label map ``(..., N, N)`` uint8 to task ids (same shape, uint8)."""
        return self.lut()[np.asarray(labels, dtype=np.uint8)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description: ``{name, labels: [{name, id, tissues}]}``."""
        return {"name": self.name,
                "labels": [{"name": lab.name, "id": lab.id, "tissues": [TISSUES[t].name for t in lab.tissues]}
                           for lab in self.labels]}


def load_label_mapping(source: str | Path) -> LabelMapping:
    """Load a mapping from a YAML/JSON file, or a built-in name (:data:`BUILTIN_MAPPINGS`).

    Raises:
        IvusSimError: unreadable file, bad structure, unknown or duplicated tissue names,
            tissues left unassigned.
    """
    path = Path(source)
    if not path.exists():
        if str(source) in BUILTIN_MAPPINGS:
            return LabelMapping.builtin(str(source))
        raise IvusSimError(f"labels map {source}: no such file (built-in mappings: {', '.join(BUILTIN_MAPPINGS)})")
    if path.is_dir():
        raise IvusSimError(f"labels map {source}: is a directory; expected a YAML or JSON file")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".json":
            spec = json.loads(text)
        else:
            import yaml

            spec = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError) as e:
        raise IvusSimError(f"labels map {source}: not valid JSON: {e}") from None
    except Exception as e:  # yaml.YAMLError and friends
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise IvusSimError(f"labels map {source}: not valid YAML: {first}") from None
    return LabelMapping.from_dict(spec, name=path.name)
