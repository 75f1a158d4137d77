"""CLI: ``ivus-sim phantom ...``: make, convert and preview tissue phantoms (over :mod:`ivus_sim.phantom`)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ivus_sim.cli._common import ProgressOption, SeedOption, handles_errors

phantom_app = typer.Typer(
    name="phantom",
    help="Make, convert and preview tissue phantoms (label maps of tissue ids).\n\n"
    "A phantom is a square label map with the catheter at the centre and the field of view inscribed. "
    "Sketches use the colours of `ivus-sim phantom palette`; label images, NIfTI and .npy hold tissue ids.",
    no_args_is_help=True,
)


class WallTissueChoice(str, Enum):
    """Tissue between the lumen and media contours of the 2011 challenge."""

    FIBROUS = "fibrous"
    FIBRO_FATTY = "fibro_fatty"
    NECROTIC_CORE = "necrotic_core"
    DENSE_CALCIUM = "dense_calcium"


SizeOpt = Annotated[int | None, typer.Option("--size", min=8, help="Output side in pixels (nearest-neighbour "
                                                                   "resampling; default: the input's size).")]
PadOpt = Annotated[bool, typer.Option("--pad", help="Pad non-square input with background instead of refusing it.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
#: suffixes a phantom file can be written as (:func:`ivus_sim.phantom.reader.write_phantom`)
PHANTOM_SUFFIXES = (".png", ".nii.gz", ".nii", ".npy")


@phantom_app.command("random", no_args_is_help=True)
@handles_errors
def random_cmd(
    n: Annotated[int, typer.Option("--n", min=1, help="Number of phantoms to make.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for phantom_0000.png ... (+ .json sidecars); "
                                      "with --n 1 also a file name (x.png, x.nii.gz, x.npy).")],
    seed: SeedOption = 0,
    size: Annotated[int, typer.Option("--size", min=8, help="Side of the label maps in pixels.")] = 256,
    fov_mm: Annotated[float, typer.Option("--fov-mm", min=0.1, help="Field-of-view diameter in mm.")] = 10.0,
    start: Annotated[int, typer.Option("--start", min=0, help="Index of the first phantom (to extend a set).")] = 0,
    overwrite: OverwriteOpt = False,
    progress: ProgressOption = True,
) -> None:
    """Make N procedural IVUS cross-sections: lumen, plaque, calcium arcs, media, guidewire/stent/side branch.

    Each phantom_NNNN.png is an 8-bit label map of tissue ids (see `ivus-sim phantom palette`).

    Its phantom_NNNN.json sidecar holds the seed and every sampled parameter: same command, same files, bit for bit.

    Example: ivus-sim phantom random --n 100 --seed 1 --out phantoms/
    """
    from tqdm import tqdm

    from ivus_sim.io import check_writable
    from ivus_sim.outputs import OutKind, resolve_out
    from ivus_sim.phantom.random import random_phantom
    from ivus_sim.phantom.reader import write_phantom

    target = resolve_out(out, n, suffixes=PHANTOM_SUFFIXES)
    if target.kind is OutKind.FILE:
        paths = [target.path]
    else:
        paths = [out / f"phantom_{i:04d}.png" for i in range(start, start + n)]
    for p in paths:
        check_writable(p, overwrite)
    for i, p in zip(range(start, start + n), tqdm(paths, desc="phantoms", unit="phantom", disable=not progress),
                    strict=True):
        write_phantom(p, random_phantom(seed, size=size, fov_mm=fov_mm, index=i))
    typer.echo(f"wrote {n} phantom{'s' if n > 1 else ''} ({size}x{size} px, {fov_mm:g} mm FOV, seed {seed}) to "
               f"{target.path}")


@phantom_app.command("show", no_args_is_help=True)
@handles_errors
def show_cmd(
    phantom: Annotated[Path, typer.Argument(help="Sketch, label image, NIfTI or .npy phantom.")],
    out: Annotated[Path, typer.Option("--out", help="Preview PNG to write (+ a .json sidecar), or a folder to "
                                      "write <phantom name>_preview.png into.")],
    frame: Annotated[int, typer.Option("--frame", min=0, help="Frame of a pullback to show.")] = 0,
    size: SizeOpt = None,
    fov_mm: Annotated[float | None, typer.Option("--fov-mm", min=0.1, help="Field-of-view diameter in mm "
                                                 "(default: from a NIfTI header, else 10).")] = None,
    pad: PadOpt = False,
    colour_tolerance: Annotated[float, typer.Option("--colour-tolerance", min=1.0, help="RGB distance within "
                                                    "which a sketch pixel matches a palette colour.")] = 60.0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a colour preview of a phantom with a legend of the tissues present (and check that it reads).

    Example: ivus-sim phantom show examples/calcified_plaque.png --out preview.png
    """
    from ivus_sim.errors import IvusSimError
    from ivus_sim.io import check_writable, save_png, sidecar_path, write_json
    from ivus_sim.outputs import OutKind, input_stem, resolve_out
    from ivus_sim.phantom.reader import read_phantom
    from ivus_sim.phantom.render import legend_entries, render_preview

    target = resolve_out(out, 1, suffixes=(".png",))
    if target.kind is OutKind.FILE:
        out = target.path
    else:
        out = target.path / f"{input_stem(phantom)}_preview.png"
    check_writable(out, overwrite)
    check_writable(sidecar_path(out), overwrite)
    ph = read_phantom(phantom, size=size, fov_mm=fov_mm, pad=pad, colour_tolerance=colour_tolerance)
    if frame >= ph.n_frames:
        raise IvusSimError(f"--frame {frame}: {phantom} has {ph.n_frames} frame(s) (0..{ph.n_frames - 1})")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(out, render_preview(ph, frame))
    tissues = {t.name.lower(): round(f, 4) for t, f in legend_entries(ph.labels[frame])}
    write_json(sidecar_path(out), {"preview_of": ph.to_dict(), "frame": frame, "tissue_fractions": tissues})
    typer.echo(f"{phantom}: {ph.n_frames} frame(s) of {ph.geometry.size}x{ph.geometry.size} px, "
               f"{ph.geometry.fov_mm:g} mm FOV; " + ", ".join(f"{k} {v:.1%}" for k, v in tissues.items()))
    typer.echo(f"wrote {out}")


@phantom_app.command("from-challenge", no_args_is_help=True)
@handles_errors
def from_challenge_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder with frame_*.png and lum_frame_*.txt / med_frame_*.txt "
                                           "contours (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for <frame>.png label maps + .json sidecars.")],
    size: SizeOpt = None,
    fov_mm: Annotated[float, typer.Option("--fov-mm", min=0.1, help="Field-of-view diameter of the frames in mm.")]
    = 10.0,
    wall_tissue: Annotated[WallTissueChoice, typer.Option("--wall-tissue", help="Tissue between the lumen and "
                                                          "media contours.")] = WallTissueChoice.FIBROUS,
    media_ring_mm: Annotated[float, typer.Option("--media-ring-mm", min=0.0, help="Thickness of the media ring "
                                                 "drawn just inside the media (EEM) contour in mm; 0 = none.")]
    = 0.15,
    pad: PadOpt = False,
    progress: ProgressOption = True,
) -> None:
    """Convert 2011 IVUS challenge annotations (frame PNGs + lumen/media contour files) to label maps.

    Inside the lumen contour: lumen. Between the contours: --wall-tissue (default fibrous).

    A thin media ring just inside the media contour (--media-ring-mm); outside it: perivascular.

    Example: ivus-sim phantom from-challenge DatasetB/ --out phantoms/challenge
    """
    from ivus_sim.phantom.converters import convert_challenge_folder
    from ivus_sim.tissues import tissue_by_name

    _folder_out(out)
    written, skipped = convert_challenge_folder(folder, out, size=size, fov_mm=fov_mm,
                                                wall_tissue=tissue_by_name(wall_tissue.value),
                                                media_ring_mm=media_ring_mm, pad=pad, progress=progress)
    typer.echo(f"wrote {len(written)} label maps to {out}")
    if skipped:
        typer.echo(f"skipped {len(skipped)} frame(s) without both contour files, e.g. {skipped[0]}", err=True)


@phantom_app.command("from-vh", no_args_is_help=True)
@handles_errors
def from_vh_cmd(
    path: Annotated[Path, typer.Argument(help="A VH-IVUS colour map image, or a folder of them.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for <name>.png label maps + .json sidecars.")],
    size: SizeOpt = None,
    fov_mm: Annotated[float, typer.Option("--fov-mm", min=0.1, help="Field-of-view diameter of the maps in mm.")]
    = 10.0,
    colour_tolerance: Annotated[float, typer.Option("--colour-tolerance", min=1.0, help="RGB distance within "
                                                    "which a pixel matches a VH colour.")] = 60.0,
    pad: PadOpt = False,
    progress: ProgressOption = True,
) -> None:
    """Convert VH-IVUS colour-coded tissue maps to label maps.

    Colours: fibrous dark green, fibro-fatty yellow-green, necrotic core red, dense calcium white, media grey.

    Black enclosed by the vessel wall becomes lumen; black outside it becomes perivascular tissue.

    Example: ivus-sim phantom from-vh vh_maps/ --out phantoms/vh
    """
    from ivus_sim.phantom.converters import convert_vh

    _folder_out(out)
    written = convert_vh(path, out, size=size, fov_mm=fov_mm, tolerance=colour_tolerance, pad=pad,
                         progress=progress)
    typer.echo(f"wrote {len(written)} label maps to {out}")


@phantom_app.command("palette")
@handles_errors
def palette_cmd() -> None:
    """Print the tissue table: id, name, sketch colour (hex and RGB) and description."""
    from ivus_sim.tissues import TISSUES

    typer.echo(f"{'id':>3}  {'name':<14} {'colour':<8} {'rgb':<15} description")
    for t, info in TISSUES.items():
        r, g, b = info.colour
        typer.echo(f"{int(t):>3}  {info.name:<14} #{r:02x}{g:02x}{b:02x}  {f'({r},{g},{b})':<15} {info.description}")


def _folder_out(out: Path) -> None:
    """Converters write one label map per frame: ``--out`` must be a folder (the path rule of ivus_sim.outputs)."""
    from ivus_sim.errors import IvusSimError
    from ivus_sim.outputs import OutKind, resolve_out

    if resolve_out(out, None).kind is OutKind.FILE:
        raise IvusSimError(f"--out {out}: this command writes one label map per frame; give a folder")


def register(app: typer.Typer) -> None:
    """Add the ``phantom`` command group to the root app."""
    app.add_typer(phantom_app, name="phantom")
