"""CLI: ``ivus-sim simulate``: phantoms -> IVUS images with the stage-0 physics engine.

Thin shell over :class:`ivus_sim.physics.PhysicsSimulator`: argument parsing, output planning
(file names, overwrite protection before anything is written) and writing through
:mod:`ivus_sim.io` (atomic, a JSON sidecar per image from which it can be regenerated).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ivus_sim.cli._common import handles_errors

if TYPE_CHECKING:
    import numpy as np

    from ivus_sim.phantom import Phantom
    from ivus_sim.physics import PhysicsSimulator


class SimFormat(str, Enum):
    """Image file format of ``simulate``."""

    PNG = "png"
    NIFTI = "nifti"
    BOTH = "both"


#: frames simulated per batch (bounded memory for long pullbacks)
BATCH = 16


def _stage_png(name: str, a: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """8-bit rendering of one scan-converted stage for teaching (``(N, N)`` float -> uint8)."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    if name in ("echogenicity", "log"):
        out = a
    elif name in ("scatterers", "rf"):  # signed: grey = 0
        scale = float(np.percentile(np.abs(a[inside]), 99.5)) if inside.any() else 1.0
        out = 0.5 + 0.5 * a / max(scale, 1e-12)
    else:  # envelope, tgc: amplitude, linear up to the 99.5th percentile
        scale = float(np.percentile(a[inside], 99.5)) if inside.any() else 1.0
        out = a / max(scale, 1e-12)
    img = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
    img[~inside] = 0
    return img


def _stem(ph: Phantom) -> str:
    """Output stem of a phantom: its file name without the extension."""
    stem = Path(ph.source).name
    for suf in (".nii.gz", ".nii", ".png", ".npy", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        if stem.lower().endswith(suf):
            return stem[: -len(suf)]
    return stem


def _plan(phantoms: list[Phantom], out: Path, fmt: SimFormat, polar: bool, stages: bool) -> list[list[Path]]:
    """Every file each phantom will produce (checked for overwrite before anything is written)."""
    from ivus_sim.io import sidecar_path
    from ivus_sim.physics import STAGES

    plans = []
    for ph in phantoms:
        stem = _stem(ph)
        files: list[Path] = []
        if fmt in (SimFormat.NIFTI, SimFormat.BOTH):
            files += [out / f"{stem}.nii.gz", sidecar_path(out / f"{stem}.nii.gz")]
        for k in range(ph.n_frames):
            base = stem if ph.n_frames == 1 else f"{stem}_f{k:04d}"
            if fmt in (SimFormat.PNG, SimFormat.BOTH):
                files += [out / f"{base}.png", out / f"{base}.json"]
            elif ph.n_frames == 1:
                files.append(out / f"{base}.json")
            if polar:
                files.append(out / f"{base}_polar.png")
            if stages:
                files += [out / f"{base}_stage_{s}.png" for s in STAGES]
        plans.append(list(dict.fromkeys(files)))
    return plans


def _write_phantom_outputs(sim: PhysicsSimulator, ph: Phantom, out: Path, seed: int, first_index: int,
                           fmt: SimFormat, polar: bool, stages: bool, nurd: bool | None, command: str) -> int:
    """Simulate every frame of one phantom and write its files; returns the number of frames."""
    import numpy as np

    from ivus_sim.geometry import fov_mask
    from ivus_sim.io import save_nifti, save_png, write_json

    stem = _stem(ph)
    want_png = fmt in (SimFormat.PNG, SimFormat.BOTH)
    want_nifti = fmt in (SimFormat.NIFTI, SimFormat.BOTH)
    images = []
    sidecars: dict[str, dict] = {}
    run_params: dict = {}
    inside = fov_mask(ph.geometry.size)
    for b0 in range(0, ph.n_frames, BATCH):
        frames = ph.labels[b0:b0 + BATCH]
        res = sim.simulate(frames, seed=seed, fov_mm=ph.geometry.fov_mm, return_stages=stages, nurd=nurd,
                           first_index=first_index + b0)
        run_params = res.params
        images.append(res.image)
        for j in range(len(frames)):
            k = b0 + j
            base = stem if ph.n_frames == 1 else f"{stem}_f{k:04d}"
            written: list[str] = []
            if want_png:
                save_png(out / f"{base}.png", res.image[j])
                written.append(f"{base}.png")
            if polar:
                save_png(out / f"{base}_polar.png", (res.polar[j] * 255).round().astype(np.uint8))
                written.append(f"{base}_polar.png")
            if stages:
                for name, arr in res.stages.items():
                    save_png(out / f"{base}_stage_{name}.png", _stage_png(name, arr[j], inside))
                    written.append(f"{base}_stage_{name}.png")
            sidecars[f"{base}.json"] = {
                "kind": "ivus_sim.physics", "command": command, "outputs": written, "phantom": ph.to_dict(),
                "frame": k,
                "params": {**res.params, "first_index": first_index + k, "images": [res.params["images"][j]]},
                "regenerate": "PhysicsSimulator.from_params(params).regenerate(labels[frame], params)",
            }
    if want_nifti:
        save_nifti(out / f"{stem}.nii.gz", np.concatenate(images), ph.geometry.pixel_mm,
                   float(ph.meta.get("frame_mm", 1.0)))
        if ph.n_frames == 1:  # one sidecar (stem.json) describes the PNG and the NIfTI of a single frame
            sidecars[f"{stem}.json"]["outputs"].insert(0, f"{stem}.nii.gz")
        else:
            sidecars[f"{stem}.json"] = {
                "kind": "ivus_sim.physics", "command": command, "outputs": [f"{stem}.nii.gz"],
                "phantom": ph.to_dict(), "frames": ph.n_frames,
                "params": {**run_params, "first_index": first_index, "images": None},
                "regenerate": "PhysicsSimulator.from_params(params).simulate(labels, seed=params['seed'], "
                              "fov_mm=params['geometry']['fov_mm'], first_index=params['first_index'])",
            }
    for name, meta in sidecars.items():
        if want_png or name == f"{stem}.json":
            write_json(out / name, meta)
    return ph.n_frames


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the root app."""

    @app.command("simulate", no_args_is_help=True)
    @handles_errors
    def simulate_cmd(
        phantom: Annotated[Path, typer.Option("--phantom", help="Phantom file (sketch, label PNG, NIfTI, .npy) or a "
                                                                "folder of them.")],
        out: Annotated[Path, typer.Option("--out", help="Output folder (one image + JSON sidecar per frame).")],
        preset: Annotated[str, typer.Option("--preset", help="Transducer preset: 20mhz, 40mhz or a YAML file.")]
        = "20mhz",
        tissues: Annotated[Path | None, typer.Option("--tissues", help="Tissue acoustics YAML (default: the "
                                                                       "shipped table).")] = None,
        seed: Annotated[int, typer.Option("--seed", min=0, help="Seed; frame i of the run uses stream "
                                                                "(seed, 'physics', i).")] = 0,
        size: Annotated[int | None, typer.Option("--size", min=8, help="Output side in pixels (default: the "
                                                                       "phantom's own size).")] = None,
        polar: Annotated[bool, typer.Option("--polar", help="Also write the polar (A-line x depth) image.")] = False,
        save_stages: Annotated[bool, typer.Option("--save-stages", help="Also write each pipeline stage as a PNG "
                                                                         "(echogenicity, scatterers, RF, envelope, "
                                                                         "TGC, log) for teaching.")] = False,
        fmt: Annotated[SimFormat, typer.Option("--format", help="png: one PNG per frame; nifti: one volume per "
                                                                "phantom (spacing in mm); both.")] = SimFormat.PNG,
        nurd: Annotated[bool | None, typer.Option("--nurd/--no-nurd", help="Non-uniform rotational distortion "
                                                                            "(default: the preset's).",
                                                  show_default=False)] = None,
        device: Annotated[str, typer.Option("--device", help="torch device: cpu or cuda.")] = "cpu",
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
        progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    ) -> None:
        """Simulate IVUS images from phantoms with the physics engine (pseudo B-mode, stage 0).

        Each image gets a JSON sidecar with the preset, tissue table, seed and sampled parameters,
        from which it is regenerated bit for bit.

        Example: ivus-sim simulate --phantom phantoms/ --out sim/ --preset 20mhz --seed 1 --save-stages
        """
        import shlex
        import sys

        from tqdm import tqdm

        from ivus_sim.config import load_preset, load_tissue_acoustics
        from ivus_sim.errors import IvusSimError
        from ivus_sim.io import check_writable
        from ivus_sim.phantom import list_phantom_files, read_phantom
        from ivus_sim.physics import PhysicsSimulator

        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise IvusSimError("--device cuda: no CUDA device is available")
        elif device != "cpu":
            raise IvusSimError(f"--device: expected cpu or cuda, got {device!r}")
        sim = PhysicsSimulator(load_preset(preset), load_tissue_acoustics(tissues), device=device)
        files = list_phantom_files(phantom)
        phantoms = [read_phantom(f, size=size) for f in files]
        plans = _plan(phantoms, out, fmt, polar, save_stages)
        for plan in plans:
            for p in plan:
                check_writable(p, overwrite)
        command = "ivus-sim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        total = sum(ph.n_frames for ph in phantoms)
        index = 0
        with tqdm(total=total, desc="simulate", unit="img", disable=not progress) as bar:
            for ph in phantoms:
                n = _write_phantom_outputs(sim, ph, out, seed, index, fmt, polar, save_stages, nurd, command)
                index += n
                bar.update(n)
        typer.echo(f"wrote {total} image(s) from {len(phantoms)} phantom(s) to {out} "
                   f"(preset {sim.preset.name}, seed {seed})")


__all__ = ["SimFormat", "register"]
