"""Phantoms: tissue label maps on the shared geometry (reading, making, converting, previewing)."""

from ivus_sim.phantom.phantom import Phantom, finalise_labels, validate_labels

__all__ = ["Phantom", "finalise_labels", "validate_labels"]
