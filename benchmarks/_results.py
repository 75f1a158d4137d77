"""What every benchmark script shares: the results file, its sections, and the code version that ran."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def source_commit() -> str:
    """The commit of the code that ran: ``git rev-parse`` of this checkout, or the ``SNAPSHOT_COMMIT``
    file of a clean export (``git archive``), with ``+dirty`` when tracked files differ from it."""
    snap = ROOT / "SNAPSHOT_COMMIT"
    if snap.exists():
        return snap.read_text().strip()
    try:
        c = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
    return (c.stdout.strip() or "?") + ("+dirty" if dirty else "")


def write_section(text: str, section: str, path: Path = RESULTS) -> None:
    """Replace (or append) the ``section`` heading's part of RESULTS.md, leaving other sections alone (atomic)."""
    from ivus_sim.io import atomic_write

    old = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = old.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == section), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        new = "\n".join([*lines[:start], *text.rstrip("\n").splitlines(), "", *lines[end:]]).rstrip("\n") + "\n"
    atomic_write(path, lambda fh: fh.write(new.encode()))
