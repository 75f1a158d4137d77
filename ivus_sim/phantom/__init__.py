"""Phantoms: tissue label maps on the shared geometry (reading, making, converting, previewing)."""

from ivus_sim.phantom.phantom import Phantom, finalise_labels, validate_labels
from ivus_sim.phantom.random import (
    PhantomParams,
    RandomPhantomConfig,
    phantom_from_meta,
    random_phantom,
    render_params,
    sample_params,
)

__all__ = [
    "Phantom",
    "PhantomParams",
    "RandomPhantomConfig",
    "finalise_labels",
    "phantom_from_meta",
    "random_phantom",
    "render_params",
    "sample_params",
    "validate_labels",
]
