"""CLI: ``ivus-sim generate`` (phantoms -> IVUS images) and ``ivus-sim explore`` (latent sweeps).

Thin shell over :class:`ivus_sim.simulator.Simulator`: argument parsing, output planning (file
names, overwrite protection before anything is written) and writing through :mod:`ivus_sim.io`
(atomic, one JSON sidecar per image).
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ivus_sim.cli._common import handles_errors
from ivus_sim.errors import IvusSimError

if TYPE_CHECKING:
    import numpy as np

    from ivus_sim.phantom import Phantom
    from ivus_sim.simulator import GenerationResult, Simulator


class OutputFormat(str, Enum):
    """Image file format of ``generate``."""

    AUTO = "auto"  # PNG for single frames, NIfTI for pullbacks
    PNG = "png"
    NIFTI = "nifti"
    BOTH = "both"


class EngineChoice(str, Enum):
    """Generator behind ``generate``."""

    LEARNED = "learned"
    PHYSICS = "physics"


_SINGLE_FILE_SUFFIXES = (".png", ".nii", ".nii.gz")


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


class PrecisionChoice(str, Enum):
    """Arithmetic of the learned networks (see :class:`ivus_sim.simulator.Precision`)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


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


def _make_simulator(engine: EngineChoice, model: Path | None, preset: str, device: str,
                    precision: PrecisionChoice = PrecisionChoice.AUTO) -> Simulator:
    from ivus_sim.simulator import Simulator

    if engine is EngineChoice.PHYSICS:
        if model is not None:
            raise IvusSimError("--model loads a learned model; it cannot be combined with --engine physics")
        return Simulator.physics(preset=preset, device=device)
    if model is not None:
        return Simulator.from_run(model, device=device, precision=precision.value)
    return Simulator.default(device=device, precision=precision.value)


def _is_single_file_target(out: Path) -> bool:
    return any(out.name.lower().endswith(s) for s in _SINGLE_FILE_SUFFIXES)


def _stage_to_uint8(a: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Float stage -> uint8 for saving, with the ``[lo, hi]`` range mapped onto 0..255."""
    import numpy as np

    lo, hi = float(np.min(a)), float(np.max(a))
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    scale = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.clip(np.floor(scale * 255 + 0.5), 0, 255).astype(np.uint8), [lo, hi]


class _Plan:
    """Output files of one image: main files, frame PNGs, stage files, the sidecar."""

    def __init__(self, base: Path, fmt: OutputFormat, frames: int, stages: list[str]) -> None:
        self.base = base
        png = fmt in (OutputFormat.PNG, OutputFormat.BOTH) or (fmt is OutputFormat.AUTO and frames == 1)
        nii = fmt in (OutputFormat.NIFTI, OutputFormat.BOTH) or (fmt is OutputFormat.AUTO and frames > 1)
        self.png = png
        self.nifti = nii
        self.frames = frames
        self.stages = stages
        self.files: list[Path] = []
        if nii:
            self.files.append(self._p("", ".nii.gz"))
        if png:
            self.files += [self._p("", ".png")] if frames == 1 else [self._p(f"_f{f:04d}", ".png")
                                                                    for f in range(frames)]
        for s in stages:
            if nii:
                self.files.append(self._p(f"_{s}", ".nii.gz"))
            if png:
                self.files += [self._p(f"_{s}", ".png")] if frames == 1 else [
                    self._p(f"_{s}_f{f:04d}", ".png") for f in range(frames)]
        self.sidecar = base.with_name(base.name + ".json")

    def _p(self, tag: str, suffix: str) -> Path:
        return self.base.with_name(self.base.name + tag + suffix)

    def all(self) -> list[Path]:
        return [*self.files, self.sidecar]

    def existing(self) -> list[Path]:
        """Planned files that exist, plus any existing ``<base>_*`` file (e.g. stages named by the engine)."""
        found = {p for p in self.all() if p.exists()}
        if self.base.parent.is_dir():
            found |= {p for p in self.base.parent.glob(self.base.name + "_*") if p.suffix in (".png", ".gz")}
        return sorted(found)


def _write_image(plan: _Plan, tag: str, data: np.ndarray, pixel_mm: float, frame_mm: float) -> list[str]:
    from ivus_sim.io import save_nifti, save_png

    written: list[str] = []
    if plan.nifti:
        p = plan._p(tag, ".nii.gz")
        save_nifti(p, data, pixel_mm=pixel_mm, frame_mm=frame_mm)
        written.append(p.name)
    if plan.png:
        if data.ndim == 2:
            p = plan._p(tag, ".png")
            save_png(p, data)
            written.append(p.name)
        else:
            for f, frame in enumerate(data):
                p = plan._p(f"{tag}_f{f:04d}", ".png")
                save_png(p, frame)
                written.append(p.name)
    return written


def _command_line(phantom_path: str, args: dict[str, Any]) -> str:
    parts = ["ivus-sim", "generate", "--phantom", phantom_path]
    for k, v in args.items():
        if v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        parts += [flag] if v is True else [flag, str(v)]
    return shlex.join(parts)


def _write_result(res: GenerationResult, plans: list[_Plan], ph: Phantom, repro: dict[str, Any],
                  save_stages: bool) -> int:
    from ivus_sim.io import write_json

    frame_mm = float(ph.meta.get("frame_mm", 1.0)) if isinstance(ph.meta, dict) else 1.0
    pixel_mm = ph.geometry.pixel_mm
    for k, plan in enumerate(plans):
        rec = dict(res.records[k])
        files = _write_image(plan, "", res.images[k], pixel_mm, frame_mm)
        stage_info: dict[str, Any] = {}
        if save_stages:
            for name, arr in res.stages.items():
                u8, rng = _stage_to_uint8(arr[k])
                stage_info[name] = {"files": _write_image(plan, f"_{name}", u8, pixel_mm, frame_mm),
                                    "value_range": rng}
        rec["files"] = {"image": files, **({"stages": stage_info} if stage_info else {})}
        rec["regenerate"] = {**repro, "note": f"image index {rec['index']} of the command below; "
                                              "or Simulator.regenerate(sidecar, phantom)"}
        write_json(plan.sidecar, rec)
    return len(plans)


@handles_errors
def generate(
    phantom: Annotated[Path, typer.Option("--phantom", help="Phantom file (sketch PNG/JPEG, label PNG/TIFF, NIfTI, "
                                          ".npy) or a folder of them.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (or a single .png/.nii.gz file for one image "
                                      "of one phantom).")] = Path("generated"),
    n: Annotated[int, typer.Option("--n", min=1, max=10000, help="Images per phantom.")] = 4,
    seed: Annotated[int, typer.Option("--seed", min=0, help="The one seed of every random draw.")] = 0,
    z: Annotated[str | None, typer.Option("--z", help="Fixed latent code 'z1..,z2..' (d1+d2 values; or d1 "
                                          "values to fix z1 only); default: drawn from the prior.")] = None,
    size: Annotated[int, typer.Option("--size", min=32, max=2048, help="Working image side in pixels "
                                      "(256 or 512 typical).")] = 256,
    fov_mm: Annotated[float | None, typer.Option("--fov-mm", help="Field-of-view diameter in mm (default: "
                                                 "NIfTI header, else 10).")] = None,
    save_stages: Annotated[bool, typer.Option("--save-stages", help="Also write intermediate stages "
                                              "(learned: stage-1 mean intensity).")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="png, nifti, both, or auto (PNG for single "
                                              "frames, NIfTI for pullbacks).")] = OutputFormat.AUTO,
    model: Annotated[Path | None, typer.Option("--model", help="A trained run folder, weights folder or "
                                               ".safetensors file instead of the embedded default.")] = None,
    engine: Annotated[EngineChoice, typer.Option("--engine", help="learned (default model or --model) or "
                                                 "physics (stage-0 engine).")] = EngineChoice.LEARNED,
    preset: Annotated[str, typer.Option("--preset", help="Physics engine transducer preset (name or YAML "
                                        "path).")] = "20mhz",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "auto",
    precision: Annotated[PrecisionChoice, typer.Option("--precision", help="Learned networks' arithmetic: auto "
                                                       "(bf16 where the hardware has it natively), fp32, bf16.")
                         ] = PrecisionChoice.AUTO,
    threads: Annotated[int, typer.Option("--threads", help=_THREADS_HELP)] = 1,
) -> None:
    """Simulate IVUS images from phantoms (the embedded learned model by default)."""
    with _threads(threads):
        _generate(phantom, out, n, seed, z, size, fov_mm, save_stages, fmt, model, engine, preset, overwrite, device,
                  precision)


def _generate(phantom: Path, out: Path, n: int, seed: int, z: str | None, size: int, fov_mm: float | None,
              save_stages: bool, fmt: OutputFormat, model: Path | None, engine: EngineChoice, preset: str,
              overwrite: bool, device: str, precision: PrecisionChoice) -> None:
    from tqdm import tqdm

    from ivus_sim.phantom.reader import list_phantom_files, read_phantom

    # 1. read and validate every input before anything is written
    files = list_phantom_files(phantom)
    single_target = _is_single_file_target(out)
    if single_target and (len(files) != 1 or n != 1):
        raise IvusSimError(f"--out {out} names one file; use a folder for {len(files)} phantom(s) x --n {n} images")
    phantoms = [read_phantom(f, size=size, fov_mm=fov_mm) for f in files]
    code = parse_code(z) if z is not None else None
    if code is not None and engine is EngineChoice.PHYSICS:
        raise IvusSimError("--z sets a latent code of the learned model; the physics engine has none")
    if out.exists() and not out.is_dir() and not single_target:
        raise IvusSimError(f"--out {out} exists and is not a folder")

    # 2. the generator (fails cleanly, e.g. when no default model is shipped)
    sim = _make_simulator(engine, model, preset, device, precision)
    stage_names = ["mean"] if (save_stages and sim.engine.value == "learned") else []

    # 3. plan every output file and refuse to clobber before writing anything
    plans: list[list[_Plan]] = []
    for f, ph in zip(files, phantoms):
        if single_target:
            name = out.name
            stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(name).stem
            suffix_fmt = OutputFormat.PNG if name.lower().endswith(".png") else OutputFormat.NIFTI
            plans.append([_Plan(out.with_name(stem), suffix_fmt, ph.n_frames, stage_names)])
        else:
            stem = f.name[: -len(".nii.gz")] if f.name.lower().endswith(".nii.gz") else f.stem
            plans.append([_Plan(out / f"{stem}_seed{seed}_{i:03d}", fmt, ph.n_frames, stage_names)
                          for i in range(n)])
    clashes = [p for ps in plans for plan in ps for p in plan.existing()]
    if clashes and not overwrite:
        more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
        raise IvusSimError(f"{clashes[0]} exists{more}; pass --overwrite to replace")
    seen: set[Path] = set()
    for ps in plans:
        for plan in ps:
            for p in plan.all():
                if p in seen:
                    raise IvusSimError(f"two inputs would write the same file {p}; rename one of the phantoms")
                seen.add(p)

    # 4. generate and write (atomic per file)
    total = 0
    bar = tqdm(list(zip(files, phantoms, plans)), desc="generate", unit="phantom", disable=len(files) < 2,
               file=sys.stderr)
    for f, ph, ps in bar:
        res = sim.generate(ph, n=n, seed=seed, z=code, return_stages=save_stages)
        if save_stages and sim.engine.value == "physics":
            for plan in ps:
                plan.stages = list(res.stages)
        repro = {"command": _command_line(str(f.resolve()), {
            "n": n, "seed": seed, "z": z, "size": size, "fov_mm": fov_mm, "engine": engine.value,
            "model": str(model.resolve()) if model else None,
            "preset": preset if engine is EngineChoice.PHYSICS else None, "format": fmt.value,
            "save_stages": save_stages, "device": device,
            "precision": precision.value if engine is EngineChoice.LEARNED else None}),
            "phantom_path": str(f.resolve()), "size": size}
        total += _write_result(res, ps, ph, repro, save_stages)
    where = out if single_target else f"{out}/"
    typer.echo(f"wrote {total} image(s) from {len(files)} phantom(s) to {where} ({sim.engine.value} engine, "
               f"model {sim.model_id})")


@handles_errors
def explore(
    phantom: Annotated[Path, typer.Option("--phantom", help="One phantom file (a pullback uses --frame).")],
    out: Annotated[Path, typer.Option("--out", help="Output PNG (a JSON sidecar is written beside it).")] = Path(
        "explore.png"),
    grid: Annotated[int, typer.Option("--grid", min=2, max=32, help="Grid side (manifold sweep) or number of "
                                      "interpolation steps.")] = 8,
    dims: Annotated[str, typer.Option("--dims", help="Two latent dimensions to sweep, indices into [z1, z2].")
                    ] = "0,1",
    interpolate: Annotated[tuple[str, str] | None, typer.Option(
        "--interpolate", help="Two codes 'a1,a2,..' 'b1,b2,..' (d1+d2 values each): interpolate instead of "
        "sweeping.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the fixed stage-2 noise maps.")] = 0,
    size: Annotated[int, typer.Option("--size", min=32, max=2048, help="Tile side in pixels.")] = 128,
    fov_mm: Annotated[float | None, typer.Option("--fov-mm", help="Field-of-view diameter in mm.")] = None,
    frame: Annotated[int, typer.Option("--frame", min=0, help="Frame of a pullback phantom.")] = 0,
    model: Annotated[Path | None, typer.Option("--model", help="A trained run/weights instead of the embedded "
                                               "default.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "auto",
    precision: Annotated[PrecisionChoice, typer.Option("--precision", help="auto, fp32 or bf16.")
                         ] = PrecisionChoice.AUTO,
    threads: Annotated[int, typer.Option("--threads", help=_THREADS_HELP)] = 1,
) -> None:
    """Sweep the latent manifold (a grid over two latent dimensions) or interpolate between two codes."""
    with _threads(threads):
        _explore(phantom, out, grid, dims, interpolate, seed, size, fov_mm, frame, model, overwrite, device, precision)


def _explore(phantom: Path, out: Path, grid: int, dims: str, interpolate: tuple[str, str] | None, seed: int,
             size: int, fov_mm: float | None, frame: int, model: Path | None, overwrite: bool, device: str,
             precision: PrecisionChoice) -> None:
    from ivus_sim.io import check_writable, save_png, sidecar_path, write_json
    from ivus_sim.phantom.reader import read_phantom

    if out.suffix.lower() != ".png":
        raise IvusSimError(f"--out must be a .png file, got {out}")
    check_writable(out, overwrite)
    check_writable(sidecar_path(out), overwrite)
    ph = read_phantom(phantom, size=size, fov_mm=fov_mm)
    dim_vals = parse_code(dims, "--dims")
    if len(dim_vals) != 2 or not all(float(v).is_integer() for v in dim_vals):
        raise IvusSimError(f"--dims: expected two integer indices like 0,1, got {dims!r}")
    codes = (parse_code(interpolate[0], "--interpolate"), parse_code(interpolate[1], "--interpolate")) \
        if interpolate else None
    sim = _make_simulator(EngineChoice.LEARNED, model, "20mhz", device, precision)
    if codes is not None:
        res = sim.interpolate(ph, codes[0], codes[1], steps=grid, seed=seed, frame=frame)
    else:
        res = sim.explore(ph, grid=grid, dims=(int(dim_vals[0]), int(dim_vals[1])), seed=seed, frame=frame)
    save_png(out, res.mosaic())
    write_json(sidecar_path(out), {**res.record, "codes": res.codes, "phantom_path": str(phantom.resolve()),
                                   "size": size, "tile_shape": list(res.images.shape)})
    kind = f"{grid}-step interpolation" if codes else f"{grid}x{grid} sweep of dims {dims}"
    typer.echo(f"wrote {out} ({kind}, model {sim.model_id})")


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``explore`` to the root app."""
    app.command("generate")(generate)
    app.command("explore")(explore)
