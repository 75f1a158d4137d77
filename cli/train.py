"""CLI: ``ivus-sim train`` and ``ivus-sim corpus`` (thin shells over :mod:`ivus_sim.training`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivus_sim.cli._common import ProgressOption, SeedOption, handles_errors


def register(app: typer.Typer) -> None:
    """Add the ``train`` and ``corpus`` commands to the root app."""

    @app.command("train")
    @handles_errors
    def train_cmd(
        config: Annotated[str, typer.Option(help="Training config: own_data (your pairs), smoke, cpu_default, gpu, "
                                                 "or a YAML path.")],
        data: Annotated[Path, typer.Option(help="Folder of training pairs (see docs/training.md for layouts).")],
        out: Annotated[Path, typer.Option(help="Run folder: checkpoints, logs, sample grids, model/.")],
        resume: Annotated[bool, typer.Option(help="Continue the run in --out exactly after its last checkpoint.")]
        = False,
        stage: Annotated[str, typer.Option(help="Stages to train: 1, 2 or both.")] = "both",
        device: Annotated[str, typer.Option(help="auto (CUDA if present), cpu or cuda.")] = "auto",
        seed: SeedOption = 0,
        progress: ProgressOption = True,
        skip_bad: Annotated[bool, typer.Option(help="Train without the pairs that cannot be read (listed) "
                                                    "instead of refusing the data.")] = False,
    ) -> None:
        """Train the two-stage conditional adversarial autoencoder on paired data.

        Every pair is read before training starts; a bad file is named in one line (exit 2).
        train.max_steps in the config decides the run length. At the end the model is measured on
        pairs held out from training (evaluate.holdout_fraction): holdout_realism.json and the card.
        """
        from ivus_sim.training.holdout import FEW_PAIRS
        from ivus_sim.training.run import train

        res = train(config, data, out, resume=resume, stage=stage, device=device, seed=seed, progress=progress,
                    skip_bad=skip_bad)
        if res.model_dir is not None:
            msg = f"trained {res.step} steps; model: {res.model_dir}"
            c2st = ((res.holdout or {}).get("c2st") or {}).get("accuracy")
            if c2st is not None:
                n = (res.holdout or {}).get("n_pairs")
                msg += f"; held-out C2ST accuracy {c2st:.3f} (0.5 = indistinguishable) on {n} pairs"
                if isinstance(n, int) and n < FEW_PAIRS:
                    msg += " (few pairs: reads optimistic; see the notes in holdout_realism.json)"
            typer.echo(msg)

    @app.command("corpus")
    @handles_errors
    def corpus_cmd(
        n: Annotated[int, typer.Option("--n", help="Number of pairs.")],
        out: Annotated[Path, typer.Option(help="Output folder (resumable: existing pairs are kept).")],
        seed: SeedOption = 0,
        preset: Annotated[str, typer.Option(help="Transducer preset name or YAML path.")] = "20mhz",
        size: Annotated[int, typer.Option(help="Image side in pixels.")] = 256,
        fov_mm: Annotated[float, typer.Option(help="Field-of-view diameter in mm.")] = 10.0,
        batch: Annotated[int, typer.Option(help="Images simulated together.")] = 8,
        device: Annotated[str, typer.Option(help="Physics device: cpu or cuda.")] = "cpu",
        progress: ProgressOption = True,
    ) -> None:
        """Write a synthetic training corpus: random phantoms paired with physics-simulated images."""
        from ivus_sim.training.corpus import make_corpus

        m = make_corpus(n, out, seed=seed, preset=preset, size=size, fov_mm=fov_mm, batch=batch, device=device,
                        progress=progress)
        typer.echo(f"corpus: {m['n']} pairs in {out}")
