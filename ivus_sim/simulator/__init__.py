"""The generation API, one concept per module:

* :mod:`~ivus_sim.simulator.api`: :class:`Simulator` (constructors, ``generate``, ``regenerate``);
* :mod:`~ivus_sim.simulator.learned`: the learned backend (calls ``TwoStageAAE.render_polar``);
* :mod:`~ivus_sim.simulator.physics`: the physics backend (the stage-0 engine; one stream convention);
* :mod:`~ivus_sim.simulator.latent`: slerp and smooth per-frame paths along pullbacks;
* :mod:`~ivus_sim.simulator.explore`: latent manifold sweeps and interpolations;
* :mod:`~ivus_sim.simulator.results`: :class:`GenerationResult`, :class:`GridResult`.

``from ivus_sim.simulator import Simulator`` (or ``from ivus_sim import Simulator``) is the entry point.
"""

from __future__ import annotations

from ivus_sim.device import Precision, resolve_device, resolve_precision
from ivus_sim.engines import Engine
from ivus_sim.image import to_uint8
from ivus_sim.simulator.api import Simulator
from ivus_sim.simulator.latent import DEFAULT_FRAMES_PER_CODE, n_anchors, path_at, slerp, smooth_path
from ivus_sim.simulator.results import GenerationResult, GridResult

__all__ = [
    "Engine",
    "Precision",
    "GenerationResult",
    "GridResult",
    "Simulator",
    "DEFAULT_FRAMES_PER_CODE",
    "resolve_device",
    "resolve_precision",
    "slerp",
    "smooth_path",
    "path_at",
    "n_anchors",
    "to_uint8",
]
