"""The run log: ``log.jsonl`` (one JSON record per logged step) and TensorBoard scalars.

Only rank 0 writes. On resume, records after the checkpoint's step are dropped (they will be
written again), so a killed and resumed run has exactly one record per logged step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ivus_sim.io import atomic_path

__all__ = ["LOG_NAME", "RunLog"]

LOG_NAME = "log.jsonl"
_NOT_SCALARS = ("step", "epoch", "time")


class RunLog:
    """Append-only JSONL log plus TensorBoard (``<run>/tensorboard``), written by rank 0 only.

    Args:
        folder: the run folder.
        enabled: False on ranks other than 0.
    """

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.folder = Path(folder)
        self.enabled = enabled
        self._writer: Any = None

    @property
    def path(self) -> Path:
        return self.folder / LOG_NAME

    def reset(self) -> None:
        """Start a fresh log (a new run)."""
        if self.enabled and self.path.exists():
            self.path.unlink()

    def truncate(self, step: int) -> None:
        """Drop records after ``step`` (resume from a checkpoint at ``step``)."""
        if not (self.enabled and self.path.exists()):
            return
        keep = []
        for ln in self.path.read_text().splitlines():
            if not ln.strip():
                continue
            try:
                rec = json.loads(ln)
            except ValueError:  # a line cut by a kill
                continue
            if rec.get("step", 0) <= step:
                keep.append(ln)
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(ln + "\n" for ln in keep))

    def write(self, record: dict[str, Any], purge_step: int = 0) -> None:
        """Append ``record`` (must hold ``step``) and its numeric values as TensorBoard scalars."""
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.folder / "tensorboard"), purge_step=purge_step)
        for k, v in record.items():
            if k not in _NOT_SCALARS and isinstance(v, (int, float)):
                self._writer.add_scalar(f"loss/{k}", v, record["step"])

    def history(self) -> list[dict[str, Any]]:
        """All records."""
        if not self.path.exists():
            return []
        out = []
        for ln in self.path.read_text().splitlines():
            if ln.strip():
                try:
                    out.append(json.loads(ln))
                except ValueError:
                    continue
        return out

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
