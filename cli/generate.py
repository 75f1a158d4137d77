"""CLI: ``ivus-sim generate`` (phantoms -> IVUS images) and ``ivus-sim explore`` (latent sweeps).

Thin shells: options are parsed here; output planning, resume/overwrite checks, atomic writes,
sidecars and the reproducing command are :mod:`ivus_sim.outputs`; images come from
:class:`ivus_sim.simulator.Simulator`. Everything that can be checked (inputs, ``--out``, existing
outputs) is checked before the model is loaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ivus_sim.cli._common import ProgressOption, SeedOption, handles_errors
from ivus_sim.engines import Engine
from ivus_sim.errors import IvusSimError
from ivus_sim.outputs import ImageFormat

if TYPE_CHECKING:
    from ivus_sim.simulator import Simulator

#: single-file outputs ``generate`` can write
_FILE_SUFFIXES = (".png", ".nii.gz", ".nii")
_PRECISIONS = ("auto", "fp32", "bf16")


def parse_code(text: str, option: str = "--z") -> list[float]:
    """``"0.3,-1.2,..."`` -> floats (one-line error naming the option otherwise)."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise IvusSimError(f"{option}: expected comma-separated numbers, got {text!r}")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise IvusSimError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if not all(v == v and abs(v) != float("inf") for v in vals):
        raise IvusSimError(f"{option}: values must be finite numbers, got {text!r}")
    return vals


@contextlib.contextmanager
def _threads(threads: int) -> Iterator[None]:
    """Torch CPU threads for the command (``threads >= 1``; 0 keeps torch's default), restored afterwards."""
    import torch

    if threads < 0:
        raise IvusSimError(f"--threads must be >= 0, got {threads}")
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_THREADS_HELP = ("CPU threads (0: all cores). 1 is fastest for a few images and on a busy machine; "
                 "for large batches on idle cores try 2+, or run one process per core.")


def _learned_identity(model: Path | None, device: str, precision: str) -> dict[str, Any]:
    """Model identity, device and precision of a learned request, without loading the model."""
    from ivus_sim.device import resolve_device, resolve_precision
    from ivus_sim.simulator.learned import model_key

    dev = resolve_device(device)
    return {"model": model_key(model), "device_type": dev.type,
            "precision": resolve_precision(precision, dev).value}


def _make_simulator(engine: Engine, model: Path | None, preset: str, device: str, precision: str) -> Simulator:
    from ivus_sim.simulator import Simulator

    if engine is Engine.PHYSICS:
        return Simulator.physics(preset=preset, device=device)
    if model is not None:
        return Simulator.from_run(model, device=device, precision=precision)
    return Simulator.default(device=device, precision=precision)


@handles_errors
def generate(
    phantom: Annotated[Path, typer.Option("--phantom", help="Phantom file (sketch PNG/JPEG, label PNG/TIFF, NIfTI, "
                                          ".npy) or a folder of them.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder, or one .png/.nii.gz file where one image of one "
                                      "phantom is made.")] = Path("generated"),
    n: Annotated[int, typer.Option("--n", min=1, max=10000, help="Images per phantom.")] = 4,
    seed: SeedOption = 0,
    z: Annotated[str | None, typer.Option("--z", help="Fixed latent code 'z1..,z2..' (d1+d2 values; or d1 "
                                          "values to fix z1 only); default: drawn from the prior.")] = None,
    size: Annotated[int, typer.Option("--size", min=32, max=2048, help="Working image side [px] "
                                      "(256 or 512 typical).")] = 256,
    fov_mm: Annotated[float | None, typer.Option("--fov-mm", help="Field-of-view diameter [mm] (default: "
                                                 "NIfTI header, else 10).")] = None,
    save_stages: Annotated[bool, typer.Option("--save-stages", help="Also write intermediate stages "
                                              "(learned: stage-1 mean intensity; physics: every stage).")] = False,
    fmt: Annotated[ImageFormat, typer.Option("--format", help="png, nifti, both, or auto (PNG for single "
                                             "frames, NIfTI for pullbacks).")] = ImageFormat.AUTO,
    model: Annotated[Path | None, typer.Option("--model", help="A trained run folder, model folder or "
                                               ".safetensors file instead of the embedded default.")] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="learned (default model or --model) or "
                                           "physics (stage-0 engine, as ivus-sim simulate).")] = Engine.LEARNED,
    preset: Annotated[str, typer.Option("--preset", help="Physics engine transducer preset (name or YAML "
                                        "path).")] = "20mhz",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files made by another "
                                            "request (an identical rerun resumes without it).")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="Learned networks' arithmetic: auto (bf16 where "
                                           "the hardware has it natively), fp32 or bf16.")] = "auto",
    threads: Annotated[int, typer.Option("--threads", help=_THREADS_HELP)] = 1,
    progress: ProgressOption = True,
) -> None:
    """Simulate IVUS images from phantoms (the embedded learned model by default).

    Rerunning the same command completes an interrupted run (finished images are kept); a
    different request into the same file names needs --overwrite.
    """
    with _threads(threads):
        _generate(phantom, out, n, seed, z, size, fov_mm, save_stages, fmt, model, engine, preset, overwrite,
                  device, precision, progress)


def _generate(phantom: Path, out: Path, n: int, seed: int, z: str | None, size: int, fov_mm: float | None,
              save_stages: bool, fmt: ImageFormat, model: Path | None, engine: Engine, preset: str,
              overwrite: bool, device: str, precision: str, progress: bool) -> None:
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
    from ivus_sim.phantom.reader import list_phantom_files, read_phantom

    # 1. options, --out and every input, before anything is loaded or written
    if engine is Engine.PHYSICS and model is not None:
        raise IvusSimError("--model loads a learned model; it cannot be combined with --engine physics")
    if precision not in _PRECISIONS:
        raise IvusSimError(f"--precision must be one of {', '.join(_PRECISIONS)}, got {precision!r}")
    code = parse_code(z) if z is not None else None
    if code is not None and engine is Engine.PHYSICS:
        raise IvusSimError("--z sets a latent code of the learned model; the physics engine has none")
    files = list_phantom_files(phantom)
    target = resolve_out(out, len(files) * n, suffixes=_FILE_SUFFIXES)
    if target.kind is OutKind.FILE and fmt not in (ImageFormat.AUTO, ImageFormat.PNG if target.suffix == ".png"
                                                   else ImageFormat.NIFTI):
        raise IvusSimError(f"--out {out} names one {target.suffix} file; --format {fmt.value} cannot write it there")
    phantoms = [read_phantom(f, size=size, fov_mm=fov_mm) for f in files]
    if target.kind is OutKind.FILE and target.suffix == ".png" and phantoms[0].n_frames > 1:
        raise IvusSimError(f"--out {out} names one PNG, but {files[0].name} is a pullback of {phantoms[0].n_frames} "
                           "frames; give a folder or a .nii.gz file")

    # 2. what makes each image (compared with existing sidecars: resume / overwrite), without loading a model
    if engine is Engine.PHYSICS:
        from ivus_sim.device import resolve_device
        from ivus_sim.simulator.physics import preset_key

        ident: dict[str, Any] = {"preset": preset_key(preset), "device_type": resolve_device(device).type}
        stage_names: tuple[str, ...] = ()
        if save_stages:
            from ivus_sim.physics import STAGES

            stage_names = tuple(STAGES)
    else:
        ident = _learned_identity(model, device, precision)
        stage_names = ("mean",) if save_stages else ()
    file_fmt = ImageFormat.PNG if target.suffix == ".png" else ImageFormat.NIFTI
    jobs, commands = [], []
    for f, ph in zip(files, phantoms, strict=True):
        if target.kind is OutKind.FILE:
            bases = [target.base]
            layout = ImageLayout.for_format(file_fmt, ph.n_frames, stages=stage_names)
        else:
            bases = [target.path / f"{input_stem(f)}_seed{seed}_{i:03d}" for i in range(n)]
            layout = ImageLayout.for_format(fmt, ph.n_frames, stages=stage_names)
        request = {"command": "generate", "engine": engine.value, **ident, "seed": seed, "z": code,
                   "size": size, "fov_mm": ph.geometry.fov_mm, "format": fmt.value, "save_stages": save_stages}
        jobs.append(ImageJob(ph, bases, request, layout))
        commands.append(reproducing_command("generate", {
            "phantom": f.resolve(), "out": out.resolve(), "n": n, "seed": seed, "z": z, "size": size,
            "fov_mm": fov_mm, "engine": engine.value, "model": model.resolve() if model else None,
            "preset": preset if engine is Engine.PHYSICS else None, "format": fmt.value,
            "save_stages": save_stages, "device": device,
            "precision": precision if engine is Engine.LEARNED else None}))
    plan = plan_images(jobs)
    todo = plan.check(overwrite)
    where = out if target.kind is OutKind.FILE else f"{out}/"
    if not todo:
        typer.echo(f"nothing to do: all {len(plan.done)} image(s) are already in {where} (same request)")
        return

    # 3. the generator, then generate and write (atomic; sidecar before image)
    sim = _make_simulator(engine, model, preset, device, precision)
    wrote = write_images(sim, jobs, seed=seed, commands=commands, z=code, progress=progress and len(todo) > 1,
                         extra={"note": "image `index` of `command`; or Simulator.regenerate(sidecar, phantom)"})
    kept = f"; kept {len(plan.done)} finished" if plan.done else ""
    typer.echo(f"wrote {wrote} image(s) from {len(files)} phantom(s) to {where} ({sim.engine.value} engine, "
               f"model {sim.model_id}){kept}")


@handles_errors
def explore(
    phantom: Annotated[Path, typer.Option("--phantom", help="One phantom file (a pullback uses --frame).")],
    out: Annotated[Path, typer.Option("--out", help="Output PNG (a JSON sidecar is written beside it), or a "
                                      "folder (<phantom>_explore.png inside).")] = Path("explore.png"),
    grid: Annotated[int, typer.Option("--grid", min=2, max=32, help="Grid side (manifold sweep) or number of "
                                      "interpolation steps.")] = 8,
    dims: Annotated[str, typer.Option("--dims", help="Two latent dimensions to sweep, indices into [z1, z2].")
                    ] = "0,1",
    interpolate: Annotated[tuple[str, str] | None, typer.Option(
        "--interpolate", help="Two codes 'a1,a2,..' 'b1,b2,..' (d1+d2 values each): interpolate instead of "
        "sweeping.")] = None,
    seed: SeedOption = 0,
    size: Annotated[int, typer.Option("--size", min=32, max=2048, help="Tile side [px].")] = 128,
    fov_mm: Annotated[float | None, typer.Option("--fov-mm", help="Field-of-view diameter [mm].")] = None,
    frame: Annotated[int, typer.Option("--frame", min=0, help="Frame of a pullback phantom.")] = 0,
    model: Annotated[Path | None, typer.Option("--model", help="A trained run/weights instead of the embedded "
                                               "default.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output made by another "
                                            "request.")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="auto, fp32 or bf16.")] = "auto",
    threads: Annotated[int, typer.Option("--threads", help=_THREADS_HELP)] = 1,
) -> None:
    """Sweep the latent manifold (a grid over two latent dimensions) or interpolate between two codes.

    The stage-2 noise is fixed by --seed, so only the swept code changes across tiles.
    """
    with _threads(threads):
        _explore(phantom, out, grid, dims, interpolate, seed, size, fov_mm, frame, model, overwrite, device, precision)


def _explore(phantom: Path, out: Path, grid: int, dims: str, interpolate: tuple[str, str] | None, seed: int,
             size: int, fov_mm: float | None, frame: int, model: Path | None, overwrite: bool, device: str,
             precision: str) -> None:
    from ivus_sim.outputs import (
        OutKind,
        OutputPlan,
        PlannedOutput,
        input_stem,
        make_sidecar,
        png_writer,
        reproducing_command,
        resolve_out,
        write_output,
    )
    from ivus_sim.phantom.reader import read_phantom

    if precision not in _PRECISIONS:
        raise IvusSimError(f"--precision must be one of {', '.join(_PRECISIONS)}, got {precision!r}")
    target = resolve_out(out, 1, suffixes=(".png",))
    dest = target.path if target.kind is OutKind.FILE else target.path / f"{input_stem(phantom)}_explore.png"
    ph = read_phantom(phantom, size=size, fov_mm=fov_mm)
    dim_vals = parse_code(dims, "--dims")
    if len(dim_vals) != 2 or not all(float(v).is_integer() for v in dim_vals):
        raise IvusSimError(f"--dims: expected two integer indices like 0,1, got {dims!r}")
    codes = (parse_code(interpolate[0], "--interpolate"), parse_code(interpolate[1], "--interpolate")) \
        if interpolate else None
    request = {"command": "explore", **_learned_identity(model, device, precision), "phantom_hash": ph.hash(),
               "frame": frame, "grid": grid, "seed": seed,
               **({"interpolate": list(codes)} if codes else {"dims": [int(v) for v in dim_vals]})}
    item = PlannedOutput(dest.with_suffix(".json"), [dest], request)
    if not OutputPlan([item]).check(overwrite):
        typer.echo(f"nothing to do: {dest} is already there (same request)")
        return
    sim = _make_simulator(Engine.LEARNED, model, "20mhz", device, precision)
    if codes is not None:
        res = sim.interpolate(ph, codes[0], codes[1], steps=grid, seed=seed, frame=frame)
    else:
        res = sim.explore(ph, grid=grid, dims=(int(dim_vals[0]), int(dim_vals[1])), seed=seed, frame=frame)
    command = reproducing_command("explore", {
        "phantom": phantom.resolve(), "out": out.resolve(), "grid": grid,
        "dims": None if codes else dims, "interpolate": list(interpolate) if interpolate else None, "seed": seed,
        "size": size, "fov_mm": fov_mm, "frame": frame, "model": model.resolve() if model else None,
        "device": device, "precision": precision})
    record = {**res.record, "codes": res.codes, "phantom_path": str(phantom.resolve()), "size": size,
              "tile_shape": list(res.images.shape)}
    write_output(item, {dest: png_writer(res.mosaic())}, make_sidecar(item, record, command, {"image": [dest.name]}))
    kind = f"{grid}-step interpolation" if codes else f"{grid}x{grid} sweep of dims {dims}"
    typer.echo(f"wrote {dest} ({kind}, model {sim.model_id})")


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``explore`` to the root app."""
    app.command("generate")(generate)
    app.command("explore")(explore)
