"""MSAR-1.0 adapter: committed fixture (exact values), bad inputs built in a copy, options, generator."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, load_generator
from PIL import Image

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.recipes import SourceCard, load_yaml
from sardata.store import load_arrays

ROOT = FIXTURES / "msar" / "MSAR-1.0 dataset"
GEN = load_generator("msar")
CLASS_ID = {"aircraft": 0, "oil_tank": 1, "bridge": 2, "ship": 3, "other": 4}


def _rows(out: Path) -> tuple[dict, dict]:
    samples, sources = load_ingest(out)
    return {r["src_path"]: r for r in samples.to_pylist()}, {r["src_path"]: r for r in sources.to_pylist()}


def _boxes(out: Path, row: dict) -> np.ndarray:
    return load_arrays(out, row["store_path"])["boxes"]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "MSAR-1.0 dataset"
    shutil.copytree(ROOT, root)
    return root


def _jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _grey(size: int = 64) -> np.ndarray:
    return np.stack([np.arange(size * size, dtype=np.uint32).reshape(size, size) % 251] * 3, -1).astype(np.uint8)


def _add(root: Path, stem: str, image: bytes | None, objects: list | None, encoding: str = "utf-8") -> None:
    """Add an image and/or a VOC XML (built by the fixture generator) to a copy of the fixture."""
    if image is not None:
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(image)
    if objects is not None:
        (root / "Annotations" / f"{stem}.xml").write_bytes(GEN.voc_xml(stem, 64, objects, encoding).encode(encoding))


def test_fixture_every_file_accounted(tmp_path: Path) -> None:
    result = ingest("msar", ROOT, tmp_path)
    samples, sources = _rows(tmp_path)
    assert result.files == {"ok": 4, "skipped": 4} and len(sources) == 8
    assert set(samples) == {f"JPEGImages/{s}.jpg" for s in ("01", "0267", "01806", "12")}
    for stem in ("01", "0267", "01806", "12"):
        xml = sources[f"Annotations/{stem}.xml"]
        assert (xml["status"], xml["reason"]) == ("skipped", "companion") and f"JPEGImages/{stem}.jpg" in xml["detail"]
    assert samples["JPEGImages/01.jpg"]["key"] == "msar_jpegimages-01-jpg"


def test_fixture_labels_boxes_and_columns(tmp_path: Path) -> None:
    ingest("msar", ROOT, tmp_path)
    samples, _ = _rows(tmp_path)
    expected = {
        # stem: (label, size, boxes)
        "01": ("oil_tank", 256, [[3, 40, 50, 90, 80], [1, 150, 120, 200, 190]]),  # larger 2nd box gives the label
        "0267": ("aircraft", 256, [[0, 100.5, 60.25, 140.75, 110.5]]),
        "01806": (None, 256, []),
        "12": ("bridge", 512, [[2, 60, 200, 450, 260]]),
    }
    for stem, (label, size, boxes) in expected.items():
        row = samples[f"JPEGImages/{stem}.jpg"]
        assert row["label_name"] == label and row["label"] == (CLASS_ID[label] if label else None)
        assert (row["height"], row["width"], row["channels"], row["dtype"]) == (size, size, 1, "uint8")
        assert (row["split"], row["radiometry"], row["scale"]) == ("pool", "display8", "uint8")
        assert (row["sensor"], row["band"], row["pol"]) == ("unknown", "C", "unknown")
        got = _boxes(tmp_path, row)
        assert got.dtype == np.float32 and got.shape == (len(boxes), 5)
        np.testing.assert_array_equal(got, np.array(boxes, np.float32).reshape(-1, 5))
        img = load_arrays(tmp_path, row["store_path"])["img"]
        rgb = np.asarray(Image.open(ROOT / "JPEGImages" / f"{stem}.jpg"))
        assert rgb.shape == (size, size, 3)  # stored as 3-channel grey, collapsed to one channel
        np.testing.assert_array_equal(img, rgb[None, ..., 0])
        meta = json.loads(row["meta"])
        assert meta["annotation"] == f"Annotations/{stem}.xml" and meta["paired_by"] == "stem"
        assert meta["warnings"] == [] and meta["unknown_names"] == {} and meta["was_colour"] is False
    gbk = json.loads(samples["JPEGImages/12.jpg"]["meta"])
    assert (gbk["xml_declared_encoding"], gbk["xml_encoding"], gbk["names"]) == ("gbk", "gb18030", ["桥梁"])
    two = json.loads(samples["JPEGImages/01.jpg"]["meta"])
    assert two["names"] == ["船只", "油罐"] and two["class_counts"] == {"oil_tank": 1, "ship": 1}
    assert json.loads(samples["JPEGImages/01806.jpg"]["meta"])["class_counts"] == {}


def test_bad_inputs_are_rejected_rows_with_reasons(copy: Path, tmp_path: Path) -> None:
    good = (copy / "JPEGImages" / "01.jpg").read_bytes()
    colour = _grey()
    colour[..., 0] = 255 - colour[..., 0]
    _add(copy, "02", good[:400], [("船只", 1, 1, 9, 9)])  # truncated JPEG
    _add(copy, "03", _jpeg(colour), [("船只", 1, 1, 9, 9)])  # channels differ
    _add(copy, "04", good, None)  # image without XML
    _add(copy, "05", None, [("船只", 1, 1, 9, 9)])  # XML without image
    _add(copy, "06", good, None)
    (copy / "Annotations" / "06.xml").write_text("<annotation><object><name>船只</name>", encoding="utf-8")
    _add(copy, "07", good, [("船只", 5, 5, 2, 9)])  # inverted box
    _add(copy, "10", b"GIF89a not a jpeg", [("船只", 1, 1, 9, 9)])  # undecodable bytes
    (copy / "notes.pdf").write_bytes(b"%PDF-1.4")

    result = ingest("msar", copy, tmp_path / "out", workers=2)  # pairing is rebuilt inside each worker
    _, sources = _rows(tmp_path / "out")
    status = {k: (v["status"], v["reason"]) for k, v in sources.items()}
    assert status["JPEGImages/02.jpg"] == ("rejected", "undecodable")
    assert status["JPEGImages/03.jpg"] == ("rejected", "colour_image")
    assert status["JPEGImages/04.jpg"] == ("rejected", "missing_annotation")
    assert status["Annotations/05.xml"] == ("rejected", "annotation_without_image")
    assert status["JPEGImages/06.jpg"] == ("rejected", "bad_annotation")
    assert status["Annotations/06.xml"] == ("skipped", "companion")
    assert status["JPEGImages/07.jpg"] == ("rejected", "bad_annotation")
    assert status["JPEGImages/10.jpg"] == ("rejected", "bad_format")
    assert status["notes.pdf"] == ("skipped", "not_data")
    assert result.files == {"ok": 4, "rejected": 7, "skipped": 4 + 5 + 1}  # XMLs of 02, 03, 06, 07, 10 are companions
    assert "channels are not equal (differ by up to" in sources["JPEGImages/03.jpg"]["detail"]
    assert "colour=luma" in sources["JPEGImages/03.jpg"]["detail"]
    assert "Annotations/06.xml" in sources["JPEGImages/06.jpg"]["detail"]


def test_colour_images_can_be_converted_instead(copy: Path, tmp_path: Path) -> None:
    colour = _grey()
    colour[..., 0] = 255 - colour[..., 0]
    _add(copy, "03", _jpeg(colour), [("船只", 1, 1, 9, 9)])
    result = ingest("msar", copy, tmp_path / "out", options={"colour": "luma"})
    samples, _ = _rows(tmp_path / "out")
    assert result.files == {"ok": 5, "skipped": 5}
    assert json.loads(samples["JPEGImages/03.jpg"]["meta"])["was_colour"] is True


def test_unknown_names_map_to_other_or_reject(copy: Path, tmp_path: Path) -> None:
    good = (copy / "JPEGImages" / "01.jpg").read_bytes()
    _add(copy, "07", good, [("W", 10, 10, 60, 60), ("船只", 1, 1, 9, 9), ("W", 2, 2, 3, 3)])
    ingest("msar", copy, tmp_path / "a")
    samples, _ = _rows(tmp_path / "a")
    row = samples["JPEGImages/07.jpg"]
    meta = json.loads(row["meta"])
    assert meta["unknown_names"] == {"W": 2} and meta["class_counts"] == {"other": 2, "ship": 1}
    assert row["label_name"] == "other" and row["label"] == 4  # the largest box is the W
    np.testing.assert_array_equal(_boxes(tmp_path / "a", row)[:, 0], [4, 3, 4])
    assert "<size> 64x64 but the image is 256x256" in meta["warnings"]

    ingest("msar", copy, tmp_path / "b", options={"unknown": "reject"})
    _, sources = _rows(tmp_path / "b")
    assert (sources["JPEGImages/07.jpg"]["status"], sources["JPEGImages/07.jpg"]["reason"]) == (
        "rejected",
        "unknown_class",
    )
    assert "'W'" in sources["JPEGImages/07.jpg"]["detail"]


def test_pairing_falls_back_to_xml_filename_and_retries_encodings(copy: Path, tmp_path: Path) -> None:
    good = (copy / "JPEGImages" / "01.jpg").read_bytes()
    _add(copy, "0008", good, None)
    (copy / "Annotations" / "8.xml").write_text(GEN.voc_xml("0008", 256, [("飞机", 1, 2, 3, 4)], "utf-8"), "utf-8")
    # GBK bytes behind a utf-8 declaration, and a UTF-8 file declaring gb2312
    (copy / "JPEGImages" / "09.jpg").write_bytes(good)
    (copy / "Annotations" / "09.xml").write_bytes(GEN.voc_xml("09", 256, [("油罐", 1, 2, 3, 4)], "utf-8").encode("gbk"))
    (copy / "JPEGImages" / "11.jpg").write_bytes(good)
    (copy / "Annotations" / "11.xml").write_bytes(GEN.voc_xml("11", 256, [("桥梁", 1, 2, 3, 4)], "gb2312").encode())
    (copy / "Annotations" / "x01.xml").write_text(GEN.voc_xml("01", 256, [], "utf-8"), "utf-8")  # 01 has an XML
    result = ingest("msar", copy, tmp_path / "out")
    samples, sources = _rows(tmp_path / "out")
    assert result.files == {"ok": 7, "skipped": 7, "rejected": 1}
    assert sources["Annotations/x01.xml"]["reason"] == "duplicate_annotation"
    fallback = json.loads(samples["JPEGImages/0008.jpg"]["meta"])
    assert fallback["paired_by"] == "filename" and fallback["annotation"] == "Annotations/8.xml"
    assert samples["JPEGImages/0008.jpg"]["label_name"] == "aircraft"
    assert sources["Annotations/8.xml"]["reason"] == "companion"
    assert samples["JPEGImages/09.jpg"]["label_name"] == "oil_tank"
    assert json.loads(samples["JPEGImages/09.jpg"]["meta"])["xml_encoding"] == "gb18030"
    assert samples["JPEGImages/11.jpg"]["label_name"] == "bridge"
    assert json.loads(samples["JPEGImages/11.jpg"]["meta"])["xml_encoding"] == "utf-8"


def test_large_slice(copy: Path, tmp_path: Path) -> None:
    pixels = np.stack([np.tile(np.arange(2048, dtype=np.uint16) % 256, (2048, 1)).astype(np.uint8)] * 3, -1)
    _add(copy, "2048", _jpeg(pixels), None)
    (copy / "Annotations" / "2048.xml").write_text(
        GEN.voc_xml("2048", 2048, [("桥梁", 100, 900, 1900, 1100)], "utf-8"), encoding="utf-8"
    )
    ingest("msar", copy, tmp_path / "out")
    samples, _ = _rows(tmp_path / "out")
    row = samples["JPEGImages/2048.jpg"]
    assert (row["height"], row["width"], row["label_name"]) == (2048, 2048, "bridge")
    assert json.loads(row["meta"])["warnings"] == []


def test_image_sets_give_splits_unless_disabled(copy: Path, tmp_path: Path) -> None:
    main = copy / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("01\n0267\n")
    (main / "test.txt").write_text("12\n")
    (main / "ship_train.txt").write_text("01  1\n0267 -1\n")  # per-class VOC list: not a split file
    result = ingest("msar", copy, tmp_path / "a")
    samples, sources = _rows(tmp_path / "a")
    splits = {Path(k).stem: v["split"] for k, v in samples.items()}
    assert splits == {"01": "train", "0267": "train", "12": "test", "01806": "pool"}
    assert sources["ImageSets/Main/train.txt"]["reason"] == "split_list"
    assert sources["ImageSets/Main/ship_train.txt"]["reason"] == "not_data"
    assert result.files == {"ok": 4, "skipped": 7}

    ingest("msar", copy, tmp_path / "b", options={"image_sets": "false"})
    samples, sources = _rows(tmp_path / "b")
    assert {v["split"] for v in samples.values()} == {"pool"}
    assert sources["ImageSets/Main/train.txt"]["reason"] == "not_data"


def test_label_option_and_bad_option_values(tmp_path: Path) -> None:
    ingest("msar", ROOT, tmp_path / "out", options={"label": "none"})
    samples, _ = _rows(tmp_path / "out")
    assert {v["label_name"] for v in samples.values()} == {None}
    assert len(_boxes(tmp_path / "out", samples["JPEGImages/01.jpg"])) == 2  # boxes are kept
    with pytest.raises(ConfigError, match="label='biggest'"):
        ingest("msar", ROOT, tmp_path / "bad", options={"label": "biggest"})
    with pytest.raises(ConfigError, match="no option 'classes'"):
        ingest("msar", ROOT, tmp_path / "bad", options={"classes": "ship"})


def test_source_card_matches_adapter() -> None:
    card = load_yaml(REPO / "manifests" / "sources" / "msar.yaml")
    assert isinstance(card, SourceCard) and card.id == "msar"
    assert card.expected["files"] == 28449 and card.expected["boxes_per_class"]["ship"] == 39858


def test_fixture_generator_is_deterministic(tmp_path: Path) -> None:
    a, b = GEN.generate(tmp_path / "a"), GEN.generate(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    committed = sorted(p for p in ROOT.rglob("*") if p.is_file())
    assert [p.relative_to(ROOT) for p in committed] == [p.relative_to(tmp_path / "a") for p in a]
