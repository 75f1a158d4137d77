"""Training the two-stage AAE: data adapters (``data``), synthetic corpus (``corpus``), configs
(``config``), the trainer (``trainer``), checkpoints and released weights (``checkpoint``).

>>> from ivus_sim.training import load_model  # doctest: +SKIP
>>> model = load_model("runs/default", device="cpu")  # doctest: +SKIP
"""

from ivus_sim.training.checkpoint import load_model, save_model

__all__ = ["load_model", "save_model"]
