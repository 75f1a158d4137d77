"""Stage 1: label map -> mean intensity (echogenicity), and its training targets."""

from ivus_sim.stage1.model import Stage1Decoder
from ivus_sim.stage1.targets import despeckle
from ivus_sim.stage1.transmission import LearnedTransmission

__all__ = ["LearnedTransmission", "Stage1Decoder", "despeckle"]
