"""The README's multi-process command: `torchrun ... -m ivus_sim.cli.main train` (DDP, gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _helpers import free_port

from ivus_sim.io import save_png
from ivus_sim.modelio import load_model
from ivus_sim.training.config import train_config_path
from ivus_sim.training.synthetic import toy_pairs


def _torchrun(tmp_path: Path, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "ivus_sim.cli.main", "train", *args, "--device", "cpu",
           "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]


def _config(tmp_path: Path, max_steps: int) -> Path:
    d = yaml.safe_load(train_config_path("smoke").read_text())
    d["train"].update(max_steps=max_steps, checkpoint_every=2, log_every=1)
    path = tmp_path / f"smoke{max_steps}.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


@pytest.mark.slow
def test_two_process_run_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    """DDP (gloo, 2 CPU processes): 4 steps, then --resume with max_steps 8, gives the weights of 8 steps
    straight (each rank's RNG state and data shard are restored), and one log record per step."""
    labels, images = toy_pairs(8, 32, seed=1)
    data = tmp_path / "data"
    for i in range(8):
        save_png(data / f"p{i}_label.png", labels[i])
        save_png(data / f"p{i}_image.png", images[i])
    c4, c8 = _config(tmp_path, 4), _config(tmp_path, 8)
    _torchrun(tmp_path, "--config", str(c8), "--data", str(data), "--out", "straight")
    _torchrun(tmp_path, "--config", str(c4), "--data", str(data), "--out", "resumed")
    first = (tmp_path / "resumed" / "model" / "model.safetensors").read_bytes()
    _torchrun(tmp_path, "--config", str(c8), "--data", str(data), "--out", "resumed", "--resume")
    a = (tmp_path / "straight" / "model" / "model.safetensors").read_bytes()
    b = (tmp_path / "resumed" / "model" / "model.safetensors").read_bytes()
    assert a == b and a != first
    card = json.loads((tmp_path / "resumed" / "model" / "model.json").read_text())
    assert card["world_size"] == 2 and card["steps"] == 8 and card["name"] == "smoke"
    # rank 0 alone writes the log: one record per step, none duplicated by rank 1 or the resume
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))
    assert load_model(tmp_path / "resumed").polar_shape == (32, 16)


def test_trainer_uses_torch_distributed_data_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradient averaging is DDP's (bucketed), not a hand-written per-parameter all-reduce."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from ivus_sim.training import distributed
    from ivus_sim.training.config import load_train_config
    from ivus_sim.training.phases import aae_phases
    from ivus_sim.two_stage import TwoStageAAE

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        model = TwoStageAAE(load_train_config("smoke").model)
        module = distributed.PhaseModule(model, aae_phases(model, (1, 2)))
        wrapped = distributed.wrap(module, torch.device("cpu"), world=2)
        assert isinstance(wrapped, DistributedDataParallel)
    finally:
        dist.destroy_process_group()
    import inspect

    from ivus_sim.training import trainer

    assert "all_reduce(p.grad" not in inspect.getsource(trainer)
