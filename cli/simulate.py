"""CLI: ``ivus-sim simulate``: phantoms -> IVUS images with the stage-0 physics engine.

A thin shell over the same path as ``ivus-sim generate --engine physics`` (one image per phantom,
:class:`ivus_sim.simulator.Simulator` with the physics backend, outputs through
:mod:`ivus_sim.outputs`), so both commands give identical pixels for the same phantom and seed.
``simulate`` adds the teaching outputs: every pipeline stage, the polar image, the tissue table
and NURD switches. File names: ``<out>/<phantom name>.png`` (``_f0000.png``... for a pullback,
``.nii.gz`` with ``--format nifti``), ``<name>_stage_<stage>.png``, ``<name>_polar.png`` and one
sidecar ``<name>.json`` per phantom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivus_sim.cli._common import ProgressOption, SeedOption, handles_errors
from ivus_sim.errors import IvusSimError
from ivus_sim.outputs import ImageFormat

_FILE_SUFFIXES = (".png", ".nii.gz", ".nii")


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the root app."""

    @app.command("simulate", no_args_is_help=True)
    @handles_errors
    def simulate_cmd(
        phantom: Annotated[Path, typer.Option("--phantom", help="Phantom file (sketch, label PNG, NIfTI, .npy) or a "
                                                                "folder of them.")],
        out: Annotated[Path, typer.Option("--out", help="Output folder (one image + JSON sidecar per phantom), or one "
                                                        ".png/.nii.gz file for one single-frame phantom.")],
        preset: Annotated[str, typer.Option("--preset", help="Transducer preset: 20mhz, 40mhz or a YAML file.")]
        = "20mhz",
        tissues: Annotated[Path | None, typer.Option("--tissues", help="Tissue acoustics YAML (default: the "
                                                                       "shipped table).")] = None,
        seed: SeedOption = 0,
        size: Annotated[int | None, typer.Option("--size", min=8, help="Output side [px] (default: the "
                                                                       "phantom's own size).")] = None,
        polar: Annotated[bool, typer.Option("--polar", help="Also write the polar (A-line x depth) image.")] = False,
        save_stages: Annotated[bool, typer.Option("--save-stages", help="Also write each pipeline stage as a PNG "
                                                                         "(echogenicity, scatterers, RF, envelope, "
                                                                         "TGC, log) for teaching.")] = False,
        fmt: Annotated[ImageFormat, typer.Option("--format", help="png (one PNG per frame), nifti (one volume per "
                                                                  "phantom, spacing in mm), both, or auto.")]
        = ImageFormat.PNG,
        nurd: Annotated[bool | None, typer.Option("--nurd/--no-nurd", help="Non-uniform rotational distortion "
                                                                            "(default: the preset's).",
                                                  show_default=False)] = None,
        device: Annotated[str, typer.Option("--device", help="torch device: cpu, cuda, cuda:N or auto.")] = "cpu",
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files made by another "
                                                                    "request (an identical rerun resumes).")] = False,
        progress: ProgressOption = True,
    ) -> None:
        """Simulate IVUS images from phantoms with the physics engine (pseudo B-mode, stage 0).

        Same pixels as ivus-sim generate --engine physics --n 1 with the same seed. Each image gets
        a JSON sidecar with the preset, tissue table, seed and sampled parameters, from which it is
        regenerated bit for bit.

        Example: ivus-sim simulate --phantom phantoms/ --out sim/ --preset 20mhz --seed 1 --save-stages
        """
        from ivus_sim.config import load_preset, load_tissue_acoustics
        from ivus_sim.device import resolve_device
        from ivus_sim.outputs import (
            ImageJob,
            ImageLayout,
            OutKind,
            input_stem,
            plan_images,
            reproducing_command,
            resolve_out,
            write_images,
        )
        from ivus_sim.phantom import list_phantom_files, read_phantom
        from ivus_sim.physics import STAGES
        from ivus_sim.simulator import Simulator
        from ivus_sim.simulator.physics import preset_key

        dev = resolve_device(device)
        load_preset(preset)  # fail on a bad preset / tissue table before reading or writing anything
        load_tissue_acoustics(tissues)
        files = list_phantom_files(phantom)
        target = resolve_out(out, len(files), suffixes=_FILE_SUFFIXES)
        phantoms = [read_phantom(f, size=size) for f in files]
        if target.kind is OutKind.FILE and phantoms[0].n_frames > 1 and target.suffix == ".png":
            raise IvusSimError(f"--out {out} names one PNG, but {files[0].name} is a pullback of "
                               f"{phantoms[0].n_frames} frames; give a folder or a .nii.gz file")
        stages = tuple(STAGES) if save_stages else ()
        file_fmt = ImageFormat.PNG if target.suffix == ".png" else ImageFormat.NIFTI
        jobs, commands = [], []
        for f, ph in zip(files, phantoms, strict=True):
            if target.kind is OutKind.FILE:
                base, layout = target.base, ImageLayout.for_format(file_fmt, ph.n_frames, stages=stages, polar=polar)
            else:
                base, layout = out / input_stem(f), ImageLayout.for_format(fmt, ph.n_frames, stages=stages, polar=polar)
            request = {"command": "simulate", "engine": "physics", "preset": preset_key(preset, tissues),
                       "nurd": nurd, "device_type": dev.type, "seed": seed, "size": ph.geometry.size,
                       "fov_mm": ph.geometry.fov_mm, "format": fmt.value, "save_stages": save_stages, "polar": polar}
            jobs.append(ImageJob(ph, [base], request, layout))
            commands.append(reproducing_command("simulate", {
                "phantom": f.resolve(), "out": out.resolve(), "preset": preset,
                "tissues": tissues.resolve() if tissues else None, "seed": seed, "size": size, "polar": polar,
                "save_stages": save_stages, "format": fmt.value, "--nurd": nurd is True, "--no-nurd": nurd is False,
                "device": device}))
        plan = plan_images(jobs)
        if not plan.check(overwrite):
            typer.echo(f"nothing to do: all {len(plan.done)} image(s) are already in {out} (same request)")
            return
        sim = Simulator.physics(preset, device=dev, tissues=tissues, nurd=nurd)
        wrote = write_images(sim, jobs, seed=seed, commands=commands, progress=progress)
        kept = f"; kept {len(plan.done)} finished" if plan.done else ""
        typer.echo(f"wrote {wrote} image(s) from {len(phantoms)} phantom(s) to {out} "
                   f"(preset {sim.describe()['preset']}, seed {seed}){kept}")


__all__ = ["register"]
