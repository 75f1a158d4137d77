"""Phantoms: tissue label maps on the shared geometry (reading, making, converting, previewing)."""

from ivus_sim.phantom.converters import (
    VHPalette,
    challenge_frame_to_phantom,
    convert_challenge_folder,
    convert_vh,
    vh_image_to_phantom,
)
from ivus_sim.phantom.phantom import Phantom, finalise_labels, validate_labels
from ivus_sim.phantom.random import (
    PhantomParams,
    RandomPhantomConfig,
    phantom_from_meta,
    random_phantom,
    render_params,
    sample_params,
)
from ivus_sim.phantom.reader import list_phantom_files, read_phantom, read_phantoms, snap_to_palette, write_phantom
from ivus_sim.phantom.render import render_preview

__all__ = [
    "Phantom",
    "PhantomParams",
    "RandomPhantomConfig",
    "VHPalette",
    "challenge_frame_to_phantom",
    "convert_challenge_folder",
    "convert_vh",
    "finalise_labels",
    "list_phantom_files",
    "phantom_from_meta",
    "random_phantom",
    "read_phantom",
    "read_phantoms",
    "render_params",
    "render_preview",
    "sample_params",
    "snap_to_palette",
    "validate_labels",
    "vh_image_to_phantom",
    "write_phantom",
]
