"""The leakage audit passes clean sets, catches injected cues, and gates the study build."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from ivus_sim.errors import IvusSimError
from ivus_sim.seeding import rng
from ivus_sim.turing.audit import audit_files
from ivus_sim.turing.demo import demo_frame
from ivus_sim.turing.encode import png_chunks
from ivus_sim.turing.store import DB_NAME, Store
from ivus_sim.turing.study import StudyConfig, build_study

N = 16


def _frames(stream: str, n: int = N, size: int = 48) -> list[np.ndarray]:
    return [demo_frame(size, rng(7, "audit-test", stream, i)) for i in range(n)]


def _write(folder: Path, frames: list[np.ndarray], prefix: str, fmt: str = "PNG", **save: object) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(frames):
        p = folder / f"{prefix}_{i:03d}.{'jpg' if fmt == 'JPEG' else 'png'}"
        Image.fromarray(f).save(p, format=fmt, **save)
        out.append(p)
    return out


def _flagged(audit) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.name for c in audit.flagged}


def test_clean_sets_pass(tmp_path: Path) -> None:
    real = _write(tmp_path / "real", _frames("real"), "real")
    fake = _write(tmp_path / "fake", _frames("fake"), "sim")
    audit = audit_files(real, fake)
    assert audit.passed, audit.summary()


def test_file_size_cue(tmp_path: Path) -> None:
    # same pixel statistics; only the PNG compression level (hence file size) differs by class
    real = _write(tmp_path / "real", _frames("real"), "real", compress_level=9)
    fake = _write(tmp_path / "fake", _frames("fake"), "sim", compress_level=0)
    assert _flagged(audit_files(real, fake)) == {"file_size"}


def test_metadata_cue(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "simulator 1.0")
    real = _write(tmp_path / "real", _frames("real"), "real")
    fake = _write(tmp_path / "fake", _frames("fake"), "sim", pnginfo=info)
    flagged = _flagged(audit_files(real, fake))
    assert "metadata" in flagged


def test_intensity_offset_cue(tmp_path: Path) -> None:
    real = _write(tmp_path / "real", _frames("real"), "real")
    shifted = [np.where(f > 0, np.clip(f.astype(int) + 25, 0, 255), 0).astype(np.uint8) for f in _frames("fake")]
    fake = _write(tmp_path / "fake", shifted, "sim")
    flagged = _flagged(audit_files(real, fake))
    assert {"intensity_mean", "histogram_spectrum_classifier"} <= flagged


def test_jpeg_vs_png_cue(tmp_path: Path) -> None:
    real = _write(tmp_path / "real", _frames("real"), "real", fmt="JPEG", quality=40)
    fake = _write(tmp_path / "fake", _frames("fake"), "sim")
    flagged = _flagged(audit_files(real, fake))
    assert "format" in flagged
    # after re-encoding, the format is gone but JPEG smoothing of the speckle is still a pixel cue
    assert "histogram_spectrum_classifier" in flagged


def test_build_neutralises_container_cues(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by the simulator")
    _write(tmp_path / "real", _frames("real"), "real", compress_level=9)
    _write(tmp_path / "fake", _frames("fake"), "sim", compress_level=1, pnginfo=info)
    built = build_study(tmp_path / "real", tmp_path / "fake", tmp_path / "study",
                        StudyConfig(n_readers=1, size=48, seed=1), progress=False)
    assert {"file_size", "metadata"} <= _flagged(built.source_audit)  # the sources leak ...
    assert built.audit.passed, built.audit.summary()  # ... the encoded study does not
    files = sorted((tmp_path / "study" / "images").iterdir())
    assert len({f.stat().st_size for f in files}) == 1
    for f in files:
        data = f.read_bytes()
        assert png_chunks(data) == ["IHDR", "IDAT", "IEND"]
        assert len(f.stem) == 32 and "real" not in f.name and "sim" not in f.name
        with Image.open(io.BytesIO(data)) as im:
            assert (im.mode, im.size) == ("L", (48, 48))
            arr = np.asarray(im)
        from ivus_sim.geometry import fov_mask

        assert not arr[~fov_mask(48)].any()  # identical FOV mask


def test_failed_audit_fails_build_and_force_records_it(tmp_path: Path) -> None:
    _write(tmp_path / "real", _frames("real"), "real")
    shifted = [np.where(f > 0, np.clip(f.astype(int) + 30, 0, 255), 0).astype(np.uint8) for f in _frames("fake")]
    _write(tmp_path / "fake", shifted, "sim")
    out = tmp_path / "study"
    with pytest.raises(IvusSimError, match=r"leakage audit failed.*intensity_mean"):
        build_study(tmp_path / "real", tmp_path / "fake", out, StudyConfig(size=48), progress=False)
    assert not out.exists()  # no partial study
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake", "real"]  # no temp folder, no report files
    built = build_study(tmp_path / "real", tmp_path / "fake", out, StudyConfig(size=48, force=True), progress=False)
    assert not built.audit.passed
    with Store(out / DB_NAME) as store:
        assert store.meta("audit_forced") is True
        assert store.meta("leakage_audit")["passed"] is False


def _overlay_text(frame: np.ndarray, amp: int = 20) -> np.ndarray:
    """Faint burnt-in text ("5mm"-like strokes, +amp grey) inside the FOV, at the same place in every frame."""
    from ivus_sim.geometry import fov_mask

    f = frame.astype(int)
    s = f.shape[0]
    pat = np.zeros((5, 12), bool)
    pat[[0, 2, 4], :3] = True
    pat[:3, 0] = pat[2:, 2] = True
    pat[:, [5, 7, 9]] = True
    pat[0, 5:10] = True
    y0, x0 = int(s * 0.80), int(s * 0.40)
    sub = f[y0:y0 + 5, x0:x0 + 12]
    sub[pat] += amp
    f[~fov_mask(s)] = 0
    return np.clip(f, 0, 255).astype(np.uint8)


def _scan_line(frame: np.ndarray) -> np.ndarray:
    """A dark 1-px scan line from the centre outwards (an A-line dropout), in every frame of one class."""
    from ivus_sim.geometry import fov_mask

    f = frame.copy()
    s = f.shape[0]
    f[s // 2, s // 2:s // 2 + int(s * 0.4)] //= 3
    f[~fov_mask(s)] = 0
    return f


@pytest.mark.parametrize("cue", ["text", "line"])
def test_localised_cues_are_caught(tmp_path: Path, cue: str) -> None:
    n, size = (24, 48) if cue == "text" else (24, 96)
    real = _write(tmp_path / "real", _frames("real", n, size), "real")
    mark = _overlay_text if cue == "text" else _scan_line
    fake = _write(tmp_path / "fake", [mark(f) for f in _frames("fake", n, size)], "sim")
    audit = audit_files(real, fake)
    assert _flagged(audit) == {"localised_difference"}, audit.summary()  # whole-image checks miss it
    check = next(c for c in audit.checks if c.name == "localised_difference")
    assert check.p_value is not None and check.p_value < 0.01 and check.kind.value == "localised"


def test_localised_check_false_alarm_rate_on_same_source_classes() -> None:
    """Seeded same-source splits: the permutation test flags about alpha of them (here at most 1 of 25)."""
    from ivus_sim.turing.audit import localised_check

    flagged, ps = 0, []
    for s in range(25):
        a = [demo_frame(40, rng(s, "fa-test", "a", i)).astype(np.float32) / 255 for i in range(12)]
        b = [demo_frame(40, rng(s, "fa-test", "b", i)).astype(np.float32) / 255 for i in range(12)]
        c = localised_check(a, b, seed=s, n_perm=199)
        flagged += c.flagged
        ps.append(c.p_value)
    assert flagged <= 1
    assert 0.2 < float(np.median(ps)) < 0.8  # p-values spread over (0, 1) under the null, not piled up at 0


def test_localised_leak_fails_the_build_and_leaves_nothing(tmp_path: Path) -> None:
    _write(tmp_path / "real", _frames("real", 24), "real")
    _write(tmp_path / "fake", [_scan_line(f) for f in _frames("fake", 24)], "sim")
    with pytest.raises(IvusSimError, match="localised_difference"):
        build_study(tmp_path / "real", tmp_path / "fake", tmp_path / "study", StudyConfig(size=48), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake", "real"]
