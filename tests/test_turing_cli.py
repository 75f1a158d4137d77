"""`ivus-sim turing build|serve|analyze|power` in-process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.simulate import simulate_readers

runner = CliRunner()


@pytest.mark.slow
def test_build_simulate_analyze(tmp_path: Path) -> None:
    make_demo_images(tmp_path / "real", 27, size=32, stream="real", prefix="real")
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
    assert "Pooled accuracy" in r.output and "verdict: " in r.output and "chain head: " in r.output
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
    _parse_imrmc(rep / "imrmc_input.txt")  # by iMRMC's format rules
    head = (rep / "chain_head.txt").read_text().split()[0]
    assert json.loads((rep / "analysis.json").read_text())["integrity"]["head_hash"] == head
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake", "real"]  # no study, no report files beside it
    assert r.output.count("error:") == 1
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


def _parse_imrmc(path: Path) -> dict[str, object]:
    """Read an iMRMC input file by the format's rules (as iMRMC / RJafroc's ReadImrmc do).

    Free-text description lines, then ``N0:``, ``N1:``, ``NR:``, ``NM:`` (``key: number``), a line
    ``BEGIN DATA:``, then rows of exactly four comma-separated fields ``readerID, caseID,
    modalityID, score``: case ids and scores numeric, truth rows (``readerID -1``) with score 0
    or 1 for every case, and as many distinct cases as ``N0 + N1``.
    """
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    head: dict[str, float] = {}
    k = 0
    while lines[k] != "BEGIN DATA:":
        key, _, value = lines[k].partition(":")
        if key in ("N0", "N1", "NR", "NM"):
            head[key] = float(value)
        k += 1
    assert set(head) == {"N0", "N1", "NR", "NM"}
    rows = [ln.split(",") for ln in lines[k + 1:] if ln]
    assert rows and all(len(r) == 4 for r in rows)
    cases = {float(r[1]) for r in rows}  # raises on text ids such as "img0001"
    assert all(c == int(c) for c in cases)
    assert all(isinstance(float(r[3]), float) for r in rows)
    truth = {float(r[1]): float(r[3]) for r in rows if r[0] == "-1"}
    assert set(truth.values()) <= {0.0, 1.0} and set(truth) == cases
    assert len(cases) == head["N0"] + head["N1"]
    assert sum(v == 0 for v in truth.values()) == head["N0"] and sum(v == 1 for v in truth.values()) == head["N1"]
    readers = {r[0] for r in rows if r[0] != "-1"}
    assert len(readers) == head["NR"] and len({r[2] for r in rows if r[0] != "-1"}) == head["NM"]
    return {"head": head, "rows": rows, "truth": truth}


def _study(tmp_path: Path, n_pairs: int = 30) -> Path:
    make_demo_images(tmp_path / "real", n_pairs, size=24, stream="real", prefix="real")
    make_demo_images(tmp_path / "fake", n_pairs, size=24, stream="fake", prefix="sim")
    study = tmp_path / "study"
    r = runner.invoke(app, ["turing", "build", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                            "--out", str(study), "--readers", "2", "--seed", "1", "--size", "24"])
    assert r.exit_code == 0, r.output
    return study


def test_opposite_readers_are_distinguishable(tmp_path: Path) -> None:
    study = _study(tmp_path)
    simulate_readers(study, accuracy={"R01": 0.85, "R02": 0.15}, seed=3)
    r = runner.invoke(app, ["turing", "analyze", str(study), "--out", str(tmp_path / "rep"), "--bootstrap", "50"])
    assert r.exit_code == 0, r.output
    assert "verdict: distinguishable" in r.output
    v = json.loads((tmp_path / "rep" / "analysis.json").read_text())["verdict"]
    assert v["verdict"] == "distinguishable"
    assert {c["reader"]: c["call"] for c in v["per_reader"]} == {"R01": "better", "R02": "reversed"}
    # the pooled reads are near 50 % - pooling would have called these readers "fooled"
    with open(tmp_path / "rep" / "readers.csv") as fh:
        pooled = next(row for row in csv.DictReader(fh) if row["reader"] == "pooled")
    assert abs(float(pooled["accuracy"]) - 0.5) < 0.15
    # MRMCaov reads: one row per reader and image with a confidence, numeric cases, truth 0/1
    with open(tmp_path / "rep" / "mrmcaov.csv") as fh:
        mr = list(csv.DictReader(fh))
    assert list(mr[0]) == ["reader", "treatment", "case", "truth", "rating"]
    assert len(mr) == 2 * 2 * 30 and {row["truth"] for row in mr} == {"0", "1"}
    assert all(row["case"].isdigit() and row["rating"].lstrip("-").isdigit() for row in mr)


def test_flipped_answer_fails_analyze_with_one_line(tmp_path: Path) -> None:
    import sqlite3

    study = _study(tmp_path, n_pairs=12)
    simulate_readers(study, accuracy=0.5, seed=1)
    db = sqlite3.connect(study / "study.sqlite")
    db.execute("UPDATE responses SET choice = CASE choice WHEN 'left' THEN 'right' ELSE 'left' END "
               "WHERE reader_id = 'R01' AND position = 0")
    db.commit()
    db.close()
    rep = tmp_path / "rep"
    r = runner.invoke(app, ["turing", "analyze", str(study), "--out", str(rep)])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: study integrity check failed"), r.output
    assert "R01" in lines[0] and not rep.exists()
