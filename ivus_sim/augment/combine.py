"""Combine a synthetic nnU-Net dataset from ``ivus-sim augment`` with the user's own.

:func:`combine_nnunet` writes a new nnU-Net v2 raw dataset folder holding the user's cases and the
synthetic ones (symbolic links by default, so nothing is copied), a merged ``dataset.json`` and a
``splits_final.json`` whose validation folds hold **real cases only** (synthetic cases are always
in the training part), so nnU-Net's model selection is never done on synthetic images. Copy the
splits file into ``$nnUNet_preprocessed/DatasetXXX_Name/`` after ``nnUNetv2_plan_and_preprocess``.

Synthetic case ids get the prefix ``syn_`` so they cannot collide with the user's; the list of
synthetic case ids is recorded under ``dataset.json["ivus_sim"]["synthetic_cases"]``.

>>> # combine_nnunet(Path("nnUNet_raw/Dataset501_Mine"), Path("data/Dataset502_IVUSaug"),
>>> #                Path("nnUNet_raw/Dataset503_MinePlusSynthetic"))
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.io import write_json

__all__ = ["combine_nnunet", "SYNTHETIC_PREFIX"]

SYNTHETIC_PREFIX = "syn_"


def _read(root: Path, what: str) -> dict[str, Any]:
    p = root / "dataset.json"
    if not p.is_file():
        raise IvusSimError(f"{what} {root}: no dataset.json (not an nnU-Net raw dataset)")
    try:
        d: dict[str, Any] = json.loads(p.read_text())
    except ValueError:
        raise IvusSimError(f"{p}: not valid JSON") from None
    for key in ("channel_names", "labels", "file_ending"):
        if key not in d:
            raise IvusSimError(f"{p}: no {key!r} (not an nnU-Net v2 dataset.json)")
    return d


def _cases(root: Path, ending: str) -> list[str]:
    return sorted(p.name[: -len(ending)] for p in (root / "labelsTr").glob(f"*{ending}"))


def combine_nnunet(user: Path, synthetic: Path, out: Path, *, copy: bool = False, folds: int = 5,
                   seed: int = 0) -> Path:
    """Write ``out``: the user's nnU-Net dataset plus a synthetic one (see the module docstring).

    Args:
        user: the user's nnU-Net v2 raw dataset folder.
        synthetic: an ``ivus-sim augment --layout nnunet`` folder with the same labels and file ending.
        out: the new dataset folder (must not exist or be empty).
        copy: copy files instead of linking them.
        folds: cross-validation folds of ``splits_final.json`` (over the real cases).
        seed: shuffle seed of the folds.

    Returns:
        ``out``.
    """
    user, synthetic, out = Path(user), Path(synthetic), Path(out)
    du, ds = _read(user, "user dataset"), _read(synthetic, "synthetic dataset")
    if du["labels"] != ds["labels"]:
        raise IvusSimError(f"labels differ: user {du['labels']} vs synthetic {ds['labels']}; make the synthetic"
                           " set with a matching --labels-map")
    if du["file_ending"] != ds["file_ending"]:
        raise IvusSimError(f"file endings differ: user {du['file_ending']} vs synthetic {ds['file_ending']}"
                           " (use --format to match)")
    if len(du["channel_names"]) != len(ds["channel_names"]):
        raise IvusSimError("the user's dataset has a different number of channels than the synthetic one")
    if out.exists() and any(out.iterdir()):
        raise IvusSimError(f"{out}: exists and is not empty; choose a new folder")
    ending = du["file_ending"]
    real, syn = _cases(user, ending), _cases(synthetic, ending)
    if not real:
        raise IvusSimError(f"user dataset {user}: no labelsTr/*{ending} files")
    if len(real) < folds:
        raise IvusSimError(f"user dataset has {len(real)} cases; need at least --folds {folds}")
    for d in ("imagesTr", "labelsTr"):
        (out / d).mkdir(parents=True, exist_ok=True)

    def place(src: Path, dst: Path) -> None:
        if copy:
            shutil.copy2(src, dst)
        else:
            os.symlink(os.path.relpath(src.resolve(), dst.parent.resolve()), dst)

    n_ch = len(du["channel_names"])
    for root, cases, prefix in ((user, real, ""), (synthetic, syn, SYNTHETIC_PREFIX)):
        for c in cases:
            place(root / "labelsTr" / f"{c}{ending}", out / "labelsTr" / f"{prefix}{c}{ending}")
            for ch in range(n_ch):
                place(root / "imagesTr" / f"{c}_{ch:04d}{ending}", out / "imagesTr" / f"{prefix}{c}_{ch:04d}{ending}")
    merged = {**du, "numTraining": len(real) + len(syn),
              "ivus_sim": {"synthetic_dataset": str(synthetic.resolve()), "user_dataset": str(user.resolve()),
                           "synthetic_cases": [SYNTHETIC_PREFIX + c for c in syn],
                           "splits": "splits_final.json: validation folds hold real cases only"}}
    write_json(out / "dataset.json", merged)
    order = np.random.default_rng(seed).permutation(len(real))
    splits = []
    for f in range(folds):
        val = sorted(real[i] for i in order[f::folds])
        train = sorted(set(real) - set(val)) + [SYNTHETIC_PREFIX + c for c in syn]
        splits.append({"train": train, "val": val})
    write_json(out / "splits_final.json", splits)
    return out
