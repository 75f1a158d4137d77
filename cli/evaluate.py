"""CLI: ``ivus-sim evaluate``: how realistic are simulated images? (thin shell over ivus_sim.metrics)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from ivus_sim.cli._common import SeedOption, handles_errors


def register(app: typer.Typer) -> None:
    """Add the evaluate command to the root app."""
    app.command("evaluate", no_args_is_help=True)(evaluate)


@handles_errors
def evaluate(
    fake: Annotated[Path, typer.Option("--fake", help="Folder of simulated images (frame_XX_image.png or "
                                       "<name>.png).")],
    out: Annotated[Path, typer.Option("--out", help="Report folder: realism.json (every number) and "
                                      "realism.html (plots).")],
    real: Annotated[Path | None, typer.Option("--real", help="Folder of real images (frame_XX_image.png + "
                                              "frame_XX_label.png, or <name>.png with --labels).")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Folder of label maps matched by name "
                                                "(<name>_label.png or <name>.png), for either set.")] = None,
    reference_stats: Annotated[str | None, typer.Option(
        "--reference-stats", help="Reference figures JSON (format of shared/calibration/real_20mhz_vh.json) "
        "to compare the simulated images with when real images cannot be shared; 'builtin' = the shipped "
        "real 20 MHz figures. Needs labels for the simulated images.")] = None,
    seed: SeedOption = 0,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds of the classifier test "
                                       "(split by frame).")] = 4,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs of the classifier and of the "
                                        "feature encoder (half as many).")] = 15,
    patch: Annotated[int, typer.Option(min=8, help="Patch side in polar samples (multiple of 8).")] = 32,
    patches_per_frame: Annotated[int, typer.Option(min=1, help="Random patches drawn per frame.")] = 32,
    c2st: Annotated[bool, typer.Option("--c2st/--no-c2st", help="Run the classifier two-sample test.")] = True,
    features: Annotated[bool, typer.Option("--features/--no-features", help="Compute Fréchet/KID "
                                           "feature distances.")] = True,
    device: Annotated[str, typer.Option(help="Torch device for the learned metrics (cpu, cuda).")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing report in --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Measure how realistic simulated IVUS images are, against real images and/or reference figures."""
    from ivus_sim.errors import IvusSimError
    from ivus_sim.io import check_writable
    from ivus_sim.metrics.c2st import C2STConfig
    from ivus_sim.metrics.evaluate import EvaluateConfig, evaluate_folders
    from ivus_sim.metrics.features import FeatureConfig
    from ivus_sim.metrics.patches import PatchConfig
    from ivus_sim.metrics.report import REPORT_HTML, REPORT_JSON, write_report
    from ivus_sim.outputs import OutKind, resolve_out

    if real is None and reference_stats is None:
        raise IvusSimError("give --real DIR and/or --reference-stats FILE to compare the simulated images with")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise IvusSimError(f"--device {device}: no CUDA device available; use --device cpu")
    if patch % 8:
        raise IvusSimError(f"--patch must be a multiple of 8, got {patch}")
    if resolve_out(out, None).kind is OutKind.FILE:
        raise IvusSimError(f"--out {out}: evaluate writes a report folder (realism.json, realism.html); "
                           "give a folder")
    check_writable(out / REPORT_JSON, overwrite)  # fail before the (long) measurement
    check_writable(out / REPORT_HTML, overwrite)
    cfg = EvaluateConfig(
        seed=seed,
        patches=PatchConfig(patch=patch, per_frame=patches_per_frame),
        c2st=C2STConfig(folds=folds, epochs=epochs, device=device),
        features=FeatureConfig(epochs=max(1, epochs // 2), device=device),
        run_c2st=c2st,
        run_features=features,
    )
    ev = evaluate_folders(fake, real, labels, reference_stats, cfg, progress=not quiet)
    argv = ["ivus-sim", "evaluate", "--fake", str(fake), "--out", str(out)]
    for flag, value in (("--real", real), ("--labels", labels), ("--reference-stats", reference_stats)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--seed", str(seed), "--folds", str(folds), "--epochs", str(epochs), "--patch", str(patch),
             "--patches-per-frame", str(patches_per_frame), "--c2st" if c2st else "--no-c2st",
             "--features" if features else "--no-features", "--device", device]
    ev.results["command"] = shlex.join(argv)  # regenerates this report (with --overwrite)
    jp, hp = write_report(out, ev, overwrite=overwrite)
    s = ev.results["summary"]
    for key, value in s.items():
        if value is not None:
            shown = (f"{value:.4g}" if isinstance(value, float)
                     else ", ".join(f"{v:.4g}" for v in value) if isinstance(value, list) else str(value))
            typer.echo(f"{key:28s} {shown}")
    for note in ev.results["notes"]:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {jp} and {hp}")
