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
    mode: Annotated[str, typer.Option("--mode", help="2afc (two frames side by side: which is real?) | single "
                                      "(one frame: real or simulated? with a 1-5 rating).")] = "2afc",
    practice: Annotated[int, typer.Option("--practice", help="Practice trials with feedback before the study, "
                                          "from images used nowhere else (excluded from the analysis).")] = 0,
    consent: Annotated[Path | None, typer.Option("--consent", help="Text file shown on the consent page before "
                                                 "the instructions (default: a built-in text).")] = None,
    debrief: Annotated[Path | None, typer.Option("--debrief", help="Text file shown at the end (default: a "
                                                 "built-in text).")] = None,
) -> None:
    """Pair, neutralise and audit the images, then write per-reader schedules and the study database."""
    from ivus_sim.errors import IvusSimError
    from ivus_sim.turing.encode import IntensityNorm
    from ivus_sim.turing.modes import StudyMode
    from ivus_sim.turing.pairing import PairingMode
    from ivus_sim.turing.study import StudyConfig, build_study, read_text_file

    try:
        pair_mode, norm, study_mode = PairingMode(pairing), IntensityNorm(intensity), StudyMode(mode)
    except ValueError as e:
        raise IvusSimError(str(e)) from None
    ids = tuple(s.strip() for s in reader_ids.split(",")) if reader_ids else None
    cfg = StudyConfig(n_pairs=pairs, n_readers=readers, reader_ids=ids, seed=seed, n_catch=catch, size=size,
                      block_size=block_size, pairing=pair_mode, intensity=norm, auc_threshold=auc_threshold,
                      alpha=audit_alpha, force=force, mode=study_mode, n_practice=practice,
                      consent_text=read_text_file(consent) if consent else None,
                      debrief_text=read_text_file(debrief) if debrief else None)
    built = build_study(real, fake, out, cfg, overwrite=overwrite)
    typer.echo(built.audit.summary())
    if not built.audit.passed:
        typer.echo("WARNING: built with --force despite the failed leakage audit (recorded in the study)", err=True)
    typer.echo(f"study written to {out}: {len(built.readers)} readers, "
               f"{next(iter(built.n_trials.values()))} trials each; run `ivus-sim turing serve {out}`")
    typer.echo(f"chain head: {built.chain_head} (keep a copy outside the study; `turing analyze --anchor` "
               "checks the answer key against it)")


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
    anchor: Annotated[str | None, typer.Option("--anchor", help="A chain head kept outside the study (printed by "
                                               "`turing build` or a previous analyze); must be in the chain.")] = None,
) -> None:
    """Verify the study's integrity, then the verdict, statistics, exports (iMRMC, MRMCaov) and an HTML report.

    Exits with status 2 and one `error:` line when the integrity check fails (an answer, the
    answer key or the audit log was changed outside the server).
    """
    from ivus_sim.errors import IvusSimError
    from ivus_sim.turing.analysis import analyze_study
    from ivus_sim.turing.report import write_report

    if not 0 < margin < 0.5:
        raise IvusSimError(f"--margin must be in (0, 0.5), got {margin}")
    if not 0 < alpha < 1:
        raise IvusSimError(f"--alpha must be in (0, 1), got {alpha}")
    an = analyze_study(study, margin=margin, alpha=alpha, n_boot=n_boot, seed=seed, anchor=anchor)
    paths = write_report(an, out)
    typer.echo(f"verdict: {an.verdict.verdict if an.verdict else 'none'}")
    typer.echo(an.conclusion)
    for w in an.integrity.get("warnings", []):
        typer.echo(f"warning: {w}", err=True)
    ig = an.integrity
    typer.echo(f"integrity verified; chain head: {ig.get('head_hash')} (entry {ig.get('head_seq')})")
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


readers_app = typer.Typer(name="readers", help="Reader management: list, add, revoke (and re-issue) reader links.",
                          no_args_is_help=True)
turing_app.add_typer(readers_app, name="readers")


def _base_url(base_url: str) -> str:
    from ivus_sim.errors import IvusSimError

    if not base_url.startswith(("http://", "https://")):
        raise IvusSimError(f"--base-url must start with http:// or https://, got {base_url!r}")
    return base_url.rstrip("/")


@readers_app.command("list")
@handles_errors
def readers_list(
    study: Annotated[Path, typer.Argument(help="Study folder.")],
    base_url: Annotated[str, typer.Option("--base-url", help="Server address the links start with.")]
    = "http://127.0.0.1:8000",
) -> None:
    """One line per reader: status, progress, revoked links and the active link (to send it again)."""
    from ivus_sim.turing.readers import list_readers

    base = _base_url(base_url)
    for r in list_readers(study):
        link = f"{base}/r/{r.token}" if r.token else "-"
        typer.echo(f"{r.reader_id}\t{r.status}\t{r.n_answered}/{r.n_trials} answered\t"
                   f"{r.n_revoked_links} revoked link(s)\t{link}")


@readers_app.command("add")
@handles_errors
def readers_add(
    study: Annotated[Path, typer.Argument(help="Study folder.")],
    reader_ids: Annotated[list[str], typer.Argument(help="New reader ids.")],
    base_url: Annotated[str, typer.Option("--base-url", help="Server address the links start with.")]
    = "http://127.0.0.1:8000",
) -> None:
    """Add readers (schedules drawn as the build draws them); prints their links."""
    from ivus_sim.turing.readers import add_readers

    base = _base_url(base_url)
    for rid, token in add_readers(study, list(reader_ids)).items():
        typer.echo(f"{rid}: {base}/r/{token}")


@readers_app.command("revoke")
@handles_errors
def readers_revoke(
    study: Annotated[Path, typer.Argument(help="Study folder.")],
    reader_id: Annotated[str, typer.Argument(help="Reader id.")],
    reissue: Annotated[bool, typer.Option("--reissue", help="Give the reader a new link that continues their "
                                          "schedule.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")] = "",
    base_url: Annotated[str, typer.Option("--base-url", help="Server address the links start with.")]
    = "http://127.0.0.1:8000",
) -> None:
    """Revoke a reader's link (it gets 403 at once; answers given through it stay, flagged)."""
    from ivus_sim.turing.readers import revoke_reader

    base = _base_url(base_url)
    token = revoke_reader(study, reader_id, reissue=reissue, reason=reason)
    typer.echo(f"{reader_id}: link revoked; answers given through it stay in the study, flagged")
    if token:
        typer.echo(f"{reader_id}: {base}/r/{token}")


def register(app: typer.Typer) -> None:
    """Add the ``turing`` command group to the root app."""
    app.add_typer(turing_app, name="turing")
