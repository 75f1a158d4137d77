"""Side-by-side generation cost (``benchmarks/bench_generate.py --side-by-side``).

Every engine gets the same number of timings, the engine order rotates so that none always runs
first (warm caches) or last, and a wrong ``NAME=RUN`` is refused with a usage error.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bg(benchmark_module: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_module("bench_generate")


def test_side_by_side_times_every_engine_alike_in_rotating_order(bg: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                                 one_thread: None) -> None:
    calls: list[str] = []

    class _Sim:
        def __init__(self, name: str) -> None:
            self.name, self.model_id = name, f"id-{name}"

        def generate(self, ph: object, **kw: object) -> None:
            calls.append(self.name)

    class _Physics:
        def simulate(self, labels: object, **kw: object) -> None:
            calls.append("physics")

    monkeypatch.setattr(bg, "_simulator", lambda run, device: _Sim(str(run)))
    import ivus_sim.physics as physics

    monkeypatch.setattr(physics, "PhysicsSimulator", _Physics)
    res = bg.side_by_side({"a": "A", "b": "B"}, size=64, n_images=8, repeats=3, batch=8)
    assert res["repeats"] == 6 and res["model_ids"] == {"a": "id-A", "b": "id-B"}
    assert set(res["cpu_ms_per_image"]) == {"a", "b", "physics"}
    assert all(v >= 0 for v in res["cpu_ms_per_image"].values())
    timed = calls[3:]  # after one warm-up call each
    assert len(timed) == 18 and {n: timed.count(n) for n in ("A", "B", "physics")} == {"A": 6, "B": 6, "physics": 6}
    firsts = [timed[3 * r] for r in range(6)]
    assert firsts == ["A", "B", "physics", "A", "B", "physics"]


def test_side_by_side_refuses_an_argument_without_a_run() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_generate.py"), "--side-by-side", "bad"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "NAME=RUN" in out.stderr.strip().splitlines()[-1]
