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

import pytest


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
