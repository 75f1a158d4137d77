"""`ivus-sim turing build|serve|analyze|power` in-process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.simulate import simulate_readers

runner = CliRunner()


def test_build_simulate_analyze(tmp_path: Path) -> None:
    make_demo_images(tmp_path / "real", 26, size=32, stream="real", prefix="real")
    make_demo_images(tmp_path / "fake", 24, size=32, stream="fake", prefix="sim")
    study = tmp_path / "study"
    r = runner.invoke(app, ["turing", "build", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                            "--out", str(study), "--readers", "2", "--seed", "3", "--size", "32", "--catch", "1",
                            "--block-size", "10"])
    assert r.exit_code == 0, r.output
    assert "leakage audit passed" in r.output
    sidecar = json.loads((study / "study.json").read_text())
    assert sidecar["config"]["seed"] == 3 and len(sidecar["pairs"]) == 24
    # refuses to clobber
    again = runner.invoke(app, ["turing", "build", "--real", str(tmp_path / "real"), "--fake",
                                str(tmp_path / "fake"), "--out", str(study)])
    assert again.exit_code == 2 and "exists" in again.output
    simulate_readers(study, accuracy=0.6, seed=1)
    rep = tmp_path / "report"
    r = runner.invoke(app, ["turing", "analyze", str(study), "--out", str(rep), "--bootstrap", "50"])
    assert r.exit_code == 0, r.output
    assert "Pooled accuracy" in r.output
    with open(rep / "reads.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * (24 + 3)  # one row per read, catch trials included
    assert list(rows[0])[:4] == ["readerID", "caseID", "modalityID", "score"]
    with open(rep / "imrmc.csv") as fh:
        im = list(csv.reader(fh))
    assert im[0] == ["readerID", "caseID", "modalityID", "score"]
    truth = [row for row in im[1:] if row[0] == "-1"]
    assert len(truth) == 48 and {row[3] for row in truth} == {"0", "1"}
    assert "BEGIN DATA:" in (rep / "imrmc_input.txt").read_text()
    html = (rep / "report.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert (rep / "analysis.json").is_file() and (rep / "readers.csv").is_file()


def test_leaky_build_fails_with_report(tmp_path: Path) -> None:
    make_demo_images(tmp_path / "real", 12, size=32, stream="real", prefix="real")
    make_demo_images(tmp_path / "fake", 12, size=32, stream="fake", prefix="sim")
    for p in (tmp_path / "fake").iterdir():  # simulated frames 40 grey levels brighter
        a = np.asarray(Image.open(p)).astype(int)
        Image.fromarray(np.where(a > 0, np.clip(a + 40, 0, 255), 0).astype(np.uint8)).save(p)
    args = ["turing", "build", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--out",
            str(tmp_path / "study"), "--size", "32"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert "leakage audit failed" in r.output and "Traceback" not in r.output
    assert (tmp_path / "study.leakage-audit.json").is_file() and not (tmp_path / "study").exists()
    r = runner.invoke(app, [*args, "--force"])
    assert r.exit_code == 0 and "WARNING" in r.output


def test_serve_refuses_network_without_flag(tmp_path: Path) -> None:
    r = runner.invoke(app, ["turing", "serve", str(tmp_path), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "--allow-network" in r.output
    r = runner.invoke(app, ["turing", "serve", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not a reader study" in r.output


def test_power_command() -> None:
    r = runner.invoke(app, ["turing", "power", "--margin", "0.15", "--readers", "4", "--icc", "0.05"])
    assert r.exit_code == 0, r.output
    assert "100 independent trials" in r.output and "29 pairs per reader" in r.output
    r = runner.invoke(app, ["turing", "power", "--margin", "0.7"])
    assert r.exit_code == 2 and "margin" in r.output
