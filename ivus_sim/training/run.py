"""One training run from a config and a data folder (what ``ivus-sim train`` calls).

Order of work, cheapest checks first, so a bad request fails in seconds with one line and leaves
no run folder behind: options and ``--out`` -> the config (validated) -> the device -> the
data (every pair read once; bad pairs named, or skipped with ``skip_bad``) -> the held-out split
-> the polar dataset -> the process group (under torchrun) -> training.
"""

from __future__ import annotations

from pathlib import Path

from ivus_sim.device import resolve_device
from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import check_seed
from ivus_sim.training.card import checkout_command, corpus_command, train_command
from ivus_sim.training.config import load_train_config
from ivus_sim.training.data import check_pairs, data_fingerprint, discover, make_dataset
from ivus_sim.training.distributed import dist_info, process_group
from ivus_sim.training.holdout import split_holdout
from ivus_sim.training.trainer import Trainer, TrainResult

__all__ = ["train", "STAGE_CHOICES"]

STAGE_CHOICES = {"1": (1,), "2": (2,), "both": (1, 2)}


def train(config: str | Path, data: str | Path, out: str | Path, *, resume: bool = False, stage: str = "both",
          device: str = "auto", seed: int = 0, progress: bool = True, command: str | None = None,
          stop_after: int | None = None, skip_bad: bool = False) -> TrainResult:
    """Train a TwoStageAAE.

    Args:
        config: shipped config name (``smoke``, ``cpu_default``, ``gpu``) or YAML path.
        data: the data folder (any layout of :mod:`ivus_sim.training.data`).
        out: the run folder.
        resume: continue the run in ``out`` exactly where its checkpoint left it.
        stage: ``"1"``, ``"2"`` or ``"both"``.
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: the run seed (``0 <= seed < 2**63``).
        progress: progress bars.
        command: the reproducing command for the model card (default: built from these arguments).
        stop_after: stop at this global step without final outputs (tests / time-boxed runs).
        skip_bad: train without the pairs that cannot be read (listed on the card) instead of refusing.
    """
    if stage not in STAGE_CHOICES:
        raise IvusSimError(f"--stage must be 1, 2 or both, got {stage!r}")
    check_seed(seed, "--seed")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise IvusSimError(f"--out {out} is an existing file; give a folder for the run")
    cfg = load_train_config(config)
    dev = resolve_device(device)
    rank, _ = dist_info()
    refs = discover(data, cfg.data.layout)
    if cfg.data.limit is not None:
        refs = refs[: cfg.data.limit]
    refs, skipped = check_pairs(refs, skip_bad=skip_bad, progress=progress and rank == 0)
    if skipped and rank == 0:
        import sys

        for msg in skipped:
            print(f"skipped: {msg}", file=sys.stderr)
    train_refs, held_out = split_holdout(refs, cfg.evaluate, seed)
    fingerprint = data_fingerprint(train_refs)  # what is trained on (another held-out split is other data)
    layouts = sorted({r.layout.value for r in refs})
    description = f"{len(train_refs)} pairs from {Path(data).resolve()} (layout {', '.join(layouts)})"
    corpus = Path(data) / "corpus.json"
    if corpus.exists():
        description += f"; synthetic corpus: {corpus.read_text().strip()}"
    cmd = command if command is not None else train_command(config, data, out, seed=seed, stage=stage,
                                                            device=device, skip_bad=skip_bad)
    commands = [c for c in (checkout_command(), corpus_command(data), cmd) if c]
    info: dict[str, object] = {"pairs_used": [r.name for r in train_refs],
                               "pairs_held_out": [r.name for r in held_out], "pairs_skipped": skipped}
    if cfg.evaluate.holdout_fraction > 0 and not held_out:
        info["holdout_note"] = (f"no pairs held out: {len({r.image for r in refs})} image file(s), and at least "
                                f"evaluate.min_train={cfg.evaluate.min_train} pairs must stay for training")
    dataset = make_dataset(train_refs, (cfg.model.n_angles, cfg.model.n_samples), cfg.data.target,
                           progress=progress and rank == 0, interp=cfg.model.scan_conversion)
    with process_group(dev):
        trainer = Trainer(cfg, dataset, out, stages=STAGE_CHOICES[stage], device=dev, seed=seed,
                          data_description=description, data_fingerprint=fingerprint, command=cmd,
                          commands=commands, progress=progress, holdout=held_out, data_info=info)
        return trainer.fit(resume=resume, stop_after=stop_after)
