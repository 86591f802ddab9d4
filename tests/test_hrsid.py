"""HRSID adapter: committed fixture (exact values), the round trip through build-shards and the loader, hostile COCO
annotations as rejected rows (never a crash or a path outside the root), options."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, load_generator
from PIL import Image

from sardata.ingest import ingest, load_ingest
from sardata.manifest.io import read_card, read_table
from sardata.recipes import SourceCard, load_yaml
from sardata.shards.build import BuildConfig, build_shards
from sardata.store import load_arrays
from sardata.stream.dataset import ShardDataset

ROOT = FIXTURES / "hrsid" / "HRSID_png"
GEN = load_generator("hrsid")


def _rows(out: Path) -> tuple[dict, dict]:
    samples, sources = load_ingest(out)
    by_file = {r["src_path"]: r for r in samples.to_pylist()}
    return by_file, {(r["src_path"], r["src_member"]): r for r in sources.to_pylist()}


def _status(sources: dict, rel: str, member: str | None = None) -> tuple[str, str]:
    row = sources[(rel, member)]
    return row["status"], row["reason"]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "HRSID_png"
    shutil.copytree(ROOT, root)
    return root


def test_fixture_every_file_accounted_with_splits_and_tags(tmp_path: Path) -> None:
    result = ingest("hrsid", ROOT, tmp_path)
    samples, sources = _rows(tmp_path)
    assert result.files == {"ok": 4, "skipped": 5} and len(sources) == 9
    for rel in ("annotations/train2017.json", "annotations/test2017.json", "annotations/train_test2017.json",
                "inshore_offshore/inshore.json", "inshore_offshore/offshore.json"):  # fmt: skip
        assert _status(sources, rel) == ("skipped", "companion")
    expected = {  # tile: (split, label, n_boxes, scene tags, source scene)
        "P0001_0_800_0_800": ("train", "ship", 2, ["offshore"], "P0001"),
        "P0001_600_1400_0_800": ("train", "ship", 1, ["offshore"], "P0001"),
        "P0002_0_800_800_1600": ("test", "ship", 2, ["inshore"], "P0002"),
        "P0137_1": ("test", None, 0, ["offshore"], "P0137"),
    }
    for tile, (split, label, n, tags, scene) in expected.items():
        row = samples[f"images/{tile}.png"]
        meta = json.loads(row["meta"])
        assert (row["split"], row["label_name"], row["n_boxes"]) == (split, label, n)
        assert row["label"] == (0 if label else None)
        assert (row["height"], row["width"], row["channels"], row["dtype"]) == (800, 800, 1, "uint8")
        assert (row["radiometry"], row["scale"], row["sensor"], row["band"]) == (
            "display8",
            "uint8",
            "unknown",
            "unknown",
        )
        assert (meta["scene_tags"], meta["source_scene"], meta["n_boxes"], meta["warnings"]) == (tags, scene, n, [])
        assert meta["annotation"] == f"annotations/{split}2017.json"
    assert json.loads(samples["images/P0001_0_800_0_800.png"]["meta"])["window"] == [0, 800, 0, 800]
    assert read_card(tmp_path)["class_maps"] == {"hrsid": ["ship"]}


def test_fixture_boxes_and_instance_masks(tmp_path: Path) -> None:
    ingest("hrsid", ROOT, tmp_path)
    samples, _ = _rows(tmp_path)
    arrays = {Path(rel).stem: load_arrays(tmp_path, r["store_path"]) for rel, r in samples.items()}
    np.testing.assert_array_equal(
        arrays["P0001_0_800_0_800"]["boxes"], [[0, 100, 110, 170, 142], [0, 400, 480, 470, 560]]
    )
    clipped = arrays["P0001_600_1400_0_800"]["boxes"]
    np.testing.assert_array_equal(clipped, [[0, 760, 300, 800, 330]])  # annotated to x = 830: clipped to the tile
    assert json.loads(samples["images/P0001_600_1400_0_800.png"]["meta"])["boxes_clipped"] == 1
    assert arrays["P0137_1"]["boxes"].shape == (0, 5) and "inst" not in arrays["P0137_1"]
    inst = arrays["P0002_0_800_800_1600"]["inst"]
    assert inst.dtype == np.uint8 and inst.shape == (800, 800)
    assert set(np.unique(inst)) == {0, 1, 2}
    assert (inst == 2).sum() == 40 * 50 and (inst[100:150, 600:640] == 2).all()  # the uncompressed RLE rectangle
    assert (inst[200:225, 200:261] == 1).all() and (inst == 1).sum() == 61 * 25  # polygon filled with its outline
    img = arrays["P0002_0_800_800_1600"]["img"]
    np.testing.assert_array_equal(img[0], np.asarray(Image.open(ROOT / "images" / "P0002_0_800_800_1600.png")))
    assert (img[0][inst > 0] == 230).all()  # the masks cover the bright ships the generator drew


def test_fields_round_trip_through_build_shards_and_the_loader(tmp_path: Path) -> None:
    ingest("hrsid", ROOT, tmp_path / "ing")
    build_shards([tmp_path / "ing"], tmp_path / "ds", BuildConfig(max_shard_samples=2))
    table = read_table(tmp_path / "ds" / "samples.parquet", "samples")
    assert dict(zip(table.column("key").to_pylist(), table.column("n_boxes").to_pylist(), strict=True)) == {
        "hrsid_images-p0001-0-800-0-800-png": 2, "hrsid_images-p0001-600-1400-0-800-png": 1,
        "hrsid_images-p0002-0-800-800-1600-png": 2, "hrsid_images-p0137-1-png": 0}  # fmt: skip
    card = read_card(tmp_path / "ds")
    assert "inst.npy" in card["fields"] and card["fields"]["inst.npy"]["encoding"] == "npy"
    stored, _ = _rows(tmp_path / "ing")
    by_key = {r["key"]: load_arrays(tmp_path / "ing", r["store_path"]) for r in stored.values()}
    ds = ShardDataset(tmp_path / "ds", split=None)
    assert len(ds) == 4
    for i in range(len(ds)):
        sample = ds[i]
        want = by_key[sample["__key__"]]
        assert sorted(k for k in sample if k.endswith(".npy")) == sorted(f"{k}.npy" for k in want)
        for name, arr in want.items():
            np.testing.assert_array_equal(sample[f"{name}.npy"], arr)
            assert sample[f"{name}.npy"].dtype == arr.dtype
        assert sample.get("cls") == (0 if len(want["boxes"]) else None)
    assert len(ShardDataset(tmp_path / "ds", split=None, where="n_boxes >= 2")) == 2


def test_masks_off_and_clip_boxes_false(tmp_path: Path) -> None:
    ingest("hrsid", ROOT, tmp_path / "a", options={"masks": "false"})
    samples, _ = _rows(tmp_path / "a")
    assert all(r["fields"] == ["boxes", "img"] for r in samples.values())
    result = ingest("hrsid", ROOT, tmp_path / "b", options={"clip_boxes": "false"})
    _, sources = _rows(tmp_path / "b")
    assert _status(sources, "images/P0001_600_1400_0_800.png") == ("rejected", "bad_annotation")
    assert "reaches beyond the 800x800 image" in sources[("images/P0001_600_1400_0_800.png", None)]["detail"]
    assert result.files == {"ok": 3, "rejected": 1, "skipped": 5}


def _png(size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(size * size) % 251).astype(np.uint8).reshape(size, size)).save(buf, format="PNG")
    return buf.getvalue()


def _add(root: Path, name: str | None, anns: list[dict], json_name: str = "train2017.json", **entry: object) -> None:
    """Add a 64x64 tile ``name`` (None: no file) and its COCO entry (``entry`` overrides) with ``anns``."""
    path = root / "annotations" / json_name
    doc = (
        json.loads(path.read_text())
        if path.exists()
        else {"images": [], "annotations": [], "categories": GEN.CATEGORIES}
    )
    image_id = 100 + len(doc["images"])
    if name is not None:
        (root / "images" / f"{name}.png").write_bytes(_png())
    doc["images"].append({"id": image_id, "file_name": f"{name}.png", "width": 64, "height": 64, **entry})
    for k, ann in enumerate(anns):
        doc["annotations"].append({"id": 1000 * image_id + k, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                   "segmentation": [], **ann})  # fmt: skip
    path.write_text(json.dumps(doc))


def test_hostile_annotations_become_rejected_rows(copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(_png())  # a real image beside the root: a "../" name must never reach it
    _add(copy, "out_of_image", [{"bbox": [100, 100, 10, 10]}])
    _add(copy, "negative", [{"bbox": [10, 10, -5, 8]}])
    _add(copy, "zero_size", [{"bbox": [10, 10, 0, 8]}])
    _add(copy, "unknown_cat", [{"bbox": [1, 1, 5, 5], "category_id": 7}])
    _add(copy, "non_numeric", [{"bbox": [1, "x", 5, 5]}])
    _add(copy, "huge_int", [{"bbox": [1, 1, 10**400, 5]}])  # an integer no float holds
    _add(copy, "far_polygon", [{"bbox": [1, 1, 5, 5], "segmentation": [[1, 1, 5, 1, 5, 1e9]]}])
    _add(copy, "short_polygon", [{"bbox": [1, 1, 5, 5], "segmentation": [[1, 1, 5, 1]]}])
    _add(copy, "rle_wrong_size", [{"bbox": [1, 1, 5, 5], "segmentation": {"size": [100000, 100000], "counts": [1]}}])
    _add(copy, "rle_short_runs", [{"bbox": [1, 1, 5, 5], "segmentation": {"size": [64, 64], "counts": [10, 5]}}])
    _add(copy, "huge_declared", [], width=1_000_000_000, height=1_000_000_000)
    _add(copy, None, [], file_name="../outside.png")
    _add(copy, None, [], file_name=str(outside))
    _add(copy, None, [], file_name="images\\x.png")
    _add(copy, "never_written", [])  # the entry names a file that does not exist
    (copy / "images" / "never_written.png").unlink()
    doc = json.loads((copy / "annotations" / "train2017.json").read_text())
    doc["annotations"].append({"id": 9, "image_id": 424242, "category_id": 1, "bbox": [1, 1, 2, 2]})
    doc["annotations"].append({"id": 10, "image_id": [1], "category_id": 1, "bbox": [1, 1, 2, 2]})  # unhashable id
    doc["images"].append({"id": 1, "file_name": "dup.png"})  # id 1 is P0001_0_800_0_800
    (copy / "annotations" / "train2017.json").write_text(json.dumps(doc))
    (copy / "images" / "unlisted.png").write_bytes(_png())

    result = ingest("hrsid", copy, tmp_path / "out", workers=2)
    samples, sources = _rows(tmp_path / "out")
    for name, reason in {"out_of_image": "bad_annotation", "negative": "bad_annotation", "zero_size": "bad_annotation",
                         "unknown_cat": "unknown_class", "non_numeric": "bad_annotation", "huge_int": "bad_annotation",
                         "far_polygon": "bad_annotation", "short_polygon": "bad_annotation",
                         "rle_wrong_size": "bad_annotation", "rle_short_runs": "bad_annotation",
                         "huge_declared": "size_mismatch", "unlisted": "missing_annotation"}.items():  # fmt: skip
        assert _status(sources, f"images/{name}.png") == ("rejected", reason), name
    detail = {Path(k[0]).stem: v["detail"] for k, v in sources.items() if v["detail"]}
    assert "lies outside the 64x64 image" in detail["out_of_image"]
    assert "zero or negative width/height" in detail["zero_size"] and "negative width" in detail["negative"]
    assert "category_id 7" in detail["unknown_cat"] and "annotations/train2017.json annotation" in detail["unknown_cat"]
    assert "1000000000x1000000000" in detail["huge_declared"]
    assert "RLE size 100000x100000" in detail["rle_wrong_size"]
    members = {k[1]: (v["status"], v["reason"]) for k, v in sources.items() if k[0] == "annotations/train2017.json"}
    bad = {m: s for m, s in members.items() if m is not None}
    assert sorted(s for s in bad.values()) == sorted([("rejected", "unsafe_path")] * 3 + [("rejected", "missing_image"),
        ("rejected", "orphan_annotation"), ("rejected", "orphan_annotation"), ("rejected", "duplicate_id")])  # fmt: skip
    assert members[None] == ("ok", None)  # the JSON itself is read; its bad entries are the rejected rows
    assert all("outside" not in r["src_path"] for r in samples.values())
    assert set(samples) == {f"images/{t}.png" for t in GEN.TILES}  # the good tiles are untouched
    assert result.files["ok"] == 5 and result.members == {"rejected": 7}


def test_broken_json_files_and_split_conflicts(copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (copy / "annotations" / "broken.json").write_text('{"images": [')
    (copy / "annotations" / "nan.json").write_text('{"images": [], "annotations": [{"bbox": [NaN, 1, 2, 3]}]}')
    (copy / "annotations" / "other.json").write_text('{"description": "not COCO"}')
    test = json.loads((copy / "annotations" / "test2017.json").read_text())
    test["images"].append({"id": 1, "file_name": "P0001_0_800_0_800.png", "width": 800, "height": 800})
    (copy / "annotations" / "test2017.json").write_text(json.dumps(test))  # now listed by train and test
    ingest("hrsid", copy, tmp_path / "a")
    samples, sources = _rows(tmp_path / "a")
    assert _status(sources, "annotations/broken.json") == ("rejected", "bad_annotation")
    assert _status(sources, "annotations/nan.json") == ("rejected", "bad_annotation")
    assert _status(sources, "annotations/other.json") == ("skipped", "not_data")
    assert _status(sources, "images/P0001_0_800_0_800.png") == ("rejected", "split_conflict")
    assert len(samples) == 3

    big = tmp_path / "big" / "HRSID_png"
    shutil.copytree(ROOT, big)
    train = json.loads((big / "annotations" / "train2017.json").read_text())
    (big / "annotations" / "train2017.json").write_text(json.dumps({**train, "info": "x" * 800_000}))
    monkeypatch.setenv("SARDATA_MAX_SAMPLE_BYTES", "700000")  # the tiles fit, the padded JSON does not
    ingest("hrsid", big, tmp_path / "b")
    samples, sources = _rows(tmp_path / "b")
    assert _status(sources, "annotations/train2017.json") == ("rejected", "too_large")
    assert "SARDATA_MAX_SAMPLE_BYTES" in sources[("annotations/train2017.json", None)]["detail"]
    assert samples["images/P0001_0_800_0_800.png"]["split"] == "pool"  # boxes from the union file instead


def test_compressed_rle_needs_pycocotools(copy: Path, tmp_path: Path) -> None:
    _add(copy, "compressed", [{"bbox": [1, 1, 5, 5], "segmentation": {"size": [64, 64], "counts": "0k01"}}])
    ingest("hrsid", copy, tmp_path / "out")
    _, sources = _rows(tmp_path / "out")
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        assert _status(sources, "images/compressed.png") == ("rejected", "unsupported_mask")
        assert "pycocotools" in sources[("images/compressed.png", None)]["detail"]
    else:
        assert sources[("images/compressed.png", None)]["status"] in ("ok", "rejected")


def test_union_file_fills_unsplit_images_and_jpeg_names_pair_by_stem(copy: Path, tmp_path: Path) -> None:
    union = json.loads((copy / "annotations" / "train_test2017.json").read_text())
    for entry in union["images"]:
        entry["file_name"] = entry["file_name"].replace(".png", ".jpg")  # the JPEG release's names
    (copy / "annotations" / "train_test2017.json").write_text(json.dumps(union))
    (copy / "annotations" / "test2017.json").unlink()
    train = json.loads((copy / "annotations" / "train2017.json").read_text())
    train["annotations"] = train["annotations"][:-1]  # the union lists one more box for the clipped tile
    (copy / "annotations" / "train2017.json").write_text(json.dumps(train))
    ingest("hrsid", copy, tmp_path / "out")
    samples, _ = _rows(tmp_path / "out")
    meta = {Path(k).stem: json.loads(v["meta"]) for k, v in samples.items()}
    assert {Path(k).stem: v["split"] for k, v in samples.items()} == {
        "P0001_0_800_0_800": "train", "P0001_600_1400_0_800": "train", "P0002_0_800_800_1600": "pool",
        "P0137_1": "pool"}  # fmt: skip
    assert meta["P0137_1"]["paired_by"] == "stem" and meta["P0137_1"]["annotation"].endswith("train_test2017.json")
    assert samples["images/P0001_600_1400_0_800.png"]["n_boxes"] == 0
    assert "train_test2017.json lists 1 annotations" in meta["P0001_600_1400_0_800"]["warnings"][0]


def test_source_card_and_generator(tmp_path: Path) -> None:
    card = load_yaml(REPO / "manifests" / "sources" / "hrsid.yaml")
    assert isinstance(card, SourceCard) and card.classes == ["ship"]
    files = GEN.generate(tmp_path)  # the committed fixture is what the generator writes
    committed = sorted(p for p in ROOT.rglob("*") if p.is_file())
    assert [p.relative_to(tmp_path) for p in files] == [p.relative_to(ROOT.parent) for p in committed]
    assert all(p.read_bytes() == (ROOT.parent / p.relative_to(tmp_path)).read_bytes() for p in files)
