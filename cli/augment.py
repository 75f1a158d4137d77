"""CLI: ``ivus-sim augment``, a synthetic segmentation dataset (thin shell over :mod:`ivus_sim.augment`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivus_sim.augment.engine import Engine
from ivus_sim.augment.layout import ImageFormat, Layout
from ivus_sim.cli._common import ProgressOption, SeedOption, handles_errors


@handles_errors
def augment(
    n: Annotated[int, typer.Option("--n", help="Number of image/label pairs in the dataset.")],
    out: Annotated[Path, typer.Option("--out", help="Dataset folder (created; rerun the same command to resume).")],
    model: Annotated[Path | None, typer.Option(
        "--model", help="A trained run folder or checkpoint to render with (default: the embedded model).")] = None,
    engine: Annotated[Engine, typer.Option(
        "--engine", help="learned (the default model, or --model) or physics (the stage-0 engine).")] = Engine.LEARNED,
    preset: Annotated[str, typer.Option(
        "--preset", help="Transducer preset of the physics engine (20mhz, 40mhz or a YAML file).")] = "20mhz",
    tissues: Annotated[Path | None, typer.Option(
        "--tissues", help="Tissue acoustics YAML of the physics engine (default: the shipped table); recorded in"
        " the manifest. Not with --randomise (every randomised scanner starts from the shipped table).")] = None,
    phantoms: Annotated[Path | None, typer.Option(
        "--phantoms", help="Folder of your own phantoms (cycled through) instead of random ones.")] = None,
    seed: SeedOption = 0,
    fmt: Annotated[ImageFormat, typer.Option("--format", help="File format of images and labels.")]
    = ImageFormat.NIFTI,
    layout: Annotated[Layout, typer.Option(
        "--layout", help="monai (decathlon dataset.json) or nnunet (nnU-Net v2 raw dataset).")] = Layout.MONAI,
    labels_map: Annotated[str | None, typer.Option(
        "--labels-map", help="YAML/JSON file merging tissues into task labels, or a built-in name (lumen-wall);"
        " default: tissue ids.")] = None,
    shard: Annotated[str, typer.Option(
        "--shard", help="Make only part i of k (0-based), e.g. 3/8 for a Slurm array task.")] = "0/1",
    workers: Annotated[int | None, typer.Option(
        "--workers", min=0, help="Worker processes (default: all cores; 0: in this process).")] = None,
    size: Annotated[int | None, typer.Option(
        "--size", help="Image side in pixels (default 256; with --phantoms their own size).")] = None,
    fov_mm: Annotated[float, typer.Option("--fov-mm", help="Field-of-view diameter of random phantoms [mm].")] = 10.0,
    randomise: Annotated[str | None, typer.Option(
        "--randomise", help="Scanner randomisation: a named range (scanner: coronary 20-60 MHz; wide: beyond it, for"
        " an unknown scanner) or a YAML file of ranges; every image draws its own scanner (recorded in its sidecar)."
        " See docs/augment.md.")] = None,
    device: Annotated[str, typer.Option("--device", help="Torch device of the simulator.")] = "cpu",
    progress: ProgressOption = True,
) -> None:
    """Write N synthetic IVUS images with their label maps as a segmentation dataset (MONAI or nnU-Net).

    Example: ivus-sim augment --n 1000 --out data/Dataset501_IVUS --layout nnunet --labels-map lumen-wall
    --engine physics --randomise scanner
    """
    from ivus_sim.augment.engine import EngineSpec
    from ivus_sim.augment.labels import load_label_mapping
    from ivus_sim.augment.randomise import load_ranges
    from ivus_sim.augment.run import AugmentConfig, Shard, run_augment

    spec = EngineSpec(engine=engine, preset=preset, model=model, device=device, tissues=tissues)
    config = AugmentConfig(n=n, out=out, seed=seed, engine=spec, phantoms=phantoms, size=size, fov_mm=fov_mm,
                           fmt=fmt, layout=layout,
                           labels_map=load_label_mapping(labels_map) if labels_map is not None else None,
                           randomise=load_ranges(randomise) if randomise is not None else None)
    report = run_augment(config, shard=Shard.parse(shard), workers=workers, progress=progress)
    rate = report.written / report.seconds if report.seconds > 0 else 0.0
    part = f" (shard {report.shard})" if report.shard.count > 1 else ""
    typer.echo(f"wrote {report.written} pairs{part} in {report.seconds:.1f} s ({rate:.1f}/s);"
               f" {report.existing} were already there")
    if report.complete:
        typer.echo(f"dataset complete: {report.n} pairs in {out} (dataset.json, manifest.csv)")
    else:
        typer.echo(f"{report.present}/{report.n} pairs present; dataset.json is written when all shards have"
                   " finished (or rerun without --shard to finish)")


def register(app: typer.Typer) -> None:
    """Add ``augment`` to the root app."""
    app.command("augment", no_args_is_help=True)(augment)
