"""Devices and arithmetic precision: the one place that turns a user's ``--device`` / ``--precision``
into a :class:`torch.device` and a :class:`Precision`.

Used by generation, training, evaluation and augmentation alike, so ``--device cuda`` means the
same thing (and fails with the same one-line error) in every command.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import torch

from ivus_sim.errors import IvusSimError

__all__ = ["Precision", "resolve_device", "resolve_precision"]


class Precision(str, Enum):
    """Arithmetic of the learned networks at generation time."""

    AUTO = "auto"  # BF16 where the hardware computes it natively (CPU avx512_bf16/AMX, CUDA), else FP32
    FP32 = "fp32"
    BF16 = "bf16"  # autocast to bfloat16: ~4x faster on CPUs with native bf16, <1 grey level from FP32


def _cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The device a user asked for, checked.

    Args:
        device: ``None`` / ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``. Under ``torchrun``, plain ``"cuda"`` / ``"auto"`` pick the local rank's GPU.

    Raises:
        IvusSimError: unknown device string, or CUDA requested where none is available.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and name != "cuda" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise IvusSimError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise IvusSimError(f"device {device!r} requested but CUDA is not available; use --device cpu")
        if name == "cuda":
            name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        if int(name[5:]) >= torch.cuda.device_count():
            raise IvusSimError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device(name)


def resolve_precision(precision: Precision | str, device: torch.device) -> Precision:
    """``AUTO`` -> ``BF16`` on CUDA with bf16 support or a CPU with native bf16 instructions, else ``FP32``.

    Raises:
        IvusSimError: an unknown precision name.
    """
    try:
        p = Precision(precision)
    except ValueError:
        raise IvusSimError(f"precision must be one of {[x.value for x in Precision]}, got {precision!r}") from None
    if p is not Precision.AUTO:
        return p
    if device.type == "cuda":
        return Precision.BF16 if torch.cuda.is_bf16_supported() else Precision.FP32
    if device.type == "cpu":
        return Precision.BF16 if _cpu_has_native_bf16() else Precision.FP32
    return Precision.FP32
