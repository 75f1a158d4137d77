"""Shared pytest fixtures.

* ``one_thread``: one torch thread for a module's tests (small tensors; on a shared, loaded 2-core
  box OpenMP spin-waits of a second thread cost seconds). Use it with
  ``pytestmark = pytest.mark.usefixtures("one_thread")`` or as a fixture argument; it restores the
  previous count after the module.
* ``benchmark_module``: ``benchmark_module("patch_diagnostics")`` imports a script of ``benchmarks/``
  (not a package; the scripts import siblings such as ``_results``).

Habits (docs/DEVELOPING.md "Tests"): module-scoped fixtures are read-only (copy before changing);
processes and servers are stopped by waiting on a condition, never after a fixed sleep; tests over
~10 s carry ``@pytest.mark.slow`` so ``pytest -m "not slow"`` stays a loop of a few minutes.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

#: a test (its setup included) taking longer than this should carry @pytest.mark.slow
SLOW_S = 10.0
_unmarked_slow: dict[str, float] = {}
BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Run the requesting module with ``torch.set_num_threads(1)``, then restore the previous count."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="session")
def benchmark_module() -> Callable[[str], ModuleType]:
    """A loader of ``benchmarks/<name>.py`` as a module (each script loaded once per session)."""
    loaded: dict[str, ModuleType] = {}

    def load(name: str) -> ModuleType:
        if name not in loaded:
            sys.path.insert(0, str(BENCH))  # the scripts import their siblings (_results)
            try:
                spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
                assert spec is not None and spec.loader is not None
                mod = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = mod  # dataclasses look their module up
                spec.loader.exec_module(mod)
            finally:
                sys.path.remove(str(BENCH))
            loaded[name] = mod
        return loaded[name]

    return load


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note tests slower than :data:`SLOW_S` that lack the ``slow`` marker (listed at the end of the run)."""
    if report.when in ("setup", "call") and "slow" not in report.keywords:
        total = _unmarked_slow.get(report.nodeid, 0.0) + report.duration
        if total > SLOW_S:
            _unmarked_slow[report.nodeid] = total


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _unmarked_slow:
        terminalreporter.write_sep("-", f"tests over {SLOW_S:g} s without @pytest.mark.slow (mark them)")
        for nodeid, seconds in sorted(_unmarked_slow.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{seconds:7.1f} s  {nodeid}")
