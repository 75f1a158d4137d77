"""``augment --model``: the model is loaded once (the early check's load is reused), a bad file is one error line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_simulator import tiny_model_dir  # tests/ is on sys.path (pytest rootdir import)
from typer.testing import CliRunner

import ivus_sim.modelio
from ivus_sim.augment import AugmentConfig, Engine, EngineSpec, run_augment
from ivus_sim.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("run"))


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every ``ivus_sim.modelio.load_model`` call appends a line to the returned file.

    A file, not a counter: a call in a forked worker process is counted too.
    """
    log = tmp_path / "loads.log"
    log.touch()
    real = ivus_sim.modelio.load_model

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        with open(log, "a") as fh:
            fh.write("load\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(ivus_sim.modelio, "load_model", counting)
    return log


def _n_loads(log: Path) -> int:
    return len(log.read_text().splitlines())


@pytest.mark.parametrize("workers", [0, 2])
def test_augment_loads_the_model_once(tmp_path: Path, model_dir: Path, loads: Path, workers: int) -> None:
    spec = EngineSpec(engine=Engine.LEARNED, model=model_dir, device="cpu")
    cfg = AugmentConfig(n=3, out=tmp_path / "ds", seed=1, engine=spec, size=32)
    report = run_augment(cfg, workers=workers, progress=False)
    assert report.complete and report.written == 3
    assert _n_loads(loads) == 1, f"the model was loaded {_n_loads(loads)} times"


def test_cli_augment_model_loads_once(tmp_path: Path, model_dir: Path, loads: Path) -> None:
    out = tmp_path / "ds"
    res = runner.invoke(app, ["augment", "--model", str(model_dir), "--n", "2", "--out", str(out), "--size", "32",
                              "--workers", "0", "--no-progress", "--format", "png"])
    assert res.exit_code == 0, res.output
    assert "dataset complete: 2 pairs" in res.output
    assert _n_loads(loads) == 1


def test_cli_augment_truncated_model_is_one_line_and_writes_nothing(tmp_path: Path, model_dir: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(model_dir / "model", bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    out = tmp_path / "ds"
    res = runner.invoke(app, ["augment", "--model", str(bad), "--n", "2", "--out", str(out), "--size", "32",
                              "--workers", "0", "--no-progress"])
    assert res.exit_code == 2, res.output
    err = res.stderr if res.stderr_bytes is not None else res.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model.safetensors" in lines[0], err
    assert "Traceback" not in res.output and not out.exists()
