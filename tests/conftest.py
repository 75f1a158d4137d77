"""Shared pytest fixtures.

* ``one_thread``: one torch thread for a module's tests (small tensors; on a shared, loaded 2-core
  box OpenMP spin-waits of a second thread cost seconds). Use it with
  ``pytestmark = pytest.mark.usefixtures("one_thread")`` or as a fixture argument; it restores the
  previous count after the module.

Habits (docs/DEVELOPING.md "Tests"): module-scoped fixtures are read-only (copy before changing);
processes and servers are stopped by waiting on a condition, never after a fixed sleep; tests over
~10 s carry ``@pytest.mark.slow`` so ``pytest -m "not slow"`` stays a loop of a few minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

#: a test (its setup included) taking longer than this should carry @pytest.mark.slow
SLOW_S = 10.0
_unmarked_slow: dict[str, float] = {}


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
