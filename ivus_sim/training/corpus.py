"""A synthetic training corpus: random phantoms paired with physics-simulated images.

``make_corpus(n, out, seed)`` writes pair ``i`` as ``out/<i:05d>_label.png`` (tissue ids),
``out/<i:05d>_image.png`` (the stage-0 physics image) and ``out/<i:05d>_image.json`` (a sidecar
that regenerates both), plus ``out/corpus.json`` (the recipe). Phantom ``i`` is
:func:`ivus_sim.phantom.random.random_phantom` ``(seed, index=i)`` and its image uses the physics
streams ``(seed, "physics", i)``, so every pair is independent of the others and of the batch
size: an interrupted run resumes by skipping the pairs already on disk (written through
:mod:`ivus_sim.outputs`: atomic files, the sidecar before the images, checksums verified on resume),
and ``n`` can be raised later to extend a corpus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ivus_sim.errors import IvusSimError
from ivus_sim.io import sidecar_path, write_json

__all__ = ["CORPUS_MANIFEST", "pair_paths", "make_corpus"]

CORPUS_MANIFEST = "corpus.json"


def pair_paths(out: str | Path, index: int) -> tuple[Path, Path, Path]:
    """``(label png, image png, sidecar json)`` of pair ``index``."""
    out = Path(out)
    image = out / f"{index:05d}_image.png"
    return out / f"{index:05d}_label.png", image, sidecar_path(image)


def make_corpus(n: int, out: str | Path, seed: int = 0, preset: str = "20mhz", size: int = 256,
                fov_mm: float = 10.0, batch: int = 8, device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Write (or complete) a paired corpus of ``n`` random phantoms and their physics images.

    Args:
        n: number of pairs.
        out: output folder (the ``pairs`` layout of :mod:`ivus_sim.training.data`).
        seed: the one seed (phantoms and physics).
        preset: transducer preset name or YAML path (:func:`ivus_sim.config.load_preset`).
        size: image side [pixels].
        fov_mm: field-of-view diameter [mm].
        batch: images simulated together.
        device: torch device of the physics engine.
        progress: show a progress bar.

    Returns:
        the manifest written to ``out/corpus.json``.
    """
    from tqdm.auto import tqdm

    from ivus_sim.config import load_preset
    from ivus_sim.outputs import (
        OutKind,
        OutputPlan,
        PlannedOutput,
        make_sidecar,
        png_writer,
        reproducing_command,
        resolve_out,
        write_output,
    )
    from ivus_sim.phantom.random import random_phantom
    from ivus_sim.physics import PhysicsSimulator
    from ivus_sim.physics.nurd import warp_cartesian
    from ivus_sim.seeding import check_seed
    from ivus_sim.simulator.physics import preset_key

    # every check before anything is written (the output contract of ivus_sim.outputs)
    seed = check_seed(seed, "--seed")
    if n < 1:
        raise IvusSimError(f"--n must be >= 1, got {n}")
    if size < 16:
        raise IvusSimError(f"--size must be >= 16 pixels, got {size}")
    if resolve_out(out, None).kind is OutKind.FILE:
        raise IvusSimError(f"--out {out}: a corpus is a folder of pairs; give a folder, not an image file name")
    out = Path(out)
    loaded = load_preset(preset)
    manifest = {"kind": "ivus-sim-corpus", "layout": "pairs", "seed": int(seed), "preset": str(preset),
                "size": int(size), "fov_mm": float(fov_mm),
                "phantom": "ivus_sim.phantom.random.random_phantom(seed, size=size, fov_mm=fov_mm, index=i)",
                "image": "PhysicsSimulator(load_preset(preset)).simulate(labels, seed=seed, fov_mm=fov_mm, "
                         "first_index=i).image"}
    mpath = out / CORPUS_MANIFEST
    ours = mpath.exists()
    if ours:
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError):
            raise IvusSimError(f"{mpath} is not a corpus manifest; use another --out") from None
        clash = [k for k in ("seed", "preset", "size", "fov_mm") if old.get(k) != manifest[k]]
        if clash:
            raise IvusSimError(f"{out} holds a corpus made with different {', '.join(clash)}; use another --out")
    command = reproducing_command("corpus", {"n": n, "out": out.resolve(), "seed": seed, "preset": preset,
                                             "size": size, "fov_mm": fov_mm})
    key = preset_key(preset)
    items = []
    for i in range(n):
        lab_p, img_p, side_p = pair_paths(out, i)
        items.append(PlannedOutput(side_p, [lab_p, img_p], {"command": "corpus", "seed": int(seed), "preset": key,
                                                           "size": int(size), "fov_mm": float(fov_mm), "index": i},
                                   key=i))
    plan = OutputPlan(items)
    # inside a corpus of the same recipe every pair is ours: redo what is not verifiably finished
    todo_items = plan.check(overwrite=ours, hint="use another --out")
    todo = [it.key for it in todo_items]
    by_index = {it.key: it for it in todo_items}
    out.mkdir(parents=True, exist_ok=True)
    sim = PhysicsSimulator(preset=loaded, device=device)
    bar = tqdm(total=n, initial=n - len(todo), desc="corpus", unit="pair", disable=not progress)
    try:
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            # contiguous runs share one simulate() call (stream index = pair index either way)
            runs: list[list[int]] = []
            for i in chunk:
                if runs and runs[-1][-1] == i - 1:
                    runs[-1].append(i)
                else:
                    runs.append([i])
            for run in runs:
                phantoms = [random_phantom(seed, size=size, fov_mm=fov_mm, index=i) for i in run]
                labels = np.stack([p.labels[0] for p in phantoms])
                res = sim.simulate(labels, seed=seed, fov_mm=fov_mm, first_index=run[0])
                for k, i in enumerate(run):
                    lab_p, img_p, _ = pair_paths(out, i)
                    item = by_index[i]
                    record = {"index": i, "seed": int(seed), "preset": str(preset), "size": int(size),
                              "fov_mm": float(fov_mm), "label": lab_p.name, "image": img_p.name,
                              "phantom": phantoms[k].meta,
                              "regenerate": {"phantom": manifest["phantom"], "image": manifest["image"]}}
                    # the label map as displayed: the image's NURD warp, if the preset has one
                    shown = warp_cartesian(labels[k], res.params["images"][k]["nurd"], order=0)
                    write_output(item, {lab_p: png_writer(shown),
                                        img_p: png_writer(np.asarray(res.image[k], dtype=np.uint8))},
                                 make_sidecar(item, record, command, {"label": [lab_p.name], "image": [img_p.name]}))
                    bar.update(1)
    finally:
        bar.close()
    manifest["n"] = max(int(n), int(json.loads(mpath.read_text()).get("n", 0)) if mpath.exists() else 0)
    write_json(mpath, manifest)
    return manifest
