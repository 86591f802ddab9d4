"""What the detection sources share: the optional ``n_boxes`` column (tables without it keep their bytes), the mask
rasteriser and its limits (:mod:`sardata.sources._detect`), and the chips-from-boxes view
(:mod:`sardata.stream.chips`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import FIXTURES, build_acd_dataset

from sardata.errors import ConfigError, RejectFile
from sardata.ingest import ingest
from sardata.manifest.io import read_table, write_table
from sardata.manifest.schema import OPTIONAL_COLUMNS, SAMPLES, SOURCES
from sardata.shards.build import BuildConfig, build_shards
from sardata.sources._detect import Instance, detection_fields, instance_map, rle_mask
from sardata.stream.chips import ChipDataset, box_count, chip_at

HRSID = FIXTURES / "hrsid" / "HRSID_png"
SSDD = FIXTURES / "ssdd" / "BBox_RBox_PSeg_SSDD"


# ----------------------------------------------------------------------------------------------- schema
def _samples(n_boxes: list[int | None]) -> pa.Table:
    rows = [{"key": f"k{i}", "source": "s", "source_version": "1", "split": "pool", "src_path": f"p{i}",
             "src_sha256": "0" * 64, "modality": "sar_image", "n_boxes": n} for i, n in enumerate(n_boxes)]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SAMPLES)


def test_an_all_null_optional_column_is_not_written_and_not_read_back(tmp_path: Path) -> None:
    assert set(OPTIONAL_COLUMNS["samples"]) == {"n_boxes"} and SAMPLES.field("n_boxes").type == pa.int32()
    write_table(_samples([None, None]), tmp_path / "a.parquet", "samples")
    write_table(_samples([None, None]).drop_columns(["n_boxes"]), tmp_path / "b.parquet", "samples")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()  # as before the column
    assert "n_boxes" not in pq.read_schema(tmp_path / "a.parquet").names
    assert "n_boxes" not in read_table(tmp_path / "a.parquet", "samples").column_names
    write_table(_samples([3, None]), tmp_path / "c.parquet", "samples")
    table = read_table(tmp_path / "c.parquet", "samples")
    assert table.column("n_boxes").to_pylist() == [3, None] and table.schema.field("n_boxes").type == pa.int32()
    assert table.column_names == [n for n in SAMPLES.names]  # declared order


def test_an_optional_column_is_filled_for_files_older_than_it(tmp_path: Path) -> None:
    v1 = read_table(FIXTURES / "manifest_v1" / "ds" / "samples.parquet", "samples")  # schema 1.0.0
    assert v1.column("n_boxes").null_count == v1.num_rows
    ingest("sar-acd", FIXTURES / "sar-acd" / "SAR-ACD", tmp_path)  # a current table of a source without boxes
    assert "n_boxes" not in read_table(tmp_path / "samples.parquet", "samples").column_names
    assert SOURCES.names == read_table(tmp_path / "sources.parquet", "sources").column_names


# ----------------------------------------------------------------------------------------------- masks
def test_uncompressed_rle_is_column_major_background_first() -> None:
    mask = np.zeros((4, 3), bool)
    mask[1:3, 1] = True  # column 1, rows 1-2
    counts = [5, 2, 5]  # column-major: 4 + 1 background, 2 foreground, 1 + 4 background
    np.testing.assert_array_equal(rle_mask({"size": [4, 3], "counts": counts}, 4, 3, "t"), mask)
    with pytest.raises(RejectFile, match="cover 11 pixels"):
        rle_mask({"size": [4, 3], "counts": [5, 2, 4]}, 4, 3, "t")
    with pytest.raises(RejectFile, match="non-negative integers"):
        rle_mask({"size": [4, 3], "counts": [13, -1]}, 4, 3, "t")


def test_instance_map_numbers_instances_and_widens_past_255() -> None:
    boxes = [Instance(0, (i % 30, i // 30, i % 30 + 1, i // 30 + 1), f"a{i}", ((i % 30, i // 30, i % 30 + 0.5,
             i // 30, i % 30, i // 30 + 0.5),)) for i in range(300)]  # fmt: skip
    inst = instance_map(boxes, 12, 32)
    assert inst.dtype == np.uint16 and inst[0, 0] == 1 and inst[9, 29] == 300
    arrays, meta = detection_fields(boxes[:3], 12, 32)
    assert arrays["inst"].dtype == np.uint8 and meta == {"n_boxes": 3, "boxes_clipped": 0, "n_masks": 3}
    assert arrays["boxes"].dtype == np.float32 and arrays["boxes"].shape == (3, 5)


def test_mask_allocation_is_budget_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SARDATA_MAX_SAMPLE_BYTES", "1000")
    poly = Instance(0, (1, 1, 5, 5), "a", ((1, 1, 5, 1, 5, 5),))
    with pytest.raises(RejectFile) as err:
        detection_fields([poly], 100, 100)  # 10,000 bytes of instance map
    assert err.value.reason == "too_large" and "instance map" in err.value.detail
    arrays, _ = detection_fields([poly], 100, 100, masks=False)  # boxes alone fit
    assert "inst" not in arrays


# ----------------------------------------------------------------------------------------------- chips
@pytest.fixture(scope="module")
def detection_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("chips")
    ingest("hrsid", HRSID, work / "hrsid")
    ingest("ssdd", SSDD, work / "ssdd")
    build_shards([work / "hrsid", work / "ssdd"], work / "ds", BuildConfig(max_shard_samples=3))
    return work / "ds"


def test_one_chip_per_box_counted_from_the_manifest(detection_ds: Path) -> None:
    chips = ChipDataset(detection_ds, 48, split=None)
    table = read_table(detection_ds / "samples.parquet", "samples")
    n_boxes = dict(zip(table.column("key").to_pylist(), table.column("n_boxes").to_pylist(), strict=True))
    assert {r.key: box_count(r) for r in chips.index.rows} == n_boxes
    assert len(chips) == sum(n_boxes.values()) == 10
    keys = [chips[j]["__key__"] for j in range(len(chips))]
    assert len(set(keys)) == 10 and all(k.rsplit("/b", 1)[0] in n_boxes for k in keys)
    assert len(ChipDataset(detection_ds, 48, split="test")) == 2 + 1 + 1  # P0002 (2 ships), 000001, 000009


def test_chips_are_centred_padded_and_carry_their_mask(detection_ds: Path) -> None:
    chips = ChipDataset(detection_ds, 64, split=None)
    by_key = {chips[j]["__key__"]: chips[j] for j in range(len(chips))}
    edge = by_key["hrsid_images-p0001-600-1400-0-800-png/b0"]  # box 760-800 x 300-330 on an 800-px tile
    assert edge["img"].shape == (1, 64, 64) and edge["img"].dtype == np.uint8
    np.testing.assert_array_equal(edge["box"], [12, 17, 52, 47])  # origin (748, 283)
    assert edge["valid"][:, :52].all() and not edge["valid"][:, 52:].any()  # padding past x = 800
    assert (edge["img"][0][~edge["valid"]] == 0).all() and edge["has_mask"] and not edge["truncated"]
    assert (edge["img"][0][edge["inst"] == 1] == 230).all() and edge["inst"].sum() == 40 * 31
    rle = by_key["hrsid_images-p0002-0-800-800-1600-png/b1"]  # the RLE rectangle 600-640 x 100-150
    assert rle["inst"].sum() == 40 * 50 and rle["label"] == 0 and rle["parent_key"].startswith("hrsid_images-p0002")
    bare = by_key["ssdd_voc-style-jpegimages-000010-jpg/b0"]  # a box without polygon
    assert not bare["has_mask"] and bare["inst"].sum() == 0
    big = ChipDataset(detection_ds, 16, split=None)
    assert any(big[j]["truncated"] for j in range(len(big)))  # 70-px ships do not fit 16-px chips


def test_chips_batch_with_the_default_collate(detection_ds: Path) -> None:
    chips = ChipDataset(detection_ds, 32, split=None)
    loader = torch.utils.data.DataLoader(chips, batch_size=4, shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    batches = list(loader)
    assert [b["img"].shape[0] for b in batches] == [4, 4, 2]
    assert batches[0]["img"].shape[1:] == (1, 32, 32) and batches[0]["box"].shape == (4, 4)
    assert sorted(k for b in batches for k in b["__key__"]) == sorted(chips[j]["__key__"] for j in range(len(chips)))


def test_chip_at_exact_window_and_bad_requests(tmp_path: Path) -> None:
    img = np.arange(100, dtype=np.uint8).reshape(1, 10, 10)
    sample = {"img.npy": img, "boxes.npy": np.array([[3, 0, 0, 2, 2]], np.float32), "__key__": "k"}
    chip = chip_at(sample, 0, 4)  # centre (1, 1): window origin (-1, -1)
    np.testing.assert_array_equal(chip["img"][0], [[0, 0, 0, 0], [0, 0, 1, 2], [0, 10, 11, 12], [0, 20, 21, 22]])
    assert chip["label"] == 3 and chip["__key__"] == "k/b0" and chip["valid"].sum() == 9
    with pytest.raises(Exception, match="box 1 of 1"):
        chip_at(sample, 1, 4)
    with pytest.raises(ConfigError, match="chip size"):
        ChipDataset(FIXTURES / "manifest_v1" / "ds", 0)
    work = build_acd_dataset(tmp_path)
    with pytest.raises(ConfigError, match="no sample has boxes.npy"):
        ChipDataset(work / "ds", 32, split=None)
    shutil.rmtree(work)
