"""Presets and the tissue acoustics table: shipped files load, bad files fail naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivus_sim.config import Preset, TissueAcoustics, list_presets, load_preset, load_tissue_acoustics
from ivus_sim.errors import IvusSimError
from ivus_sim.tissues import TISSUES, Tissue


def test_shipped_presets_and_table_load():
    assert {"20mhz", "40mhz"} <= set(list_presets())
    p20, p40 = load_preset("20mhz"), load_preset("40mhz")
    assert p20.transducer.centre_frequency_mhz == 20 and p40.transducer.centre_frequency_mhz == 40
    assert p40.wavelength_mm < p20.wavelength_mm
    table = load_tissue_acoustics()
    names = {i.name for t, i in TISSUES.items() if t != Tissue.OUTSIDE}
    assert set(table.tissues) == names
    assert table.tissue("dense_calcium").shadow and table.tissue(int(Tissue.DENSE_CALCIUM)).specular
    # blood is a Rayleigh scatterer: its backscatter rises faster with frequency than tissue's
    assert table.tissue("lumen").frequency_exponent > table.tissue("fibrous").frequency_exponent


def test_round_trip_through_dict():
    p = load_preset("20mhz")
    assert Preset.from_dict(p.to_dict()) == p
    t = load_tissue_acoustics()
    assert TissueAcoustics.from_dict(t.to_dict()) == t


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _preset_dict() -> dict:
    return load_preset("20mhz").to_dict()


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["transducer"].update(centre_frequency_mhz="abc"),
     r"transducer\.centre_frequency_mhz: expected a number"),
    (lambda d: d["transducer"].update(centre_frequency_mhz=-5), r"transducer\.centre_frequency_mhz"),
    (lambda d: d["transducer"].update(n_angles=12.5), r"transducer\.n_angles: expected an integer"),
    (lambda d: d["processing"].pop("dynamic_range_db"), r"processing\.dynamic_range_db: missing"),
    (lambda d: d["beam"].update(focal_length=3), r"beam\.focal_length: unknown field"),
    (lambda d: d["nurd"].update(enabled="yes"), r"nurd\.enabled: expected true or false"),
    (lambda d: d.update(ringdown=[1, 2]), r"ringdown: expected a mapping"),
])
def test_bad_preset_names_the_field(tmp_path, mutate, match):
    d = _preset_dict()
    mutate(d)
    path = _write(tmp_path, "mine.yaml", d)
    with pytest.raises(IvusSimError, match=match) as e:
        load_preset(path)
    assert "mine.yaml" in str(e.value)


def test_user_preset_path_loads(tmp_path):
    d = _preset_dict()
    d["processing"]["dynamic_range_db"] = 70.0
    d.pop("name")
    p = load_preset(_write(tmp_path, "custom.yaml", d))
    assert p.processing.dynamic_range_db == 70.0 and p.name == "custom"


def test_unknown_preset_and_bad_yaml(tmp_path):
    with pytest.raises(IvusSimError, match="unknown preset"):
        load_preset("13mhz")
    bad = tmp_path / "bad.yaml"
    bad.write_text("transducer: [unclosed\n")
    with pytest.raises(IvusSimError, match="not valid YAML"):
        load_preset(bad)


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["tissues"].pop("media"), r"tissues\.media: missing"),
    (lambda d: d["tissues"].update(bone={}), r"tissues\.bone: unknown tissue name"),
    (lambda d: d["tissues"]["lumen"].update(backscatter_db=None), r"tissues\.lumen\.backscatter_db"),
    (lambda d: d["tissues"]["fibrous"].update(scatterer_density_per_mm2=0), r"scatterer_density_per_mm2: expected"),
    (lambda d: d["tissues"]["dense_calcium"].update(shadow=1), r"dense_calcium\.shadow: expected true or false"),
])
def test_bad_tissue_table_names_the_field(tmp_path, mutate, match):
    d = load_tissue_acoustics().to_dict()
    mutate(d)
    with pytest.raises(IvusSimError, match=match):
        load_tissue_acoustics(_write(tmp_path, "tissues.yaml", d))
