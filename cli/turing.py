"""CLI: ``ivus-sim turing build|serve|analyze|power`` - the visual Turing test (reader study).

A thin shell over :mod:`ivus_sim.turing`; see docs/reader-study.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivus_sim.cli._common import handles_errors

turing_app = typer.Typer(
    name="turing",
    help="Visual Turing test: build a leakage-audited reader study, serve it to readers, analyse the answers.",
    no_args_is_help=True,
)


@turing_app.command("build")
@handles_errors
def build(
    real: Annotated[Path, typer.Option("--real", help="Folder of real images (PNG, JPEG, TIFF, BMP, .npy).")],
    fake: Annotated[Path, typer.Option("--fake", help="Folder of simulated images.")],
    out: Annotated[Path, typer.Option("--out", help="Study folder to create.")],
    pairs: Annotated[int | None, typer.Option("--pairs", help="Number of real/simulated pairs (default: all).")] = None,
    readers: Annotated[int, typer.Option("--readers", help="Number of readers (ids R01, R02, ...).")] = 3,
    reader_ids: Annotated[str | None, typer.Option("--reader-ids",
                                                   help="Comma-separated reader ids (overrides --readers).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of pairing, catch material and schedules.")] = 0,
    catch: Annotated[int, typer.Option("--catch", help="Catch trials of EACH kind per reader: obvious fake, "
                                       "real-vs-real, repeated pair with sides swapped.")] = 0,
    size: Annotated[int, typer.Option("--size", help="Side of the encoded images [pixels].")] = 256,
    block_size: Annotated[int, typer.Option("--block-size", help="Trials per block (break page between).")] = 50,
    pairing: Annotated[str, typer.Option("--pairing", help="auto (by name, else random) | name | random.")] = "auto",
    intensity: Annotated[str, typer.Option("--intensity", help="Display-range normalisation applied to every "
                                           "image: none | minmax | percentile.")] = "none",
    auc_threshold: Annotated[float, typer.Option("--audit-auc", help="Leakage audit: flag a cue whose "
                                                 "separation max(AUC, 1-AUC) reaches this.")] = 0.75,
    audit_alpha: Annotated[float, typer.Option("--audit-alpha", help="Leakage audit: significance a cue must also "
                                               "reach.")] = 0.01,
    force: Annotated[bool, typer.Option("--force", help="Build even if the leakage audit fails (recorded).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing study folder.")] = False,
) -> None:
    """Pair, neutralise and audit the images, then write per-reader schedules and the study database."""
    from ivus_sim.errors import IvusSimError
    from ivus_sim.turing.encode import IntensityNorm
    from ivus_sim.turing.pairing import PairingMode
    from ivus_sim.turing.study import StudyConfig, build_study

    try:
        mode, norm = PairingMode(pairing), IntensityNorm(intensity)
    except ValueError as e:
        raise IvusSimError(str(e)) from None
    ids = tuple(s.strip() for s in reader_ids.split(",")) if reader_ids else None
    cfg = StudyConfig(n_pairs=pairs, n_readers=readers, reader_ids=ids, seed=seed, n_catch=catch, size=size,
                      block_size=block_size, pairing=mode, intensity=norm, auc_threshold=auc_threshold,
                      alpha=audit_alpha, force=force)
    built = build_study(real, fake, out, cfg, overwrite=overwrite)
    typer.echo(built.audit.summary())
    if not built.audit.passed:
        typer.echo("WARNING: built with --force despite the failed leakage audit (recorded in the study)", err=True)
    typer.echo(f"study written to {out}: {len(built.readers)} readers, "
               f"{next(iter(built.n_trials.values()))} trials each; run `ivus-sim turing serve {out}`")


@turing_app.command("serve")
@handles_errors
def serve(
    study: Annotated[Path, typer.Argument(help="Study folder made by `turing build`.")],
    host: Annotated[str, typer.Option("--host", help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    allow_network: Annotated[bool, typer.Option("--allow-network", help="Allow binding a non-loopback interface "
                                                "(readers on other machines; prints a warning).")] = False,
) -> None:
    """Serve the study to readers; prints one private link per reader."""
    from ivus_sim.turing.server import serve as run_server

    run_server(study, host=host, port=port, allow_network=allow_network, echo=typer.echo)


@turing_app.command("analyze")
@handles_errors
def analyze(
    study: Annotated[Path, typer.Argument(help="Study folder.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder (CSV, JSON, HTML).")],
    margin: Annotated[float, typer.Option("--margin", help="Equivalence margin around 0.5 for the TOST.")] = 0.10,
    alpha: Annotated[float, typer.Option("--alpha", help="Test level; intervals are 1 - alpha.")] = 0.05,
    n_boot: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the kappa interval.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
) -> None:
    """Statistics per reader and pooled, CSV exports (incl. iMRMC layout) and an HTML report."""
    from ivus_sim.errors import IvusSimError
    from ivus_sim.turing.analysis import analyze_study
    from ivus_sim.turing.report import write_report

    if not 0 < margin < 0.5:
        raise IvusSimError(f"--margin must be in (0, 0.5), got {margin}")
    if not 0 < alpha < 1:
        raise IvusSimError(f"--alpha must be in (0, 1), got {alpha}")
    an = analyze_study(study, margin=margin, alpha=alpha, n_boot=n_boot, seed=seed)
    paths = write_report(an, out)
    typer.echo(an.conclusion)
    typer.echo(f"report: {paths['html']}")


@turing_app.command("power")
@handles_errors
def power(
    margin: Annotated[float, typer.Option("--margin", help="Equivalence margin around 0.5.")] = 0.10,
    target: Annotated[float, typer.Option("--power", help="Target power.")] = 0.8,
    alpha: Annotated[float, typer.Option("--alpha", help="Test level.")] = 0.05,
    readers: Annotated[int, typer.Option("--readers", help="Readers, each reading every pair.")] = 1,
    icc: Annotated[float, typer.Option("--icc", help="Intra-class correlation between readers on a pair.")] = 0.0,
    detect: Annotated[float | None, typer.Option("--detect", help="Also: trials to detect this true accuracy "
                                                 "(e.g. 0.6) with the binomial test.")] = None,
    p_true: Annotated[float, typer.Option("--p-true", help="True accuracy assumed for the equivalence power.")] = 0.5,
) -> None:
    """Pairs needed for an equivalence margin (and/or a detectable accuracy), power and number of readers."""
    from ivus_sim.turing.power import plan_study

    plan = plan_study(margin=margin, power=target, alpha=alpha, readers=readers, icc=icc, detect=detect,
                      p_true=p_true)
    typer.echo(f"alpha {alpha}, power {target}, {readers} reader(s), ICC {icc} (design effect "
               f"{plan.design_effect:.3g})")
    if plan.trials_equivalence is not None:
        typer.echo(f"equivalence within 0.5 +- {margin} (true accuracy {p_true}): {plan.trials_equivalence} "
                   f"independent trials (power first reached at {plan.trials_equivalence_first}) -> "
                   f"{plan.pairs_equivalence} pairs per reader")
    if plan.trials_difference is not None:
        typer.echo(f"detect accuracy {detect} vs 0.5 (two-sided exact binomial): {plan.trials_difference} trials "
                   f"(power first reached at {plan.trials_difference_first}) -> {plan.pairs_difference} pairs per "
                   "reader")


def register(app: typer.Typer) -> None:
    """Add the ``turing`` command group to the root app."""
    app.add_typer(turing_app, name="turing")
