"""Stage 2: mean intensity (+ labels) -> speckled IVUS image, with its patch discriminator."""

from ivus_sim.stage2.discriminator import ConditionalPatchDiscriminator, make_adversarial_loss
from ivus_sim.stage2.losses import local_moments, speckle_statistics_loss
from ivus_sim.stage2.model import Stage2Decoder

__all__ = [
    "ConditionalPatchDiscriminator",
    "Stage2Decoder",
    "local_moments",
    "make_adversarial_loss",
    "speckle_statistics_loss",
]
