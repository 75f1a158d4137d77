"""The output contract (:mod:`ivus_sim.outputs`): path rule, plan -> check -> atomic write, one sidecar
schema, resume of identical requests, stale temp files of killed runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ivus_sim.errors import IvusSimError
from ivus_sim.io import clean_stale_temps, temp_path
from ivus_sim.outputs import (
    SCHEMA,
    SCHEMA_VERSION,
    OutKind,
    OutputPlan,
    PlannedOutput,
    make_sidecar,
    png_writer,
    reproducing_command,
    resolve_out,
    stage_to_uint8,
    write_output,
)


# ----------------------------------------------------------------------------- the path rule
@pytest.mark.parametrize(("out", "n", "kind"), [
    ("x.png", 1, OutKind.FILE), ("a/b/x.nii.gz", 1, OutKind.FILE), ("X.PNG", 1, OutKind.FILE),
    ("out", 4, OutKind.FOLDER), ("out/", 1, OutKind.FOLDER), ("run.v2", 3, OutKind.FOLDER),
])
def test_image_suffix_means_a_file_otherwise_a_folder(tmp_path: Path, out: str, n: int, kind: OutKind) -> None:
    t = resolve_out(tmp_path / out, n)
    assert t.kind is kind
    assert not (tmp_path / out).exists()  # resolving creates nothing


def test_file_target_base_strips_the_whole_suffix(tmp_path: Path) -> None:
    assert resolve_out(tmp_path / "x.nii.gz", 1).base == tmp_path / "x"
    assert resolve_out(tmp_path / "x.png", 1).folder == tmp_path


@pytest.mark.parametrize(("setup", "out", "n", "message"), [
    ("file", "taken", 2, "is an existing file, not a folder"),
    ("dir", "taken.png", 1, "is an existing folder"),
    (None, "x.png", 3, "names one image file, but this makes 3 images"),
    ("file", "taken/x.png", 1, "is a file, not a folder"),
    (None, "x.tif", 1, "writes .png files, not .tif"),
])
def test_path_rule_errors_are_one_line(tmp_path: Path, setup: str | None, out: str, n: int, message: str) -> None:
    name = "taken.png" if setup == "dir" else "taken"
    if setup == "file":
        (tmp_path / name).write_text("mine")
    elif setup == "dir":
        (tmp_path / name).mkdir()
    with pytest.raises(IvusSimError, match=message) as e:
        resolve_out(tmp_path / out, n, suffixes=(".png",) if out.endswith(".tif") else None)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- the command and the sidecar
def test_one_reproducing_command_format() -> None:
    cmd = reproducing_command("generate", {"phantom": Path("/d/a b.png"), "n": 2, "z": None, "save_stages": True,
                                           "overwrite": False, "interpolate": ["1,2", "3,4"], "--no-nurd": True})
    assert cmd == "ivus-sim generate --phantom '/d/a b.png' --n 2 --save-stages --interpolate 1,2 3,4 --no-nurd"


def _item(tmp_path: Path, request: dict | None = None) -> PlannedOutput:
    return PlannedOutput(tmp_path / "a.json", [tmp_path / "a.png"], request or {"seed": 1, "z": (0.5, 1)})


def _write(item: PlannedOutput, value: int = 7) -> None:
    write_output(item, {item.files[0]: png_writer(np.full((8, 8), value, np.uint8))},
                 make_sidecar(item, {"seed": 1}, "ivus-sim x"))


def test_sidecar_schema_fields(tmp_path: Path) -> None:
    item = _item(tmp_path)
    OutputPlan([item]).check(overwrite=False)
    _write(item)
    side = json.loads(item.sidecar.read_text())
    assert side["schema"] == SCHEMA and side["schema_version"] == SCHEMA_VERSION
    assert side["request"] == {"seed": 1, "z": [0.5, 1]} and side["command"] == "ivus-sim x"
    assert side["files"] == {"all": ["a.png"]} and set(side["checksums"]) == {"a.png"}


# ----------------------------------------------------------------------------- resume and overwrite
def test_identical_request_is_done_different_request_needs_overwrite(tmp_path: Path) -> None:
    item = _item(tmp_path)
    assert OutputPlan([item]).check(overwrite=False) == [item]
    _write(item)
    again = _item(tmp_path)
    plan = OutputPlan([again])
    assert plan.check(overwrite=False) == [] and plan.done == [again]
    other = _item(tmp_path, {"seed": 2})
    with pytest.raises(IvusSimError, match="--overwrite"):
        OutputPlan([other]).check(overwrite=False)
    assert OutputPlan([other]).check(overwrite=True) == [other]


def test_a_foreign_file_is_a_clash(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"mine")
    with pytest.raises(IvusSimError, match=r"a\.png exists.*--overwrite"):
        OutputPlan([_item(tmp_path)]).check(overwrite=False)
    assert (tmp_path / "a.png").read_bytes() == b"mine"


def test_missing_or_damaged_file_of_our_sidecar_is_redone(tmp_path: Path) -> None:
    item = _item(tmp_path)
    OutputPlan([item]).check(overwrite=False)
    _write(item)
    item.files[0].write_bytes(b"truncated")
    again = _item(tmp_path)
    assert OutputPlan([again]).check(overwrite=False) == [again] and again.state == "redo"
    _write(again)
    assert OutputPlan([_item(tmp_path)]).check(overwrite=False) == []


def test_two_outputs_on_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(IvusSimError, match="same file"):
        OutputPlan([_item(tmp_path), _item(tmp_path, {"seed": 9})]).check(overwrite=True)


# ----------------------------------------------------------------------------- atomic write, interruption
def test_sidecar_is_written_before_the_image_appears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between the sidecar and the rename: no image without sidecar, no temp file, and a rerun redoes it."""
    import ivus_sim.outputs as outputs

    seen: list[tuple[bool, bool]] = []

    def interrupted_commit(tmp: Path, path: Path) -> Path:
        seen.append((Path(path).with_suffix(".json").exists(), Path(path).exists()))
        raise KeyboardInterrupt

    item = _item(tmp_path)
    OutputPlan([item]).check(overwrite=False)
    monkeypatch.setattr(outputs, "commit", interrupted_commit)
    with pytest.raises(KeyboardInterrupt):
        _write(item)
    assert seen == [(True, False)]  # the sidecar existed when the image was about to appear
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no image, no temp file
    monkeypatch.undo()
    again = _item(tmp_path)
    assert OutputPlan([again]).check(overwrite=False) == [again]  # ours, incomplete: redone without --overwrite
    _write(again)
    assert (tmp_path / "a.png").is_file()


def test_temp_files_of_a_killed_process_are_cleaned(tmp_path: Path) -> None:
    code = ("import os, signal, sys; from ivus_sim.io import temp_path; "
            "p = temp_path(sys.argv[1]); open(p, 'wb').write(b'half'); os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.png")], capture_output=True)
    assert proc.returncode == -9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".a.png.") and ".tmp" in left[0]
    mine = temp_path(tmp_path / "b.png")  # a live process's temp file is kept
    OutputPlan([_item(tmp_path)]).check(overwrite=False)  # every check cleans the output folders
    assert [p.name for p in tmp_path.iterdir()] == [mine.name]
    assert clean_stale_temps(tmp_path) == []
    os.unlink(mine)


# ----------------------------------------------------------------------------- stage display rule
def test_stage_to_uint8_one_rule() -> None:
    unit = np.linspace(0, 1, 16).reshape(4, 4)
    u8, rng = stage_to_uint8(unit)
    assert rng == [0.0, 1.0] and u8[0, 0] == 0 and u8[-1, -1] == 255
    signed, rng = stage_to_uint8(unit - 0.5)
    assert rng[0] == -rng[1] and signed[0, 0] < 128 < signed[-1, -1]
    inside = np.zeros((4, 4), bool)
    inside[1:3, 1:3] = True
    amp, rng = stage_to_uint8(unit * 10, inside)
    assert rng[0] == 0.0 and (amp[~inside] == 0).all()


# ----------------------------------------------------------------------------- the corpus adopts the contract
def test_corpus_pairs_follow_the_output_contract(tmp_path: Path) -> None:
    from ivus_sim.training.corpus import make_corpus, pair_paths

    out = tmp_path / "corpus"
    make_corpus(2, out, seed=1, size=32, progress=False)
    label, image, side = pair_paths(out, 1)
    meta = json.loads(side.read_text())
    assert meta["schema"] == SCHEMA and meta["files"] == {"label": [label.name], "image": [image.name]}
    assert meta["command"].startswith("ivus-sim corpus --n 2 --out ")
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    make_corpus(2, out, seed=1, size=32, progress=False)  # identical rerun: nothing rewritten but the manifest
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "corpus.json"} == \
        {k: v for k, v in stamp.items() if k != "corpus.json"}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "00000_image.png").write_bytes(b"mine")
    with pytest.raises(IvusSimError, match=r"exists .*use another --out"):
        make_corpus(1, foreign, seed=1, size=32, progress=False)
    assert (foreign / "00000_image.png").read_bytes() == b"mine"
