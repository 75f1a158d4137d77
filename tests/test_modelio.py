"""Model files: one save/load (ivus_sim.modelio) for runs, released generators and the embedded default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ivus_sim.errors import IvusSimError
from ivus_sim.modelio import (
    CARD_NAME,
    WEIGHTS_NAME,
    has_default_model,
    load_default_model,
    load_model,
    load_model_from_path,
    save_model,
)
from ivus_sim.training.config import load_train_config
from ivus_sim.two_stage import TwoStageAAE


@pytest.fixture(scope="module")
def small_model() -> TwoStageAAE:
    torch.manual_seed(0)
    return TwoStageAAE(load_train_config("smoke").model)


def test_round_trip_of_a_full_and_a_generator_only_model(small_model: TwoStageAAE, tmp_path: Path) -> None:
    w = save_model(small_model, tmp_path / "full", {"note": "x"})
    assert w.name == WEIGHTS_NAME and (tmp_path / "full" / CARD_NAME).is_file()
    for where in (tmp_path / "full", w, w.with_suffix(".json")):
        m = load_model(where)
        assert m.card["note"] == "x" and not m.training
        for k, v in small_model.state_dict().items():
            assert torch.equal(v, m.state_dict()[k]), k
    run = tmp_path / "run"
    save_model(small_model, run / "model", {}, generator_only=True)
    m, card, mid = load_model_from_path(run)
    assert card["generator_only"] and mid.startswith("run-")
    for k, v in small_model.stage1.state_dict().items():
        assert torch.equal(v, m.stage1.state_dict()[k])
    assert [p.name for p in (run / "model").iterdir() if p.name.startswith(".")] == []  # no temp litter


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "no_card", "bad_card", "foreign_card"])
def test_damaged_model_files_are_one_line_errors(small_model: TwoStageAAE, tmp_path: Path, damage: str) -> None:
    w = save_model(small_model, tmp_path / "m", {})
    card = tmp_path / "m" / CARD_NAME
    if damage == "truncate":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif damage == "garbage":
        w.write_bytes(b"\x00\xff" * 300)
    elif damage == "empty":
        w.write_bytes(b"")
    elif damage == "no_card":
        card.unlink()
    elif damage == "bad_card":
        card.write_text("{not json")
    else:
        card.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(IvusSimError) as e:
        load_model(tmp_path / "m")
    assert "\n" not in str(e.value) and str(tmp_path / "m") in str(e.value)


def test_missing_and_non_model_paths(tmp_path: Path) -> None:
    with pytest.raises(IvusSimError, match="model not found"):
        load_model(tmp_path / "nope")
    with pytest.raises(IvusSimError, match=r"no model\.safetensors"):
        load_model(tmp_path)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(IvusSimError, match="not a model"):
        load_model(tmp_path / "x.txt")


@pytest.mark.skipif(not has_default_model(), reason="no embedded default in this checkout")
def test_embedded_default_loads_without_importing_training() -> None:
    code = ("import sys, ivus_sim.weights, ivus_sim.modelio as m; model, card, mid = m.load_default_model('cpu'); "
            "import ivus_sim.weights as w; assert w.load_default_model is m.load_default_model; "
            "bad = sorted(k for k in sys.modules if k.startswith('ivus_sim.training')); assert not bad, bad; "
            "print(mid)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().startswith("ivus-sim-default-")
    model, card, _ = load_default_model("cpu")
    assert card["steps"] >= 1 and not model.training


def test_weights_package_holds_no_code() -> None:
    src = (Path(__file__).resolve().parents[1] / "ivus_sim" / "weights" / "__init__.py").read_text()
    assert "import torch" not in src and "training" not in src.split('"""')[-1]
    assert "def load" not in src and "def save" not in src and "def export" not in src


def test_exported_run_is_a_generator_only_model_file(tmp_path: Path) -> None:
    from ivus_sim.training.data import make_dataset
    from ivus_sim.training.export import export_checkpoint
    from ivus_sim.training.synthetic import toy_pairs
    from ivus_sim.training.trainer import Trainer

    cfg = load_train_config("smoke")
    tr = Trainer(cfg, make_dataset(toy_pairs(4, 32, seed=0), (32, 16)), tmp_path / "run", progress=False)
    tr.fit(stop_after=2)
    w = export_checkpoint(tmp_path / "run", tmp_path / "rel", {"commands": ["x"]})
    card = json.loads((tmp_path / "rel" / CARD_NAME).read_text())
    assert w.name == WEIGHTS_NAME and card["generator_only"] and card["steps"] == 2 and card["commands"] == ["x"]
    m = load_model(tmp_path / "rel")
    for name, mod in m.generator_modules().items():
        ref = getattr(tr.model, name).state_dict()
        for k, v in mod.state_dict().items():
            assert torch.equal(v, ref[k].cpu()), (name, k)
