"""FUSAR-Ship adapter: original tree with meta.csv join, the 10-class repackage, bad inputs, fixture generator."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, load_generator

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.sources.fusarship import CLASSES, CLASSES_10, FUSARShip
from sardata.store import load_arrays

HERE = FIXTURES / "fusar-ship"
ORIGINAL = HERE / "FUSAR_Ship1.0"
REPACK = HERE / "New_FUSAR"
CARGO = "Cargo/BulkCarrier/Ship_C01S02N0001.tiff"


def _files(out: Path) -> dict[str, dict]:
    """``sources`` rows of whole files (no member rows), by path."""
    return {r["src_path"]: r for r in load_ingest(out)[1].to_pylist() if r["src_member"] is None}


def _members(out: Path) -> list[dict]:
    return [r for r in load_ingest(out)[1].to_pylist() if r["src_member"] is not None]


def _samples(out: Path) -> dict[str, dict]:
    return {r["src_path"]: r for r in load_ingest(out)[0].to_pylist()}


def _n_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def test_original_tree_counts_labels_and_every_file_once(tmp_path: Path) -> None:
    result = ingest("fusar-ship", ORIGINAL, tmp_path)
    assert result.files == {"ok": 4, "rejected": 1} and result.members == {"rejected": 1}
    files, samples = _files(tmp_path), _samples(tmp_path)
    assert len(files) == _n_files(ORIGINAL) == 5
    assert files["Cargo/BulkCarrier/Ship_C01S02N0004.tiff"]["status"] == "rejected"
    assert files["Cargo/BulkCarrier/Ship_C01S02N0004.tiff"]["reason"] == "truncated"
    assert (files["meta.csv"]["status"], files["meta.csv"]["n_samples"]) == ("ok", 0)
    assert {k: (v["label_name"], v["label"]) for k, v in samples.items()} == {
        CARGO: ("Cargo", 0),
        "Fishing/Fishing/Ship_C04S01N0002.tiff": ("Fishing", 3),
        "Tanker/LPGTanker/Ship_C12S03N0003.tiff": ("Tanker", 11),
    }
    cargo = samples[CARGO]
    assert (cargo["height"], cargo["width"], cargo["channels"], cargo["dtype"]) == (512, 512, 1, "uint8")
    assert (cargo["split"], cargo["radiometry"], cargo["scale"], cargo["sensor"]) == (
        "pool",
        "display8",
        "uint8",
        "GF-3",
    )
    assert samples["Fishing/Fishing/Ship_C04S01N0002.tiff"]["height"] == 64
    meta = json.loads(cargo["meta"])
    assert (meta["category"], meta["subcategory"], meta["layout"]) == ("Cargo", "BulkCarrier", "original")
    assert (meta["name_category"], meta["name_subcategory"], meta["name_index"]) == (1, 2, 1)
    card = json.loads((tmp_path / "dataset.json").read_text())
    assert card["class_maps"]["fusar-ship"] == list(CLASSES) and len(CLASSES) == 15


def test_meta_csv_join_values(tmp_path: Path) -> None:
    ingest("fusar-ship", ORIGINAL, tmp_path)
    samples = _samples(tmp_path)
    cargo = samples[CARGO]
    assert cargo["incidence_deg"] == pytest.approx(33.57) and cargo["depression_deg"] is None
    assert cargo["pixel_spacing_m"] == pytest.approx([1.124, 0.982])
    assert cargo["pol"] == "VH"
    meta = json.loads(cargo["meta"])
    assert meta["mmsi"] == "413256960" and meta["csv_joined"] is True and meta["csv_line"] == 2
    assert (meta["ship_length_m"], meta["ship_width_m"], meta["polar_mode"]) == (189.99, 32.26, "VH")
    assert meta["csv_path"] == "Cargo/BulkCarrier" and "warnings" not in meta  # backslash path normalised
    fishing = samples["Fishing/Fishing/Ship_C04S01N0002.tiff"]
    assert (fishing["pol"], fishing["incidence_deg"]) == ("VV", pytest.approx(41.02))
    tanker = samples["Tanker/LPGTanker/Ship_C12S03N0003.tiff"]  # an image without a CSV row is fine
    assert tanker["incidence_deg"] is None and tanker["pixel_spacing_m"] is None and tanker["pol"] == "unknown"
    assert json.loads(tanker["meta"])["csv_joined"] is False and "mmsi" not in json.loads(tanker["meta"])


def test_orphan_csv_row_is_a_rejected_member(tmp_path: Path) -> None:
    ingest("fusar-ship", ORIGINAL, tmp_path)
    (orphan,) = _members(tmp_path)
    assert (orphan["src_path"], orphan["status"], orphan["reason"]) == ("meta.csv", "rejected", "orphan_metadata")
    assert orphan["src_member"] == "line:000005:Ship_C13S01N0005"
    assert "Tug\\Tug" in orphan["detail"] and orphan["error_type"] == "RejectFile"


def test_tiff_pixels_match_an_independent_decode(tmp_path: Path) -> None:
    from PIL import Image

    ingest("fusar-ship", ORIGINAL, tmp_path)
    for rel, row in _samples(tmp_path).items():
        img = load_arrays(tmp_path, row["store_path"])["img"]
        np.testing.assert_array_equal(img[0], np.asarray(Image.open(ORIGINAL / rel)))


def test_tab_delimited_csv_joins_the_same(tmp_path: Path) -> None:
    root = tmp_path / "fusar"
    shutil.copytree(ORIGINAL, root)
    text = (root / "meta.csv").read_text().replace(",", "\t").replace("\r\n", "\n")
    (root / "meta.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # with a BOM, as Excel writes it
    result = ingest("fusar-ship", root, tmp_path / "out")
    assert result.files == {"ok": 4, "rejected": 1} and result.members == {"rejected": 1}
    cargo = _samples(tmp_path / "out")[CARGO]
    assert cargo["incidence_deg"] == pytest.approx(33.57) and json.loads(cargo["meta"])["mmsi"] == "413256960"
    (orphan,) = _members(tmp_path / "out")
    assert orphan["reason"] == "orphan_metadata" and "Ship_C13S01N0005" in orphan["src_member"]


def test_bad_inputs_are_rows_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "fusar"
    shutil.copytree(ORIGINAL, root)
    good = (root / CARGO).read_bytes()
    (root / "Cargo/BulkCarrier/Ship_C01S02N0007.tiff").write_bytes(b"II*\x00" + b"\xff\x00\x13" * 40)
    (root / "Cargo/BulkCarrier/Ship_C01S02N0008.tiff").write_bytes(b"<html>not found</html>")
    (root / "Submarine/Nuclear").mkdir(parents=True)
    (root / "Submarine/Nuclear/Ship_C99S01N0001.tiff").write_bytes(good)
    (root / "MarineCategory/wave").mkdir(parents=True)
    (root / "MarineCategory/wave/wave_0001.tiff").write_bytes(good)
    (root / "meta.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with open(root / "meta.csv", "a") as fh:  # a short row and a repeated id
        fh.write("Ship_C04S01N0002,1,2\r\nShip_C04S01N0002,999,1,1,VV,30,1,1,Fishing\\Fishing\r\n")
    result = ingest("fusar-ship", root, tmp_path / "out")
    files = _files(tmp_path / "out")
    assert len(files) == _n_files(root) == 10  # every file exactly once
    status = {k: (v["status"], v["reason"]) for k, v in files.items()}
    assert status["Cargo/BulkCarrier/Ship_C01S02N0004.tiff"] == ("rejected", "truncated")
    assert status["Cargo/BulkCarrier/Ship_C01S02N0007.tiff"] == ("rejected", "undecodable")
    assert status["Cargo/BulkCarrier/Ship_C01S02N0008.tiff"] == ("rejected", "bad_format")
    assert status["Submarine/Nuclear/Ship_C99S01N0001.tiff"] == ("rejected", "unknown_class")
    assert status["MarineCategory/wave/wave_0001.tiff"] == ("skipped", "not_ship")
    assert status["meta.xls"] == ("skipped", "unsupported_metadata")
    assert result.files == {"ok": 4, "rejected": 4, "skipped": 2}
    members = {(m["reason"], m["src_member"]) for m in _members(tmp_path / "out")}
    assert members == {
        ("orphan_metadata", "line:000005:Ship_C13S01N0005"),
        ("bad_row", "line:000006:Ship_C04S01N0002"),
        ("duplicate_id", "line:000007:Ship_C04S01N0002"),
    }
    assert "Cargo" in dict((p, d) for p, _, d in result.rejected)["Submarine/Nuclear/Ship_C99S01N0001.tiff"]
    fishing = _samples(tmp_path / "out")["Fishing/Fishing/Ship_C04S01N0002.tiff"]
    assert json.loads(fishing["meta"])["mmsi"] == "412440123"  # the first row wins


def test_ten_class_repackage(tmp_path: Path) -> None:
    result = ingest("fusar-ship", REPACK, tmp_path, options={"setting": "10class"})
    assert result.files == {"ok": 5}
    samples = _samples(tmp_path)
    got = {k: (v["label_name"], v["label"], v["split"]) for k, v in samples.items()}
    assert got == {
        "Train/Cargo/Ship_C01S01N0101.png": ("Cargo", 1, "train"),
        "Train/Cargo/Ship_C01S01N0102.jpg": ("Cargo", 1, "train"),
        "Train/Fishing/Ship_C04S01N0103.png": ("Fishing", 3, "train"),
        "Val/Cargo/Ship_C01S01N0104.jpg": ("Cargo", 1, "test"),
        "Val/Fishing/Ship_C04S01N0105.png": ("Fishing", 3, "test"),
    }
    rgb = samples["Train/Fishing/Ship_C04S01N0103.png"]  # RGB with equal channels → one channel, not colour
    assert rgb["channels"] == 1 and json.loads(rgb["meta"])["was_colour"] is False
    assert json.loads(samples["Val/Cargo/Ship_C01S01N0104.jpg"]["meta"])["split_folder"] == "Val"
    card = json.loads((tmp_path / "dataset.json").read_text())
    assert card["class_maps"]["fusar-ship"] == list(CLASSES_10)


def test_ten_class_setting_maps_the_original_tree(tmp_path: Path) -> None:
    result = ingest("fusar-ship", ORIGINAL, tmp_path, options={"setting": "10class"})
    assert result.files == {"ok": 3, "skipped": 2} and result.members == {"rejected": 1}
    got = {k: (v["label_name"], v["label"], v["split"]) for k, v in _samples(tmp_path).items()}
    assert got == {
        "Fishing/Fishing/Ship_C04S01N0002.tiff": ("Fishing", 3, "pool"),
        "Tanker/LPGTanker/Ship_C12S03N0003.tiff": ("Tanker", 9, "pool"),
    }
    skipped = {k: v["reason"] for k, v in _files(tmp_path).items() if v["status"] == "skipped"}
    assert set(skipped.values()) == {"class_not_selected"} and all(k.startswith("Cargo/") for k in skipped)


def test_fifteen_class_setting_skips_the_repackage(tmp_path: Path) -> None:
    result = ingest("fusar-ship", HERE, tmp_path)
    files = _files(tmp_path)
    repack = {k: v["reason"] for k, v in files.items() if k.startswith("New_FUSAR/")}
    assert len(repack) == 5 and set(repack.values()) == {"other_setting"}
    assert files["data.py"]["reason"] == "not_data"
    assert result.files == {"ok": 4, "rejected": 1, "skipped": 6}


def test_bad_setting_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="setting must be one of"):
        ingest("fusar-ship", ORIGINAL, tmp_path, options={"setting": "12class"})


def test_source_card_matches_the_adapter() -> None:
    from sardata.recipes import load_yaml

    card = load_yaml(REPO / "manifests" / "sources" / "fusar-ship.yaml")
    assert card.id == FUSARShip.id and card.classes == list(FUSARShip.classes)


def test_fixture_generator_is_deterministic(tmp_path: Path) -> None:
    gen = load_generator("fusar-ship")
    a, b = gen.generate(tmp_path / "a"), gen.generate(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]  # TIFF (GDAL, Pillow), PNG, JPEG, CSV
    committed = sorted(p for p in HERE.rglob("*") if p.is_file() and p.name != "data.py")
    assert [p.relative_to(HERE) for p in committed] == [p.relative_to(tmp_path / "a") for p in a]
