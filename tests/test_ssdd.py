"""SSDD adapter: committed fixture in both styles (exact values, the same arrays from VOC and COCO), the round trip
through build-shards and the loader, hostile VOC annotations as rejected rows, options, source card, generator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, load_generator

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.manifest.io import read_card, read_table
from sardata.recipes import SourceCard, load_yaml
from sardata.shards.build import BuildConfig, build_shards
from sardata.store import load_arrays
from sardata.stream.dataset import ShardDataset

GEN = load_generator("ssdd")
ROOT = FIXTURES / "ssdd" / GEN.TOP


def _rows(out: Path) -> tuple[dict, dict]:
    samples, sources = load_ingest(out)
    return {r["src_path"]: r for r in samples.to_pylist()}, {r["src_path"]: r for r in sources.to_pylist()}


def _by_stem(out: Path) -> dict[str, tuple[dict, dict]]:
    samples, _ = _rows(out)
    return {Path(k).stem: (r, load_arrays(out, r["store_path"])) for k, r in samples.items()}


def test_voc_fixture_every_file_accounted(tmp_path: Path) -> None:
    result = ingest("ssdd", ROOT, tmp_path)
    samples, sources = _rows(tmp_path)
    assert result.files == {"ok": 4, "skipped": 24}
    assert set(samples) == {f"voc_style/JPEGImages/{s}.jpg" for s in GEN.IMAGES}
    reasons = {k: (v["status"], v["reason"]) for k, v in sources.items()}
    assert reasons["voc_style/Annotations/000001.xml"] == ("skipped", "companion")
    assert reasons["voc_style/Annotations_test_inshore/000009.xml"] == ("skipped", "duplicate_copy")
    assert reasons["voc_style/ImageSets/Main/train.txt"] == ("skipped", "split_list")
    assert reasons["coco_style/annotations/train.json"] == ("skipped", "not_data")
    assert reasons["coco_style/images/train/000002.jpg"] == ("skipped", "not_data")
    assert "-o style=coco" in sources["coco_style/images/train/000002.jpg"]["detail"]
    assert read_card(tmp_path)["class_maps"] == {"ssdd": ["ship"]}


def test_voc_fixture_values(tmp_path: Path) -> None:
    ingest("ssdd", ROOT / "voc_style", tmp_path)  # the voc_style folder itself works as a root too
    got = _by_stem(tmp_path)
    expected = {  # stem: (split, n_boxes, scene tags, boxes)
        "000001": ("test", 1, ["offshore"], [[0, 20, 30, 50, 42]]),
        "000002": ("train", 2, [], [[0, 60, 80, 80, 96], [0, 10, 10, 30, 20]]),  # the first clipped at the bottom
        "000009": ("test", 1, ["inshore"], [[0, 100, 50, 130, 70]]),
        "000010": ("train", 1, [], [[0, 40, 40, 56, 48]]),
    }
    for stem, (split, n, tags, boxes) in expected.items():
        row, arrays = got[stem]
        meta = json.loads(row["meta"])
        width, height = GEN.IMAGES[stem][:2]
        assert (row["split"], row["n_boxes"], row["label_name"], row["label"]) == (split, n, "ship", 0)
        assert (row["height"], row["width"], row["channels"]) == (height, width, 1)
        assert (meta["scene_tags"], meta["split_rule"], meta["warnings"]) == (tags, "official", [])
        np.testing.assert_array_equal(arrays["boxes"], np.array(boxes, np.float32))
    assert json.loads(got["000002"][0]["meta"])["boxes_clipped"] == 1
    assert "inst" not in got["000010"][1]  # a box without polygon: no mask
    inst = got["000002"][1]["inst"]
    assert inst.shape == (96, 128) and set(np.unique(inst)) == {0, 1, 2}
    assert (inst[80:96, 60:81] == 1).all() and (inst[10:21, 10:31] == 2).all()


def test_coco_style_gives_the_same_arrays(tmp_path: Path) -> None:
    ingest("ssdd", ROOT, tmp_path / "voc")
    result = ingest("ssdd", ROOT, tmp_path / "coco", options={"style": "coco"})
    assert result.files == {"ok": 4, "skipped": 24}
    _, sources = _rows(tmp_path / "coco")
    assert (sources["coco_style/images/test_inshore/000009.jpg"]["reason"]) == "subset_copy"
    assert sources["voc_style/JPEGImages/000001.jpg"]["reason"] == "not_data"
    voc, coco = _by_stem(tmp_path / "voc"), _by_stem(tmp_path / "coco")
    assert set(voc) == set(coco)
    for stem in voc:
        assert sorted(voc[stem][1]) == sorted(coco[stem][1])
        for name in voc[stem][1]:
            np.testing.assert_array_equal(voc[stem][1][name], coco[stem][1][name])
        for col in ("split", "n_boxes", "label"):
            assert voc[stem][0][col] == coco[stem][0][col]
        assert json.loads(coco[stem][0]["meta"])["scene_tags"] == json.loads(voc[stem][0]["meta"])["scene_tags"]


def test_round_trip_with_hrsid_through_build_shards_and_the_loader(tmp_path: Path) -> None:
    ingest("ssdd", ROOT, tmp_path / "ssdd")
    ingest("hrsid", FIXTURES / "hrsid" / "HRSID_png", tmp_path / "hrsid")
    build_shards([tmp_path / "ssdd", tmp_path / "hrsid"], tmp_path / "ds", BuildConfig(max_shard_samples=3))
    table = read_table(tmp_path / "ds" / "samples.parquet", "samples")
    counts = dict(zip(table.column("key").to_pylist(), table.column("n_boxes").to_pylist(), strict=True))
    assert len(counts) == 8 and sum(counts.values()) == 5 + 5 and None not in counts.values()
    assert read_card(tmp_path / "ds")["class_maps"] == {"ssdd": ["ship"], "hrsid": ["ship"]}
    stored = {r["key"]: load_arrays(tmp_path / d, r["store_path"]) for d in ("ssdd", "hrsid")
              for r in _rows(tmp_path / d)[0].values()}  # fmt: skip
    ds = ShardDataset(tmp_path / "ds", split=None)
    for i in range(len(ds)):
        sample = ds[i]
        for name, arr in stored[sample["__key__"]].items():
            np.testing.assert_array_equal(sample[f"{name}.npy"], arr)
        assert sample["boxes.npy"].dtype == np.float32
        assert sample.get("cls") == (0 if len(sample["boxes.npy"]) else None)


def _add(root: Path, stem: str, xml: str | None, image: bool = True, folder: str = "JPEGImages") -> None:
    if image:
        (root / folder).mkdir(exist_ok=True)
        shutil.copy(root / "JPEGImages" / "000001.jpg", root / folder / f"{stem}.jpg")
    if xml is not None:
        (root / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")


def _xml(*objects: str) -> str:
    return f"<annotation><size><width>160</width><height>120</height></size>{''.join(objects)}</annotation>"


def _obj(name: str = "ship", box: tuple = (1, 1, 9, 9), segm: str = "") -> str:
    coords = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
    return f"<object><name>{name}</name><bndbox>{coords}</bndbox>{segm}</object>"


def test_hostile_voc_annotations_are_rejected_rows(tmp_path: Path) -> None:
    root = tmp_path / "voc_style"
    shutil.copytree(ROOT / "voc_style", root)
    _add(root, "100001", _xml(_obj(box=(20, 10, 5, 30))))  # inverted: negative width
    _add(root, "100002", _xml(_obj(name="boat")))
    _add(root, "100003", _xml(_obj(box=(500, 500, 520, 530))))  # outside the 160x120 image
    _add(root, "100004", _xml(_obj(segm="<segm><point>a,b</point><point>1,2</point><point>3,4</point></segm>")))
    _add(root, "100005", _xml(_obj(box=("x", 1, 9, 9))))
    _add(root, "100009", _xml(_obj(segm="<segm><point>1,2,3</point><point>4</point><point>3,4</point></segm>")))
    _add(root, "100006", _xml(_obj(segm="<segm><point>1,1</point><point>1e12,5</point><point>3,9</point></segm>")))
    _add(root, "100007", "<annotation><object>")  # truncated XML
    _add(root, "100008", None)  # image without XML
    _add(root, "100012", _xml(_obj()), image=False)  # XML without image
    _add(root, "100013", _xml(_obj(box=(-5, 100, 20, 130))))  # partly outside: clipped, kept
    _add(root, "000001", None, folder="JPEGImages_test")  # a second copy of an image
    result = ingest("ssdd", root, tmp_path / "out", workers=2)
    samples, sources = _rows(tmp_path / "out")
    status = {Path(k).stem + ("" if k.endswith(".jpg") else ".xml"): (v["status"], v["reason"])
              for k, v in sources.items() if "1000" in k or k.endswith("JPEGImages_test/000001.jpg")}  # fmt: skip
    assert status == {
        "100001": ("rejected", "bad_annotation"), "100002": ("rejected", "unknown_class"),
        "100003": ("rejected", "bad_annotation"), "100004": ("rejected", "bad_annotation"),
        "100005": ("rejected", "bad_annotation"), "100006": ("rejected", "bad_annotation"),
        "100007": ("rejected", "bad_annotation"), "100008": ("rejected", "missing_annotation"),
        "100009": ("rejected", "bad_annotation"),
        "100012.xml": ("rejected", "annotation_without_image"), "100013": ("ok", None),
        "000001": ("skipped", "duplicate_copy"),
        **{f"1000{n:02d}.xml": ("skipped", "companion") for n in (1, 2, 3, 4, 5, 6, 7, 9, 13)},
    }  # fmt: skip
    detail = {Path(k).stem: v["detail"] for k, v in sources.items() if k.endswith(".jpg") and v["detail"]}
    assert "zero or negative width/height" in detail["100001"] and "'boat'" in detail["100002"]
    assert "lies outside the 160x120 image" in detail["100003"] and "not 'x,y'" in detail["100004"]
    assert "more than one image size beyond" in detail["100006"]
    np.testing.assert_array_equal(
        load_arrays(tmp_path / "out", samples["JPEGImages/100013.jpg"]["store_path"])["boxes"], [[0, 0, 100, 20, 120]]
    )
    assert result.files["ok"] == 5


def test_options(tmp_path: Path) -> None:
    ingest("ssdd", ROOT, tmp_path / "a", options={"split": "pool", "masks": "false"})
    samples, _ = _rows(tmp_path / "a")
    assert {r["split"] for r in samples.values()} == {"pool"}
    assert all(r["fields"] == ["boxes", "img"] for r in samples.values())
    with pytest.raises(ConfigError, match="style='yolo'"):
        ingest("ssdd", ROOT, tmp_path / "b", options={"style": "yolo"})


def test_source_card_and_generator(tmp_path: Path) -> None:
    card = load_yaml(REPO / "manifests" / "sources" / "ssdd.yaml")
    assert isinstance(card, SourceCard) and card.classes == ["ship"]
    assert [GEN.split_of(s) for s in ("000001", "000009", "000002", "001160")] == ["test", "test", "train", "train"]
    files = GEN.generate(tmp_path)
    committed = sorted(p for p in ROOT.rglob("*") if p.is_file())
    assert [p.relative_to(tmp_path) for p in files] == [p.relative_to(ROOT.parent) for p in committed]
    assert all(p.read_bytes() == (ROOT.parent / p.relative_to(tmp_path)).read_bytes() for p in files)
