"""Combining hidden-scanner runs over seeds (``benchmarks/hidden_scanner_seeds.py``).

Means and sds against numpy on made-up runs; control arms missing from a run (a confirmation seed run
with ``--arms trained default``) are left out of their means, never counted as 0; the target's two
arms must be in every run; two shipped defaults are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="module")
def hs(benchmark_module: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_module("hidden_scanner_seeds")


def _run(seed: int, trained: list[float], default: list[float], controls: bool = True,
         model: str = "m1") -> dict[str, Any]:
    rows = []
    for i, (t, d) in enumerate(zip(trained, default, strict=True)):
        arms: dict[str, Any] = {"trained": {"c2st": t}, "default": {"c2st": d, "generate": {"model_id": model}}}
        if controls:
            arms |= {"roundtrip": {"c2st": 0.6 + 0.01 * seed}, "floor": {"c2st": 0.5}}
        rows.append({"scanner": f"h{i + 1}", "arms": arms, "train": {"source_commit": "abc"}})
    return {"seed": seed, "rows": rows, "config": "own_data", "commit": "abc", "date": "today"}


def test_means_over_seeds_and_partial_control_arms(hs: ModuleType) -> None:
    runs = [_run(0, [0.7, 0.6, 0.8], [0.9, 0.95, 0.9]), _run(1, [0.75, 0.65, 0.6], [0.9, 0.9, 0.9]),
            _run(4, [0.8, 0.7, 0.6], [0.97, 0.9, 0.92], controls=False)]
    res = hs.combine(runs)
    per_seed = [np.mean([0.7, 0.6, 0.8]), np.mean([0.75, 0.65, 0.6]), np.mean([0.8, 0.7, 0.6])]
    assert np.allclose(res["per_seed_mean"]["trained"], per_seed)
    assert res["mean"]["trained"] == pytest.approx(np.mean(per_seed))
    assert res["sd"]["trained"] == pytest.approx(np.std(per_seed, ddof=1))
    assert res["per_seed_mean"]["roundtrip"][2] is None and res["n_seeds"]["roundtrip"] == 2
    assert res["mean"]["roundtrip"] == pytest.approx(np.mean([0.60, 0.61]))  # not dragged down by a 0
    text = hs.markdown(res, "cmd", ["a.json"])
    assert "Control arms measured in some seeds only" in text and "seeds [0, 1]" in text
    assert f"**{np.mean(per_seed):.3f} ± {np.std(per_seed, ddof=1):.3f}**" in text
    assert "-> met" in text and "every seed: yes" in text
    worse = hs.combine([_run(0, [0.8, 0.7, 0.75], [0.9, 0.9, 0.9]), _run(1, [0.7, 0.72, 0.74], [0.7, 0.7, 0.7])])
    text = hs.markdown(worse, "cmd", ["a.json"])
    assert "**not met**" in text and "every seed: no" in text and "some seeds only" not in text


def test_required_arms_and_one_default(hs: ModuleType) -> None:
    bad = _run(0, [0.7], [0.9])
    del bad["rows"][0]["arms"]["default"]
    with pytest.raises(SystemExit, match="no 'default' arm"):
        hs.combine([bad])
    with pytest.raises(SystemExit, match="different shipped defaults"):
        hs.combine([_run(0, [0.7], [0.9]), _run(1, [0.7], [0.9], model="m2")])


def test_default_arm_taken_from_an_earlier_run_of_the_same_frames(hs: ModuleType) -> None:
    def with_data(run: dict[str, Any], config: str, grey: float = 50.0) -> dict[str, Any]:
        for r in run["rows"]:
            r["request"] = {"scanner": r["scanner"], "seed": run["seed"], "config": config, "eval": ["--seed", "0"]}
            r["data"] = {"phantoms": "p", "images": "i", "mean_grey_train": grey, "mean_grey_test": grey + 1}
        return run

    old = with_data(_run(0, [0.7, 0.7], [0.91, 0.93]), "old.yaml")
    new = with_data(_run(0, [0.6, 0.65], [0.0, 0.0], controls=False), "new.yaml")
    for r in new["rows"]:
        del r["arms"]["default"]
    assert hs.take_default([new], [old]) == [0]
    res = hs.combine([new])
    assert res["table"]["default"]["h1"] == [0.91] and res["table"]["default"]["h2"] == [0.93]
    assert res["mean"]["trained"] == pytest.approx(0.625)
    # other frames (or another seed) are refused
    new2 = with_data(_run(0, [0.6, 0.65], [0.0, 0.0]), "new.yaml", grey=60.0)
    del new2["rows"][0]["arms"]["default"]
    with pytest.raises(SystemExit, match="other frames"):
        hs.take_default([new2], [old])
    new3 = with_data(_run(1, [0.6, 0.65], [0.0, 0.0]), "new.yaml")
    del new3["rows"][1]["arms"]["default"]
    with pytest.raises(SystemExit, match="no --default-from run of seed 1"):
        hs.take_default([new3], [old])


def test_control_arms_missing_from_every_run_are_said_so(hs: ModuleType) -> None:
    res = hs.combine([_run(0, [0.7], [0.9], controls=False), _run(1, [0.6], [0.9], controls=False)])
    assert res["mean"]["roundtrip"] is None and res["n_seeds"]["floor"] == 0
    text = hs.markdown(res, "cmd", ["a.json"])
    assert "round trip: not measured in these runs" in text and "seeds []" not in text
