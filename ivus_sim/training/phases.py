"""The optimisation phases of one training step: which optimiser steps on which named losses.

A :class:`Phase` names an optimiser, the parameters it steps, whether it takes the
discriminator learning rate, and a function ``losses(batch, ctx) -> {name: loss}`` that runs the
model. The trainer is generic over them: it calls each phase in order, weights the named losses
with ``train.loss_weights`` (unknown names: the model's ``default_loss_weights()`` when it has
one, else 1), sums them, and steps that phase's optimiser. ``ctx`` carries what later phases of
the same step reuse (codes, the fake image), ``ctx["generator"]``, the run's torch generator
for noise and prior draws, and ``ctx["unweighted"]``, the loss names weighted 0 (optional losses
a phase need not compute).

A model may define its own phases with a method ``training_phases(stages) -> list[Phase]``;
otherwise :func:`aae_phases` adapts the two-stage AAE's loss methods (the AAE phases of
docs/training.md):

stage 1: ``g1`` (encoder 1 + decoder 1: ``s1_rec``), ``latent_d1`` (``s1_latent_d``),
``e1`` (encoder 1: ``s1_latent_e``);
stage 2: ``g2`` (encoder 2 + decoder 2: ``s2_rec``, ``s2_stats``, ``s2_adv_g`` and whatever else
``stage2_reconstruction`` returns), ``patch_d`` (``s2_patch_d``), ``latent_d2`` (``s2_latent_d``),
``e2`` (encoder 2: ``s2_latent_e``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
from torch import nn

__all__ = ["Phase", "Stage2Mean", "aae_phases", "model_phases", "loss_weight"]

Losses = dict[str, torch.Tensor]


class Stage2Mean(str, Enum):
    """The mean image stage 2 is conditioned on in training (``train.stage2_mean``).

    * ``target``: the stage-1 *target* (the despeckled real image; teacher forcing), so the two
      stages train independently. The target keeps part of its frame's own texture (a blur of a
      few samples), which stage 1, generating from labels and z1, cannot reproduce: stage 2 learns to
      add less contrast than it must add at generation (on the hidden scanners' frames the generated
      images' tissue std was 5-10 % below the scanner's, half of it this gap).
    * ``generated``: stage 1's own output for the batch's labels with a prior z1 (no gradient into
      stage 1), as at generation. Fit for losses that compare statistics (``s2_texture``,
      ``s2_hist``); ``s2_rec`` and ``s2_stats`` compare with the target pixel by pixel and no
      longer line up with it.
    """

    TARGET = "target"
    GENERATED = "generated"


@dataclass
class Phase:
    """One optimiser and the losses it minimises.

    Args:
        name: optimiser name (checkpoint key), e.g. ``"g1"``.
        params: the parameters this optimiser steps.
        discriminator: use ``train.lr_d`` (else ``train.lr``).
        losses: ``(batch, ctx) -> {name: scalar loss}``; may store tensors in ``ctx`` for later phases.
    """

    name: str
    params: list[nn.Parameter]
    discriminator: bool
    losses: Callable[[dict[str, torch.Tensor], dict[str, Any]], Losses]


def aae_phases(model: Any, stages: Sequence[int], stage2_mean: Stage2Mean = Stage2Mean.TARGET) -> list[Phase]:
    """The phases of :class:`ivus_sim.two_stage.TwoStageAAE` built from its named-loss methods.

    ``stage2_mean``: what stage 2 is conditioned on (:class:`Stage2Mean`); with ``generated`` every
    stage-2 phase of the step sees the batch with its ``mean`` replaced by stage 1's output.
    """
    m = model

    def stage2_batch(batch: dict[str, torch.Tensor], ctx: dict[str, Any]) -> dict[str, torch.Tensor]:
        if stage2_mean is Stage2Mean.TARGET:
            return batch
        if ctx.get("batch2") is None:
            lab = batch["labels"]
            with torch.no_grad():
                z1 = m.sample_prior(lab.shape[0], m.config.z1_dim, ctx.get("generator"))
                ctx["batch2"] = {**batch, "mean": m.decode1(lab, z1).detach()}
        out: dict[str, torch.Tensor] = ctx["batch2"]
        return out

    out: list[Phase] = []
    if 1 in stages:
        def g1(batch: dict[str, torch.Tensor], ctx: dict[str, Any]) -> Losses:
            rec, ctx["z1"] = m.stage1_reconstruction(batch)
            return dict(rec)

        out += [
            Phase("g1", [*m.encoder1.parameters(), *m.stage1.parameters()], False, g1),
            Phase("latent_d1", list(m.latent_d1.parameters()), True,
                  lambda batch, ctx: m.latent_discriminator_losses(1, ctx["z1"], ctx.get("generator"))),
            Phase("e1", list(m.encoder1.parameters()), False,
                  lambda batch, ctx: m.encoder_regularisation_losses(1, batch)),
        ]
    if 2 in stages:
        def g2(batch: dict[str, torch.Tensor], ctx: dict[str, Any]) -> Losses:
            lab = batch["labels"]
            shape = (lab.shape[-2], lab.shape[-1])
            noise = m.noise(lab.shape[0], ctx.get("generator"), shape=shape)
            skip = ctx.get("unweighted") or ()
            # the second, independent draw for s2_diversity: the same white noise moved by half a
            # window in angle and flipped in depth (no pixel keeps its value; iid noise stays iid),
            # so it costs no random numbers and the run's streams do not depend on the weight
            want2 = shape[0] > 1 and "s2_diversity" not in skip
            noise2 = noise.roll(shape[0] // 2, dims=-2).flip(-1) if want2 else None
            rec, ctx["z2"], ctx["fake"] = m.stage2_reconstruction(stage2_batch(batch, ctx), noise, skip=skip,
                                                                  noise2=noise2)
            return dict(rec)

        out += [
            Phase("g2", [*m.encoder2.parameters(), *m.stage2.parameters()], False, g2),
            Phase("patch_d", list(m.patch_d.parameters()), True,
                  lambda batch, ctx: m.patch_discriminator_losses(stage2_batch(batch, ctx), ctx["fake"].detach())),
            Phase("latent_d2", list(m.latent_d2.parameters()), True,
                  lambda batch, ctx: m.latent_discriminator_losses(2, ctx["z2"], ctx.get("generator"))),
            Phase("e2", list(m.encoder2.parameters()), False,
                  lambda batch, ctx: m.encoder_regularisation_losses(2, stage2_batch(batch, ctx))),
        ]
    return out


def model_phases(model: Any, stages: Sequence[int], stage2_mean: Stage2Mean = Stage2Mean.TARGET) -> list[Phase]:
    """``model.training_phases(stages)`` when the model defines it, else :func:`aae_phases`."""
    own = getattr(model, "training_phases", None)
    if callable(own) and stage2_mean is not Stage2Mean.TARGET:
        raise ValueError("train.stage2_mean applies to the two-stage AAE's own phases only")
    phases = list(own(tuple(stages))) if callable(own) else aae_phases(model, stages, stage2_mean)
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate phase names {names}")  # programming error
    return phases


def loss_weight(name: str, configured: dict[str, float], model_defaults: dict[str, float], default: float) -> float:
    """Weight of loss ``name``: the config's, else the model's documented default, else ``default``."""
    if name in configured:
        return float(configured[name])
    return float(model_defaults.get(name, default))
