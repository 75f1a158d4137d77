"""ivus_sim.augment: datasets MONAI/nnU-Net can load, label ids, resume, shards, workers, errors.

All runs use the physics engine at 64 px so the whole file stays fast.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivus_sim.augment import (
    AugmentConfig,
    Engine,
    EngineSpec,
    ImageFormat,
    LabelMapping,
    Layout,
    Shard,
    load_label_mapping,
    regenerate_case,
    run_augment,
)
from ivus_sim.augment.manifest import COLUMNS, MANIFEST_NAME, PARTS_DIR
from ivus_sim.errors import IvusSimError
from ivus_sim.phantom.random import random_phantom
from ivus_sim.tissues import VALID_IDS, Tissue

SIZE = 64
PHYSICS = EngineSpec(engine=Engine.PHYSICS, preset="20mhz")


def _config(out: Path, n: int = 4, **kw) -> AugmentConfig:
    kw.setdefault("engine", PHYSICS)
    kw.setdefault("size", SIZE)
    kw.setdefault("seed", 7)
    return AugmentConfig(n=n, out=out, **kw)


def _files(root: Path) -> dict[str, bytes]:
    """Every non-hidden file under ``root`` (relative path -> bytes), the run record excepted."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _manifest(root: Path) -> list[dict[str, str]]:
    with open(root / MANIFEST_NAME, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted, single-process run of 6 cases (NIfTI, MONAI layout, tissue ids)."""
    out = tmp_path_factory.mktemp("ref") / "ds"
    report = run_augment(_config(out, n=6), workers=0, progress=False)
    assert report.complete and report.written == 6
    return out


# ------------------------------------------------------------------------- loadable datasets
@pytest.mark.parametrize("fmt", [ImageFormat.NIFTI, ImageFormat.PNG])
def test_monai_layout_loads_with_monai_and_labels_are_tissue_ids(tmp_path, fmt):
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    out = tmp_path / "ds"
    run_augment(_config(out, fmt=fmt), workers=0, progress=False)
    items = load_decathlon_datalist(str(out / "dataset.json"), is_segmentation=True, data_list_key="training",
                                    base_dir=str(out))
    assert len(items) == 4
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["numTraining"] == 4 and meta["labels"]["1"] == "lumen" and meta["labels"]["255"] == "outside"
    load = LoadImaged(keys=["image", "label"], image_only=True)
    images = []
    for i, item in enumerate(items):
        d = load(item)
        img, lab = np.asarray(d["image"]).squeeze(), np.asarray(d["label"]).squeeze()
        assert img.shape == lab.shape == (SIZE, SIZE)
        # both readers transpose 2-D data the same way (x = column); undo it to compare with the phantom
        lab = lab.T
        phantom = random_phantom(7, size=SIZE, index=i).labels[0]
        np.testing.assert_array_equal(lab.astype(np.uint8), phantom)
        assert set(np.unique(lab).astype(int)) <= VALID_IDS
        assert int(Tissue.LUMEN) in np.unique(lab)
        images.append(img.T)
    assert images[0].std() > 0 and not np.array_equal(images[0], images[1])
    if fmt is ImageFormat.NIFTI:
        import nibabel as nib

        nii: Any = nib.load(str(out / items[0]["image"]))
        zooms = nii.header.get_zooms()
        assert zooms[:2] == pytest.approx((10.0 / SIZE, 10.0 / SIZE))


@pytest.mark.parametrize("fmt", [ImageFormat.NIFTI, ImageFormat.PNG])
def test_nnunet_layout_follows_the_v2_format_and_merged_labels(tmp_path, fmt):
    from monai.transforms import LoadImage

    out = tmp_path / "Dataset501_IVUS"
    mapping = LabelMapping.builtin("lumen-wall")
    run_augment(_config(out, layout=Layout.NNUNET, fmt=fmt, labels_map=mapping), workers=0, progress=False)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "IVUS"}
    assert meta["labels"] == {"background": 0, "lumen": 1, "wall": 2}
    assert meta["numTraining"] == 4 and meta["file_ending"] == fmt.suffix
    ending = meta["file_ending"]
    images = sorted((out / "imagesTr").glob(f"*{ending}"))
    labels = sorted((out / "labelsTr").glob(f"*{ending}"))
    assert [p.name[: -len(ending)] for p in images] == [f"ivus_{i:06d}_0000" for i in range(4)]
    assert [p.name[: -len(ending)] for p in labels] == [f"ivus_{i:06d}" for i in range(4)]
    lut = mapping.lut()
    for i, p in enumerate(labels):
        lab = np.asarray(LoadImage(image_only=True)(str(p))).squeeze().T.astype(np.uint8)
        assert set(np.unique(lab)) == {0, 1, 2}
        np.testing.assert_array_equal(lab, lut[random_phantom(7, size=SIZE, index=i).labels[0]])
        # the wall is everything between lumen and EEM: media and plaque, never the catheter
        ph = random_phantom(7, size=SIZE, index=i).labels[0]
        assert np.all(lab[ph == Tissue.MEDIA] == 2) and np.all(lab[ph == Tissue.CATHETER] == 1)


def test_nnunet_layout_with_tissue_ids_uses_consecutive_ids_and_an_ignore_label(tmp_path):
    out = tmp_path / "ds"
    run_augment(_config(out, n=2, layout=Layout.NNUNET), workers=0, progress=False)
    labels = json.loads((out / "dataset.json").read_text())["labels"]
    assert labels["background"] == 0 and labels["ignore"] == max(labels.values())
    assert sorted(labels.values()) == list(range(len(labels)))  # nnU-Net v2 requires consecutive ids
    import nibabel as nib

    img: Any = nib.load(str(out / "labelsTr/ivus_000000.nii.gz"))
    lab = np.asarray(img.dataobj)
    assert int(lab.max()) == labels["ignore"]  # the corners outside the FOV


def test_manifest_records_seeds_and_phantom_parameters(reference):
    rows = _manifest(reference)
    assert [int(r["index"]) for r in rows] == list(range(6))
    assert set(COLUMNS) <= set(rows[0])
    for r in rows:
        meta = random_phantom(7, size=SIZE, index=int(r["index"])).meta["params"]
        assert float(r["phantom.plaque_burden"]) == pytest.approx(meta["plaque_burden"])
        assert json.loads(r["phantom_params"]) == json.loads(json.dumps(meta))
        assert int(r["seed"]) == 7 and r["engine"] == "physics:20mhz"
    assert len({r["image_seed"] for r in rows}) == 6
    assert not (reference / PARTS_DIR).exists()  # parts merged into manifest.csv


def test_sidecar_regenerates_its_case(reference):
    import nibabel as nib

    sc = reference / "imagesTr" / "ivus_000003.json"
    image, label = regenerate_case(sc)
    img: Any = nib.load(str(reference / "imagesTr/ivus_000003.nii.gz"))
    written = np.asarray(img.dataobj)[..., 0].T
    np.testing.assert_array_equal(image, written)
    np.testing.assert_array_equal(label, random_phantom(7, size=SIZE, index=3).labels[0])


# ------------------------------------------------------------------- resume, shards, workers
def test_resume_after_interruption_gives_the_same_bytes_without_duplicates(tmp_path, reference):
    out = tmp_path / "ds"
    seen: list[int] = []

    def crash_after_two(row):
        seen.append(row.index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_augment(_config(out, n=6), workers=0, progress=False, on_case=crash_after_two)
    assert not (out / "dataset.json").exists()
    report = run_augment(_config(out, n=6), workers=0, progress=False)
    assert report.complete and report.existing == 2 and report.written == 4
    rows = _manifest(out)
    assert [int(r["index"]) for r in rows] == list(range(6))  # no gaps, no duplicates
    assert _files(out) == _files(reference)


def test_resume_after_sigkill(tmp_path, reference):
    """A process killed with SIGKILL mid-run (files half written, manifest behind) resumes byte-identically."""
    out = tmp_path / "ds"
    marker = tmp_path / "third-case-written"
    # no timed kill window: the run blocks inside the third case's hook (its image written, its manifest row
    # not yet flushed) until it is killed, and says so through a marker file the test waits for
    script = textwrap.dedent(f"""
        import threading
        from pathlib import Path
        from ivus_sim.augment import AugmentConfig, Engine, EngineSpec, run_augment
        cfg = AugmentConfig(n=6, out=Path({str(out)!r}), seed=7, size={SIZE},
                            engine=EngineSpec(engine=Engine.PHYSICS, preset="20mhz"))
        seen = []
        def hook(row):
            seen.append(row)
            if len(seen) == 3:
                Path({str(marker)!r}).touch()
                threading.Event().wait()
        run_augment(cfg, workers=0, progress=False, flush_every=1, on_case=hook)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # polling a condition, not timing the kill
        assert marker.exists(), proc.stderr.read().decode() if proc.poll() is not None and proc.stderr else "no marker"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "dataset.json").exists()
    report = run_augment(_config(out, n=6), workers=0, progress=False)
    assert report.complete and 2 <= report.existing < 6 and report.existing + report.written == 6
    assert _files(out) == _files(reference)
    assert not list(out.rglob(".*tmp*"))  # no stale temporary files left for nnU-Net to trip on


@pytest.mark.parametrize("n,k", [(1, 1), (6, 3), (7, 3), (5, 8)])
def test_shard_indices_are_disjoint_and_complete(n, k):
    parts = [set(Shard(i, k).indices(n)) for i in range(k)]
    assert sum(len(p) for p in parts) == n and set().union(*parts) == set(range(n))


def test_shards_into_one_folder_equal_a_single_run(tmp_path, reference):
    out = tmp_path / "ds"
    written = []
    for i in range(3):
        rep = run_augment(_config(out, n=6), shard=Shard(i, 3), workers=0, progress=False)
        written.append(rep.written)
        assert rep.complete == (i == 2)
        assert (out / "dataset.json").exists() == (i == 2)
    assert written == [2, 2, 2]
    assert _files(out) == _files(reference)


def test_shards_in_separate_folders_are_disjoint_and_their_union_is_the_single_run(tmp_path, reference):
    cases = []
    for i in range(2):
        out = tmp_path / f"shard{i}"
        run_augment(_config(out, n=6), shard=Shard(i, 2), workers=0, progress=False)
        cases.append({p.name for p in (out / "imagesTr").glob("*.nii.gz")})
    assert not cases[0] & cases[1]
    assert cases[0] | cases[1] == {p.name for p in (reference / "imagesTr").glob("*.nii.gz")}
    for i in range(2):
        for name in cases[i]:
            for sub in ("imagesTr", "labelsTr"):
                assert (tmp_path / f"shard{i}" / sub / name).read_bytes() == (reference / sub / name).read_bytes()


def test_worker_processes_give_the_same_bytes_also_when_interrupted(tmp_path, reference):
    out = tmp_path / "ds"

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the pool is stopped, the finished case recorded
        run_augment(_config(out, n=6), workers=2, progress=False, on_case=stop)
    report = run_augment(_config(out, n=6), workers=2, progress=False)
    assert report.complete and report.existing >= 1 and report.existing + report.written == 6
    assert _files(out) == _files(reference)


def test_growing_n_extends_the_dataset(tmp_path, reference):
    out = tmp_path / "ds"
    run_augment(_config(out, n=4), workers=0, progress=False)
    report = run_augment(_config(out, n=6), workers=0, progress=False)
    assert report.existing == 4 and report.written == 2
    assert _files(out) == _files(reference)


# ------------------------------------------------------------------------------ errors
def test_resume_with_other_options_is_refused(tmp_path):
    out = tmp_path / "ds"
    run_augment(_config(out, n=2), workers=0, progress=False)
    with pytest.raises(IvusSimError, match="different seed"):
        run_augment(_config(out, n=2, seed=8), workers=0, progress=False)
    with pytest.raises(IvusSimError, match="different format"):
        run_augment(_config(out, n=2, fmt=ImageFormat.PNG), workers=0, progress=False)
    with pytest.raises(IvusSimError, match="--n 2"):
        run_augment(_config(out, n=1), workers=0, progress=False)


def test_a_run_that_failed_before_any_case_can_restart_with_other_options(tmp_path, monkeypatch):
    out = tmp_path / "ds"

    def broken(self):
        raise IvusSimError("no embedded default model")

    with monkeypatch.context() as m:
        m.setattr(EngineSpec, "build", broken)
        with pytest.raises(IvusSimError, match="no embedded default model"):
            run_augment(_config(out, n=2, engine=EngineSpec(Engine.LEARNED)), workers=0, progress=False)
    assert (out / "augment.json").exists()
    report = run_augment(_config(out, n=2), workers=0, progress=False)
    assert report.complete
    assert json.loads((out / "augment.json").read_text())["engine"]["engine"] == "physics"


def test_a_foreign_non_empty_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(IvusSimError, match="not empty"):
        run_augment(_config(tmp_path, n=1), workers=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("text,match", [
    ("background: [perivascular, outside]\nlumen: [lumen, blood]\n", "unknown tissue 'blood'"),
    ("background: [perivascular, outside, lumen]\nlumen: [lumen]\n", "listed under both"),
    ("background: [perivascular]\nlumen: [lumen]\n", "not assigned to any label: fibrous"),
    ("- lumen\n- wall\n", "expected a mapping"),
    ("background: [perivascular]\n", "at least 2 labels"),
    ("background: [perivascular\n", "not valid YAML"),
    ("ignore: [outside]\nlumen: [lumen]\n", "must be listed last"),
    ("background: []\nlumen: [lumen]\n", "non-empty list"),
])
def test_bad_mapping_file_gives_a_clear_error(tmp_path, text, match):
    f = tmp_path / "map.yaml"
    f.write_text(text)
    with pytest.raises(IvusSimError, match=match):
        load_label_mapping(f)


def test_mapping_file_yaml_and_json_agree_and_set_ids_in_order(tmp_path):
    spec = {"background": ["perivascular", "outside", "catheter", "guidewire"], "lumen": ["lumen"],
            "plaque": ["fibrous", "fibro_fatty", "necrotic_core", "dense_calcium", "stent_strut"], "media": ["media"]}
    (tmp_path / "m.json").write_text(json.dumps(spec))
    import yaml

    (tmp_path / "m.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    a, b = load_label_mapping(tmp_path / "m.json"), load_label_mapping(tmp_path / "m.yml")
    assert a.labels == b.labels and a.names == ("background", "lumen", "plaque", "media")
    lab = np.array([[Tissue.CATHETER, Tissue.LUMEN, Tissue.DENSE_CALCIUM, Tissue.MEDIA, Tissue.OUTSIDE]],
                   dtype=np.uint8)
    np.testing.assert_array_equal(a.apply(lab), [[0, 1, 2, 3, 0]])
    assert LabelMapping.from_record(a.to_dict()) == a


def test_user_phantom_folder_is_cycled(tmp_path):
    from ivus_sim.phantom.reader import write_phantom

    folder = tmp_path / "phantoms"
    for i in range(2):
        write_phantom(folder / f"p{i}.npy", random_phantom(3, size=SIZE, index=i))
    out = tmp_path / "ds"
    run_augment(_config(out, n=3, phantoms=folder, size=None, fmt=ImageFormat.PNG), workers=0, progress=False)
    rows = _manifest(out)
    assert [Path(r["phantom_source"]).name for r in rows] == ["p0.npy", "p1.npy", "p0.npy"]
    assert rows[0]["phantom_hash"] == rows[2]["phantom_hash"] != rows[1]["phantom_hash"]
    assert rows[0]["image_hash"] != rows[2]["image_hash"]  # same phantom, fresh speckle


def test_finishing_keeps_a_live_writers_temp_files_and_removes_dead_ones(tmp_path: Path) -> None:
    """A shard that finishes while another shard still writes must not delete that shard's temp
    files (it did: every hidden temp in the dataset folders was removed); a killed writer's are."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(done.stdout)
    out = tmp_path / "d"
    run_augment(_config(out, n=4), shard=Shard(0, 2), workers=0, progress=False)  # one shard done
    live = out / "imagesTr" / f".ivus_000009.png.{os.getpid()}-abcd1234.tmp.png"
    dead = out / "imagesTr" / f".ivus_000008.png.{dead_pid}-abcd1234.tmp.png"
    live.write_bytes(b"x")
    dead.write_bytes(b"x")
    assert run_augment(_config(out, n=4), shard=Shard(1, 2), workers=0, progress=False).complete  # finishes
    assert live.exists() and not dead.exists()


# ------------------------------------------------------------------------- a physics tissue table
def test_physics_engine_with_its_own_tissue_table_is_used_recorded_and_regenerated(tmp_path, reference):
    """``EngineSpec.tissues``: another table changes the images, is named in the run record, and a
    sidecar of such a run regenerates its case with that table (not the shipped one)."""
    import yaml

    from ivus_sim.config import load_tissue_acoustics

    table = load_tissue_acoustics().to_dict()
    table["tissues"]["perivascular"]["backscatter_db"] -= 12.0  # a much darker adventitia
    path = tmp_path / "dark.yaml"
    path.write_text(yaml.safe_dump(table))
    spec = EngineSpec(engine=Engine.PHYSICS, preset="20mhz", tissues=path)
    assert spec.to_dict()["tissues"] == str(path.resolve()) and "dark.yaml" in spec.describe()
    assert "tissues" not in PHYSICS.to_dict()  # runs with the shipped table keep their old record
    out = tmp_path / "ds"
    run_augment(_config(out, n=6, engine=spec), workers=0, progress=False)
    img_dark, lab_dark = regenerate_case(out / "imagesTr" / "ivus_000003.json")
    img_ref, lab_ref = regenerate_case(reference / "imagesTr" / "ivus_000003.json")
    import nibabel as nib

    written: Any = nib.load(str(out / "imagesTr/ivus_000003.nii.gz"))
    np.testing.assert_array_equal(img_dark, np.asarray(written.dataobj)[..., 0].T)
    assert np.array_equal(lab_dark, lab_ref)  # same phantoms (same seed), other acoustics
    peri = lab_ref == int(Tissue.PERIVASCULAR)
    assert img_dark[peri].mean() < img_ref[peri].mean() - 10


def test_a_tissue_table_needs_the_physics_engine_and_an_existing_file(tmp_path):
    with pytest.raises(IvusSimError, match="physics-engine setting"):
        EngineSpec(engine=Engine.LEARNED, tissues=tmp_path / "t.yaml")
    with pytest.raises(IvusSimError, match="no such file"):
        EngineSpec(engine=Engine.PHYSICS, tissues=tmp_path / "missing.yaml")
    from ivus_sim.augment.randomise import load_ranges

    table = tmp_path / "t.yaml"
    table.write_text("reference_frequency_mhz: 20.0\n")
    with pytest.raises(IvusSimError, match="exclude each other"):  # a randomised scanner would ignore it
        _config(tmp_path / "ds", engine=EngineSpec(engine=Engine.PHYSICS, tissues=table),
                randomise=load_ranges("scanner"))
