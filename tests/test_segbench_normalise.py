"""The segmentation benchmark's input normalisation (``benchmarks/segmentation_benchmark.py``).

``--normalise histeq`` claims the network input does not change under a display change that is a
monotonic grey-level map clipping nothing (gain, dynamic range, gamma): checked here, with ties
(the black outside the field of view) sharing one value.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch


@pytest.fixture(scope="module")
def sb(benchmark_module: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_module("segmentation_benchmark")


def _frames(n: int = 3, levels: int = 128) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, levels, (n, 1, 24, 24), generator=g).float()
    x[:, :, :6] = 0  # a constant band, like the black outside the field of view
    return x


def test_histeq_is_invariant_to_a_monotonic_display_map(sb):
    x = _frames()  # grey levels 0..127
    lut = torch.sqrt(torch.arange(128.0) / 127.0) * 255.0  # a strictly increasing map onto 0..255 (a gamma 0.5)
    assert torch.all(lut.round().diff() > 0)  # injective after rounding: no two levels merge
    y = lut.round()[x.long()]
    a, b = sb._histeq(x / 255.0), sb._histeq(y / 255.0)
    assert torch.allclose(a, b)
    # a plain z-score is not invariant to it
    assert not torch.allclose(sb._zscore(x / 255.0), sb._zscore(y / 255.0), atol=1e-2)


def test_histeq_gives_mid_ranks_with_ties_shared(sb):
    x = _frames(n=1)
    h = sb._histeq(x / 255.0)[0, 0]
    flat, out = x.flatten(), h.flatten()
    for v in (0.0, float(flat.max())):
        sel = flat == v
        assert torch.all(out[sel] == out[sel][0])  # one value per grey level
        below, tied = float((flat < v).sum()), float(sel.sum())
        assert out[sel][0].item() == pytest.approx((below + tied / 2) / flat.numel())  # its mid-rank
    order = torch.argsort(flat)
    assert torch.all(out[order].diff() >= 0)  # order kept
    p = sb._prepare(x / 255.0, "histeq")
    assert p.mean().abs() < 1e-5 and (p.std() - 1).abs() < 1e-3
    with pytest.raises(sb.IvusSimError):
        sb._prepare(x, "minmax")
