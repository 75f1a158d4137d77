"""The README's multi-process command: `torchrun ... -m ivus_sim.cli.main train` (DDP, gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import free_port
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.training import load_model


@pytest.mark.slow
def test_torchrun_two_processes_train_one_model(tmp_path: Path) -> None:
    data, run = tmp_path / "corpus", tmp_path / "run"
    r = CliRunner().invoke(app, ["corpus", "--n", "8", "--size", "32", "--out", str(data), "--seed", "1",
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "ivus_sim.cli.main", "train", "--config", "smoke",
           "--data", str(data), "--out", str(run), "--device", "cpu", "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    card = json.loads((run / "model" / "model.json").read_text())
    assert card["name"] == "smoke"
    hist = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    # rank 0 alone writes the log: one record per logged step, no duplicates from rank 1
    steps = [h["step"] for h in hist if "step" in h]
    assert steps == sorted(set(steps)) and steps
    assert load_model(run).polar_shape == (32, 16)
