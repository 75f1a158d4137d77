"""`ivus-sim turing readers list|add|revoke` and the build options of issue 14 (--mode, --practice,
--consent, --debrief), in-process; bad input gives one `error:` line and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.modes import PLAN_META, load_plan, reader_trials
from ivus_sim.turing.simulate import simulate_readers
from ivus_sim.turing.store import DB_NAME, Store

runner = CliRunner()


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readers")
    make_demo_images(root / "real", 16, size=24, stream="real", prefix="real")
    make_demo_images(root / "fake", 16, size=24, stream="fake", prefix="sim")
    (root / "consent.txt").write_text("We ask for your judgement.\n\nYou may stop at any time.\n")
    return root


def _build(root: Path, out: Path, *extra: str) -> str:
    r = runner.invoke(app, ["turing", "build", "--real", str(root / "real"), "--fake", str(root / "fake"),
                            "--out", str(out), "--size", "24", "--pairs", "8", "--readers", "2", "--seed", "2",
                            *extra])
    return r.output if r.exit_code == 0 else f"EXIT {r.exit_code}: {r.output}"


def _error(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output, r.output
    return lines[0]


def test_readers_list_add_revoke(folders: Path, tmp_path: Path) -> None:
    study = tmp_path / "study"
    assert "study written" in _build(folders, study, "--catch", "1", "--practice", "2")
    r = runner.invoke(app, ["turing", "readers", "list", str(study)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert len(lines) == 2 and all("\tactive\t0/" in ln and "http://127.0.0.1:8000/r/" in ln for ln in lines)
    # add a reader while the study runs: schedule drawn as the build draws it
    simulate_readers(study, accuracy=0.6, seed=1, max_trials=3)
    r = runner.invoke(app, ["turing", "readers", "add", str(study), "R09", "--base-url", "http://10.0.0.5:8080/"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("R09: http://10.0.0.5:8080/r/")
    with Store(study / DB_NAME) as store:
        plan = load_plan(store.meta(PLAN_META))
        rows = store.query("SELECT position, kind, item, left_image, right_image, real_side, block FROM trials "
                           "WHERE reader_id = 'R09' ORDER BY position")
        n_r01 = store.query("SELECT COUNT(*) AS n FROM trials WHERE reader_id = 'R01'")[0]["n"]
        assert store.verify_chain()[0]
    expected = [(t.position, t.kind, t.item, t.left_image, t.right_image, t.real_side, t.block)
                for t in reader_trials(plan, "R09")]
    assert [tuple(r) for r in rows] == expected and len(rows) == n_r01
    assert [r[1] for r in rows[:2]] == ["practice", "practice"]
    # revoke a leaked link and re-issue: new link printed, old one gone, answers kept and flagged
    old = dict(Store(study / DB_NAME).readers())["R01"]
    r = runner.invoke(app, ["turing", "readers", "revoke", str(study), "R01", "--reissue", "--reason", "leaked"])
    assert r.exit_code == 0, r.output
    assert "answers given through it stay in the study, flagged" in r.output
    assert "R01: http://127.0.0.1:8000/r/" in r.output
    new = r.output.strip().splitlines()[-1].rsplit("/r/", 1)[1]
    assert new != old
    r = runner.invoke(app, ["turing", "readers", "list", str(study)])
    listing = {ln.split("\t")[0]: ln for ln in r.output.splitlines()}
    assert set(listing) == {"R01", "R02", "R09"}
    assert "\tactive\t3/" in listing["R01"] and "1 revoked link(s)" in listing["R01"] and new in listing["R01"]
    assert old not in r.output
    # revoke without re-issue: the reader has no working link
    r = runner.invoke(app, ["turing", "readers", "revoke", str(study), "R02"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["turing", "readers", "list", str(study)])
    assert next(ln for ln in r.output.splitlines() if ln.startswith("R02")).endswith("\t-")
    with Store(study / DB_NAME) as store:
        assert store.verify_chain()[0]
        assert store.query("SELECT COUNT(*) AS n FROM responses WHERE reader_id = 'R01'")[0]["n"] == 3
    # bad input: one line, exit 2
    assert "exists already" in _error(["turing", "readers", "add", str(study), "R01"])
    assert "must be 1-64 letters" in _error(["turing", "readers", "add", str(study), "bad id!"])
    assert "unique" in _error(["turing", "readers", "add", str(study), "R10", "R10"])
    assert "unknown reader id" in _error(["turing", "readers", "revoke", str(study), "R77"])
    assert "no active link" in _error(["turing", "readers", "revoke", str(study), "R02"])
    assert "--base-url" in _error(["turing", "readers", "list", str(study), "--base-url", "ftp://x"])
    assert "not a reader study" in _error(["turing", "readers", "list", str(tmp_path / "nope")])


def test_build_modes_practice_consent(folders: Path, tmp_path: Path) -> None:
    study = tmp_path / "single"
    out = _build(folders, study, "--mode", "single", "--practice", "3", "--consent", str(folders / "consent.txt"))
    assert "study written" in out, out
    cfg = json.loads((study / "study.json").read_text())["config"]
    assert cfg["mode"] == "single" and cfg["n_practice"] == 3 and cfg["consent_text"].startswith("We ask")
    with Store(study / DB_NAME) as store:
        kinds = [r["kind"] for r in store.query("SELECT kind FROM trials WHERE reader_id = 'R01' ORDER BY position")]
        truths = [r["truth"] for r in store.query("SELECT truth FROM trials WHERE kind = 'practice' AND "
                                                  "reader_id = 'R01'")]
    assert kinds[:3] == ["practice"] * 3 and kinds.count("main") == 16 and sorted(truths).count("real") == 2
    # a reader added to a single-image study gets a single-image schedule
    r = runner.invoke(app, ["turing", "readers", "add", str(study), "R03"])
    assert r.exit_code == 0, r.output
    with Store(study / DB_NAME) as store:
        rows = store.query("SELECT kind, truth, right_image FROM trials WHERE reader_id = 'R03'")
    assert len(rows) == len(kinds) and all(r["truth"] and r["right_image"] is None for r in rows)
    # the single-image reads reach the single-image analysis
    simulate_readers(study, accuracy=0.8, seed=3)
    r = runner.invoke(app, ["turing", "analyze", str(study), "--out", str(tmp_path / "rep"), "--bootstrap", "20"])
    assert r.exit_code == 0, r.output
    an = json.loads((tmp_path / "rep" / "analysis.json").read_text())
    assert an["mode"] == "single"
    assert "triple" in _error(["turing", "build", "--real", str(folders / "real"), "--fake", str(folders / "fake"),
                               "--out", str(tmp_path / "x"), "--mode", "triple"])
    assert "practice" in _error(["turing", "build", "--real", str(folders / "real"), "--fake",
                                 str(folders / "fake"), "--out", str(tmp_path / "x"), "--size", "24", "--pairs", "8",
                                 "--practice", "9"])
    assert "practice" in _error(["turing", "build", "--real", str(folders / "real"), "--fake",
                                 str(folders / "fake"), "--out", str(tmp_path / "x"), "--practice", "-1"])
    assert "file not found" in _error(["turing", "build", "--real", str(folders / "real"), "--fake",
                                       str(folders / "fake"), "--out", str(tmp_path / "x"), "--consent",
                                       str(tmp_path / "missing.txt")])
    (tmp_path / "empty.txt").write_text("  \n")
    assert "empty" in _error(["turing", "build", "--real", str(folders / "real"), "--fake", str(folders / "fake"),
                              "--out", str(tmp_path / "x"), "--debrief", str(tmp_path / "empty.txt")])
    assert not (tmp_path / "x").exists()


def test_revoked_answers_are_flagged_in_the_exports(folders: Path, tmp_path: Path) -> None:
    import csv

    from ivus_sim.turing.readers import revoke_reader

    study = tmp_path / "study"
    assert "study written" in _build(folders, study)
    simulate_readers(study, accuracy=0.6, seed=1, readers=["R01"], max_trials=2)
    revoke_reader(study, "R01", reissue=True, reason="leaked")
    simulate_readers(study, accuracy=0.6, seed=1)
    r = runner.invoke(app, ["turing", "analyze", str(study), "--out", str(tmp_path / "rep"), "--bootstrap", "20"])
    assert r.exit_code == 0, r.output
    with open(tmp_path / "rep" / "reads.csv") as fh:
        rows = list(csv.DictReader(fh))
    flagged = sorted((row["readerID"], int(row["trial_index"])) for row in rows if row["link_revoked"] == "1")
    assert flagged == [("R01", 0), ("R01", 1)] and len(rows) == 16
