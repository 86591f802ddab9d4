"""SAR-Ship-Dataset adapter: committed folder + zip fixture (exact values), bad inputs built in a copy, options."""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, load_generator
from PIL import Image

from sardata.ingest import ingest, load_ingest
from sardata.recipes import SourceCard, load_yaml
from sardata.sources._base import FileUnit
from sardata.sources.sarship import SARShip
from sardata.store import load_arrays

HERE = FIXTURES / "sar-ship"
ROOT = HERE / "ship_dataset_v0"
ZIP = HERE / "ship_dataset_v0.zip"
HH = "Gao_ship_hh_0201608254401010021"
EMPTY = "Gao_ship_hv_0201608254401010022"
#: stem -> (sensor, pol, mode, number of boxes)
EXPECTED = {
    HH: ("GF-3", "HH", "RGB", 3),
    "Gao_ship_vv_02017010717020801": ("GF-3", "VV", "RGB", 1),
    "Sen_ship_vh_0201611220205011": ("Sentinel-1", "VH", "RGB", 1),
    "newship011017035": ("unknown", "unknown", "L", 1),
    "ship030402": ("unknown", "unknown", "L", 1),
    EMPTY: ("GF-3", "HV", "RGB", 0),
}


def _rows(out: Path, by: str = "src_path") -> tuple[dict, dict]:
    samples, sources = load_ingest(out)
    return {Path(r[by]).stem: r for r in samples.to_pylist()}, {
        (r["src_path"], r["src_member"]): r for r in sources.to_pylist()
    }


def _boxes(out: Path, row: dict) -> np.ndarray:
    return load_arrays(out, row["store_path"])["boxes"]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "ship_dataset_v0"
    shutil.copytree(ROOT, root)
    return root


def test_folder_fixture_samples_metadata_and_boxes(tmp_path: Path) -> None:
    result = ingest("sar-ship", ROOT, tmp_path)
    samples, sources = _rows(tmp_path)
    assert result.files == {"ok": 6, "skipped": 6} and set(samples) == set(EXPECTED)
    for stem, (sensor, pol, mode, n) in EXPECTED.items():
        row = samples[stem]
        meta = json.loads(row["meta"])
        assert (row["sensor"], row["pol"], row["band"], meta["mode"]) == (sensor, pol, "C", mode)
        assert (row["height"], row["width"], row["channels"], row["dtype"]) == (256, 256, 1, "uint8")
        assert (row["split"], row["radiometry"], row["scale"]) == ("pool", "display8", "uint8")
        assert (row["label_name"], row["label"]) == (("ship", 0) if n else (None, None))
        assert meta["n_boxes"] == n and meta["label_file"] == f"{stem}.txt" and meta["boxes_clipped"] == 0
        assert meta["payload_sha256"] == hashlib.sha256((ROOT / f"{stem}.jpg").read_bytes()).hexdigest()
        assert meta["payload_sha256"] == row["src_sha256"]
        img = load_arrays(tmp_path, row["store_path"])["img"]
        with Image.open(ROOT / f"{stem}.jpg") as im:
            assert im.mode == mode
            np.testing.assert_array_equal(img[0], np.asarray(im.convert("RGB"))[..., 0])
        companion = sources[(f"{stem}.txt", None)]
        assert (companion["status"], companion["reason"]) == ("skipped", "companion")
    assert json.loads(samples["Sen_ship_vh_0201611220205011"]["meta"])["name_tag"] == "Sen"
    assert json.loads(samples["newship011017035"]["meta"])["name_digits"] == "011017035"


def test_yolo_lines_become_pixel_boxes(tmp_path: Path) -> None:
    ingest("sar-ship", ROOT, tmp_path)
    samples, _ = _rows(tmp_path)
    assert (ROOT / f"{HH}.txt").read_text().endswith("\n\n")  # 3 lines and a trailing blank line
    expected = {
        HH: [[0, 100, 110, 130, 122], [0, 20, 30, 36, 70], [0, 200, 180, 250, 196]],
        "newship011017035": [[0, 0, 0, 12, 9]],
        "ship030402": [[0, 128, 64, 160, 80]],
    }
    for stem, boxes in expected.items():
        got = _boxes(tmp_path, samples[stem])
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.array(boxes, np.float32))
    assert (ROOT / f"{EMPTY}.txt").stat().st_size == 0
    assert _boxes(tmp_path, samples[EMPTY]).shape == (0, 5)


def test_zip_copy_gives_the_same_samples(tmp_path: Path) -> None:
    unit = FileUnit(ZIP.name, str(ZIP), ZIP.stat().st_size)
    assert inspect.isgenerator(SARShip(HERE).read(unit))  # members are streamed, never all held in memory
    ingest("sar-ship", ROOT, tmp_path / "dir")
    result = ingest("sar-ship", ZIP, tmp_path / "zip")
    assert result.files == {"ok": 1} and result.members == {"ok": 12}
    folder, _ = _rows(tmp_path / "dir")
    zipped, sources = _rows(tmp_path / "zip", by="src_member")
    assert set(zipped) == set(EXPECTED)
    for stem, row in zipped.items():
        assert row["content_sha256"] == folder[stem]["content_sha256"]  # same img + boxes bytes
        assert (row["sensor"], row["pol"], row["label_name"]) == (folder[stem]["sensor"], folder[stem]["pol"],
                                                                  folder[stem]["label_name"])  # fmt: skip
        assert json.loads(row["meta"])["payload_sha256"] == json.loads(folder[stem]["meta"])["payload_sha256"]
        assert row["src_member"] == f"ship_dataset_v0/{stem}.jpg" and row["src_path"] == "ship_dataset_v0.zip"
        txt = sources[("ship_dataset_v0.zip", f"ship_dataset_v0/{stem}.txt")]
        assert (txt["status"], txt["reason"]) == ("ok", "companion")
    assert len({r["key"] for r in zipped.values()}) == 6
    assert zipped[HH]["key"] == "sar-ship_ship-dataset-v0-zip-gao-ship-hh-0201608254401010021"


def test_zip_beside_its_extracted_folder_is_not_ingested_twice(copy: Path, tmp_path: Path) -> None:
    shutil.copy(ZIP, copy.parent / ZIP.name)
    result = ingest("sar-ship", copy.parent, tmp_path / "out")
    _, sources = _rows(tmp_path / "out")
    assert result.samples == 6 and result.files == {"ok": 6, "skipped": 7}
    assert sources[("ship_dataset_v0.zip", None)]["reason"] == "duplicate_archive"


def test_bad_inputs_are_rejected_rows_with_reasons(copy: Path, tmp_path: Path) -> None:
    good = (copy / f"{HH}.jpg").read_bytes()
    (copy / "Gao_ship_hh_01.jpg").write_bytes(good[:500])  # truncated
    (copy / "Gao_ship_hh_01.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (copy / "Gao_ship_hh_02.jpg").write_bytes(b"not an image")
    (copy / "Gao_ship_hh_03.jpg").write_bytes(good)
    (copy / "Gao_ship_hh_03.txt").write_text("0 0.5 0.5 0.1 0.1\n0 0.5 abc 0.1 0.1\n")  # non-numeric
    (copy / "Gao_ship_hh_04.jpg").write_bytes(good)
    (copy / "Gao_ship_hh_04.txt").write_text("0 0.5 0.5 0.1\n")  # four fields
    (copy / "Gao_ship_hh_05.jpg").write_bytes(good)
    (copy / "Gao_ship_hh_05.txt").write_text("1 0.5 0.5 0.1 0.1\n")  # unknown class
    (copy / "Gao_ship_hh_06.jpg").write_bytes(good)
    (copy / "Gao_ship_hh_06.txt").write_text("0 0.5 0.5 0 0.1\n")  # zero width
    (copy / "Gao_ship_hh_07.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # labels without image
    (copy / "notes.txt").write_text("downloaded from GitHub\n")  # text that is not YOLO
    (copy / "README.txt").write_text("SAR-Ship-Dataset\n")
    (copy / "ship030402.txt").unlink()  # missing .txt: zero boxes, not an error

    result = ingest("sar-ship", copy, tmp_path / "out")
    samples, sources = _rows(tmp_path / "out")
    status = {path: (r["status"], r["reason"]) for (path, _), r in sources.items()}
    assert status["Gao_ship_hh_01.jpg"] == ("rejected", "undecodable")
    assert status["Gao_ship_hh_02.jpg"] == ("rejected", "bad_format")
    assert status["Gao_ship_hh_03.jpg"] == ("rejected", "bad_annotation")
    assert status["Gao_ship_hh_04.jpg"] == ("rejected", "bad_annotation")
    assert status["Gao_ship_hh_05.jpg"] == ("rejected", "unknown_class")
    assert status["Gao_ship_hh_06.jpg"] == ("rejected", "bad_annotation")
    assert status["Gao_ship_hh_07.txt"] == ("rejected", "annotation_without_image")
    assert status["notes.txt"] == ("skipped", "not_data")
    assert status["README.txt"] == ("skipped", "not_data")
    assert "line 2" in sources[("Gao_ship_hh_03.jpg", None)]["detail"]
    assert "Gao_ship_hh_03.txt" in sources[("Gao_ship_hh_03.jpg", None)]["detail"]
    missing = samples["ship030402"]
    assert missing["label_name"] is None and json.loads(missing["meta"])["label_file"] is None
    assert _boxes(tmp_path / "out", missing).shape == (0, 5)
    assert result.files == {"ok": 6, "rejected": 7, "skipped": 5 + 5 + 2}


def test_boxes_beyond_the_chip_are_clipped_or_rejected(copy: Path, tmp_path: Path) -> None:
    (copy / f"{HH}.txt").write_text("0 0.96875 0.5 0.125 0.0625\n")  # x from 232 to 264 on a 256 px chip
    ingest("sar-ship", copy, tmp_path / "a")
    samples, _ = _rows(tmp_path / "a")
    np.testing.assert_array_equal(_boxes(tmp_path / "a", samples[HH]), [[0, 232, 120, 256, 136]])
    assert json.loads(samples[HH]["meta"])["boxes_clipped"] == 1

    result = ingest("sar-ship", copy, tmp_path / "b", options={"clip_boxes": "false"})
    _, sources = _rows(tmp_path / "b")
    assert (sources[(f"{HH}.jpg", None)]["reason"], result.files["ok"]) == ("bad_annotation", 5)
    assert "beyond the chip" in sources[(f"{HH}.jpg", None)]["detail"]


def test_duplicate_chips_share_payload_sha256(copy: Path, tmp_path: Path) -> None:
    shutil.copy(copy / "ship030402.jpg", copy / "ship999999.jpg")
    ingest("sar-ship", copy, tmp_path / "out")
    samples, _ = _rows(tmp_path / "out")
    a, b = (json.loads(samples[s]["meta"])["payload_sha256"] for s in ("ship030402", "ship999999"))
    assert a == b and samples["ship030402"]["key"] != samples["ship999999"]["key"]


def test_zip_members_are_each_accounted(tmp_path: Path) -> None:
    archive = tmp_path / "in" / "ship_dataset_v0.zip"
    archive.parent.mkdir()
    good = (ROOT / f"{HH}.jpg").read_bytes()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ship_dataset_v0/ship1.jpg", good)
        zf.writestr("ship_dataset_v0/ship1.txt", "0 0.5 0.5 0.25 0.125\n")
        zf.writestr("ship_dataset_v0/ship2.jpg", good[:300])  # truncated member
        zf.writestr("ship_dataset_v0/ship2.txt", "0 0.5 0.5 0.25 0.125\n")
        zf.writestr("ship_dataset_v0/ship3.txt", "0 0.5 0.5 0.25 0.125\n")  # no image
        zf.writestr("ship_dataset_v0/ship4.jpg", good)  # no labels
        zf.writestr("ship_dataset_v0/readme.md", "docs")
        zf.writestr("../evil.jpg", good)
    result = ingest("sar-ship", archive, tmp_path / "out")
    assert result.files == {"ok": 1} and result.samples == 2
    _, sources = _rows(tmp_path / "out")
    members = {m: (r["status"], r["reason"]) for (_, m), r in sources.items() if m}
    assert members == {
        "ship_dataset_v0/ship1.jpg": ("ok", None),
        "ship_dataset_v0/ship1.txt": ("ok", "companion"),
        "ship_dataset_v0/ship2.jpg": ("rejected", "undecodable"),
        "ship_dataset_v0/ship2.txt": ("skipped", "companion"),
        "ship_dataset_v0/ship3.txt": ("rejected", "annotation_without_image"),
        "ship_dataset_v0/ship4.jpg": ("ok", None),
        "ship_dataset_v0/readme.md": ("skipped", "not_data"),
        "../evil.jpg": ("rejected", "unsafe_member"),
    }


def test_source_card_matches_adapter() -> None:
    card = load_yaml(REPO / "manifests" / "sources" / "sar-ship.yaml")
    assert isinstance(card, SourceCard) and card.id == "sar-ship" and card.classes == ["ship"]
    assert card.expected["files"] == 39729


def test_fixture_generator_is_deterministic(tmp_path: Path) -> None:
    gen = load_generator("sar-ship")
    a, b = gen.generate(tmp_path / "a"), gen.generate(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    committed = sorted(p for p in HERE.rglob("*") if p.is_file() and p.name != "data.py")
    assert [p.relative_to(HERE) for p in committed] == sorted(p.relative_to(tmp_path / "a") for p in a)
    with zipfile.ZipFile(a[-1]) as zf:
        assert sorted(zf.namelist())[1:] == [f"ship_dataset_v0/{p.name}" for p in a[:-1]]
