"""Training the two-stage AAE, one module per concept.

``config`` (validated YAML -> :class:`~ivus_sim.training.config.TrainConfig`), ``data`` (dataset
adapters, the one pair reader, dataset validation, augmentation), ``corpus`` (synthetic pairs),
``phases`` (which optimiser steps on which named losses), ``trainer`` (the loop),
``distributed`` (``DistributedDataParallel`` under torchrun), ``checkpoint`` (exact resume),
``logging`` (JSONL + TensorBoard), ``plots`` (sample grid, health signal), ``holdout`` (realism on
held-out pairs), ``card`` (the model card and its reproducing commands), ``export`` (release a
generator), ``run`` (what ``ivus-sim train`` calls). Model files are :mod:`ivus_sim.modelio`.

>>> from ivus_sim.modelio import load_model  # doctest: +SKIP
>>> model = load_model("runs/default", device="cpu")  # doctest: +SKIP
"""

from ivus_sim.training.checkpoint import load_model, save_model

__all__ = ["load_model", "save_model"]
