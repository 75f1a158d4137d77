"""Strip outputs from the tutorial notebooks before committing them.

Notebooks are committed without outputs, execution counts or per-run metadata, so diffs
show only what a person changed and CI (``tests/test_notebooks.py``) executes them fresh.

Usage (from the repository root)::

    python notebooks/strip_outputs.py                 # strip every notebooks/*.ipynb in place
    python notebooks/strip_outputs.py a.ipynb b.ipynb # strip the named notebooks
    python notebooks/strip_outputs.py --check         # exit 1 if any notebook still has outputs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
#: notebook-level metadata kept on strip (everything else, e.g. widget state, is dropped)
KEEP_METADATA = ("kernelspec", "language_info")


def dirty_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of code cells that carry outputs or an execution count."""
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove outputs, execution counts and run metadata from ``nb`` (in place; also returned)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
    nb.metadata = nbformat.NotebookNode({k: nb.metadata[k] for k in KEEP_METADATA if k in nb.metadata})
    return nb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="only report notebooks with outputs (exit 1 if any)")
    args = ap.parse_args(argv)
    paths = args.paths or sorted(HERE.glob("*.ipynb"))
    bad = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if args.check:
            cells = dirty_cells(nb)
            if cells:
                bad += 1
                print(f"{path}: outputs or execution counts in cells {cells}")
            continue
        before = nbformat.writes(nb)
        after = nbformat.writes(strip(nb))
        if after != before:
            path.write_text(after + ("" if after.endswith("\n") else "\n"), encoding="utf-8")
            print(f"stripped {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
