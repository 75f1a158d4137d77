"""Shared adversarial-autoencoder parts: priors, encoder, latent discriminator, polar layers."""

from ivus_sim.aae.condition import CONDITION_CHANNELS, N_CLASSES, label_condition, one_hot
from ivus_sim.aae.encoder import Encoder
from ivus_sim.aae.latent_discriminator import (
    EQUILIBRIUM_LOSS,
    LatentDiscriminator,
    encoder_regularisation_loss,
    latent_discriminator_loss,
)
from ivus_sim.aae.layers import FiLM, PolarConv2d, polar_pad
from ivus_sim.aae.priors import Prior

__all__ = [
    "CONDITION_CHANNELS",
    "N_CLASSES",
    "label_condition",
    "one_hot",
    "EQUILIBRIUM_LOSS",
    "Encoder",
    "FiLM",
    "LatentDiscriminator",
    "PolarConv2d",
    "Prior",
    "encoder_regularisation_loss",
    "latent_discriminator_loss",
    "polar_pad",
]
