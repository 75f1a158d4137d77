"""ivus-sim: simulate intravascular ultrasound (IVUS) images from tissue phantoms.

Data flow: phantom (label map) -> physics (stage 0) or stage 1 (mean intensity) ->
stage 2 (speckle + PSF) -> image. See ``docs/architecture.md``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "Simulator"]


def __getattr__(name: str) -> Any:  # lazy: keep `import ivus_sim` light for the CLI
    if name == "Simulator":
        from ivus_sim.simulator import Simulator

        return Simulator
    raise AttributeError(name)
