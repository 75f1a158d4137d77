"""Stage 2: mean intensity (+ labels, z2) -> speckled IVUS image.

Generation path (plain torch): :mod:`~ivus_sim.stage2.formation` (learned speckle formation with
the physics engine's PSF / envelope / compression), :mod:`~ivus_sim.stage2.refine` (multi-scale
residual), :mod:`~ivus_sim.stage2.decoder` (both), :mod:`~ivus_sim.stage2.model` (legacy SPADE
decoder). Training only: :mod:`~ivus_sim.stage2.discriminator` (MONAI patch GAN, import it from
there), :mod:`~ivus_sim.stage2.losses`, :mod:`~ivus_sim.stage2.calibration_losses`.
"""

from ivus_sim.stage2.decoder import PhysicsStage2Decoder
from ivus_sim.stage2.formation import ScannerParams, ScatterParamNet, form_image
from ivus_sim.stage2.losses import local_moments, speckle_statistics_loss
from ivus_sim.stage2.model import Stage2Decoder
from ivus_sim.stage2.refine import RefineNet

__all__ = [
    "PhysicsStage2Decoder",
    "RefineNet",
    "ScannerParams",
    "ScatterParamNet",
    "Stage2Decoder",
    "form_image",
    "local_moments",
    "speckle_statistics_loss",
]
