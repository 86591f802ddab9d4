"""MSTAR adapter: committed fixture (exact values) and the real files in ../shared/data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, load_generator, shared

from sardata.ingest import ingest, load_ingest
from sardata.sources.mstar import parse_header
from sardata.store import load_arrays

RAW = FIXTURES / "mstar" / "raw"
JPEG = FIXTURES / "mstar" / "jpeg"


def _rows(out: Path) -> tuple[dict, dict]:
    samples, sources = load_ingest(out)
    return {r["src_path"]: r for r in samples.to_pylist()}, {r["src_path"]: r for r in sources.to_pylist()}


def test_raw_fixture_every_file_accounted(tmp_path: Path) -> None:
    result = ingest("mstar", RAW, tmp_path)
    samples, sources = _rows(tmp_path)
    assert len(sources) == 10 and result.files == {"ok": 4, "rejected": 3, "skipped": 3}
    by_name = {Path(k).name: v for k, v in sources.items()}
    assert by_name["HB03791.000"]["reason"] == "truncated"
    assert by_name["HB03334.015"]["reason"] == "checksum_mismatch"
    assert by_name["HB03792.000"]["reason"] == "size_mismatch"
    assert by_name["HB14932.015"]["status"] == "skipped" and by_name["HB14932.015"]["reason"] == "calibration"
    assert by_name["HB14931.JPG"]["reason"] == "preview"
    assert by_name["HB14931.HTM"]["reason"] == "not_data"
    for rel, row in sources.items():
        assert row["sha256"] == hashlib.sha256((RAW / rel).read_bytes()).hexdigest()


def test_raw_fixture_labels_and_header_values(tmp_path: Path) -> None:
    ingest("mstar", RAW, tmp_path)
    samples, _ = _rows(tmp_path)
    by_name = {Path(k).name: v for k, v in samples.items()}
    bmp2 = by_name["HB03787.000"]
    assert (bmp2["label_name"], bmp2["label"], bmp2["split"]) == ("bmp2", 1, "train")
    assert (bmp2["height"], bmp2["width"]) == (20, 18)  # 20 rows x 18 columns: no row/column swap
    assert bmp2["depression_deg"] == 17.0 and bmp2["azimuth_deg"] == pytest.approx(346.491974)
    assert json.loads(bmp2["meta"])["serial"] == "9563"
    t72 = by_name["HB03333.015"]
    assert (t72["label_name"], t72["split"], t72["height"]) == ("t72", "test", 128)
    disagree = by_name["HB03790.004"]
    assert disagree["label_name"] == "t72" and "disagrees" in json.loads(disagree["meta"])["warning"]
    assert by_name["HB14931.000"]["label_name"] == "2s1"


def test_raw_arrays_match_an_independent_decode(tmp_path: Path) -> None:
    ingest("mstar", RAW, tmp_path)
    samples, _ = _rows(tmp_path)
    for rel, row in samples.items():
        data = (RAW / rel).read_bytes()
        _, hlen = parse_header(data)
        n = row["height"] * row["width"]
        mag = np.frombuffer(data[hlen : hlen + 4 * n], ">f4").reshape(row["height"], row["width"])
        phase = np.frombuffer(data[hlen + 4 * n :], ">f4").reshape(row["height"], row["width"])
        arrays = load_arrays(tmp_path, row["store_path"])
        assert arrays["img"].dtype == np.float32 and arrays["img"].shape == (1, row["height"], row["width"])
        np.testing.assert_array_equal(arrays["img"][0], mag)
        np.testing.assert_allclose(arrays["cplx"][0], mag * np.exp(1j * phase.astype(np.float64)), rtol=1e-6, atol=1e-7)


def test_md5_check_can_be_disabled(tmp_path: Path) -> None:
    result = ingest("mstar", RAW, tmp_path, options={"verify_md5": "false"})
    assert result.files["ok"] == 5


def test_jpeg_fixture_keys_unique_despite_repeated_stems(tmp_path: Path) -> None:
    ingest("mstar", JPEG, tmp_path)
    samples, _ = _rows(tmp_path)
    assert len(samples) == 8
    keys = [r["key"] for r in samples.values()]
    assert len(set(keys)) == 8 and "mstar_mstar-10-train-d7-hb03787-jpeg" in keys
    d7 = samples["MSTAR-10/train/D7/hb03787.jpeg"]
    assert (d7["label_name"], d7["split"], d7["height"], d7["width"], d7["dtype"]) == ("d7", "train", 36, 35, "uint8")


def test_fixture_generator_is_deterministic(tmp_path: Path) -> None:
    gen = load_generator("mstar")
    a, b = gen.generate(tmp_path / "a"), gen.generate(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    committed = sorted(p for p in (FIXTURES / "mstar").rglob("*") if p.is_file() and p.name != "data.py")
    assert [p.relative_to(FIXTURES / "mstar") for p in committed] == [p.relative_to(tmp_path / "a") for p in a]


# ---------------------------------------------------------------------------------------------- real data
@pytest.mark.real_data
def test_real_raw_chips(tmp_path: Path) -> None:
    root = shared("mstar-raw")
    result = ingest("mstar", root, tmp_path)
    assert result.files == {"ok": 5}
    samples, _ = _rows(tmp_path)
    expected = {
        "BMP2_HB03787.000": ("bmp2", "9563"),
        "BMP2_HB03787.001": ("bmp2", "9566"),
        "BMP2_HB03787.002": ("bmp2", "c21"),
        "BTR70_HB03787.004": ("btr70", "c71"),
        "T72_HB03787.015": ("t72", "132"),
    }
    for name, (label, serial) in expected.items():
        row = samples[name]
        data = (root / name).read_bytes()
        header, hlen = parse_header(data)
        assert 1973 <= hlen <= 1983 and hlen == int(header["PhoenixHeaderLength"])
        assert hashlib.md5(data[hlen:]).hexdigest() == header["Chip_MD5_CheckSum"]  # noqa: S324
        assert (row["label_name"], json.loads(row["meta"])["serial"]) == (label, serial)
        assert (row["height"], row["width"], row["split"], row["depression_deg"]) == (128, 128, "train", 17.0)
        assert row["azimuth_deg"] == pytest.approx(float(header["TargetAz"]))
        arrays = load_arrays(tmp_path, row["store_path"])
        assert arrays["img"].shape == (1, 128, 128) and 0.5 < arrays["img"].max() < 10
        phase = np.angle(arrays["cplx"]) % (2 * np.pi)
        assert phase.min() >= 0 and phase.max() < 2 * np.pi
    assert samples["BMP2_HB03787.000"]["azimuth_deg"] == pytest.approx(346.491974)


@pytest.mark.real_data
def test_real_jpeg_subset(tmp_path: Path) -> None:
    root = shared("mstar-jpeg")
    result = ingest("mstar", root, tmp_path, workers=2)
    assert result.files == {"ok": 500}
    samples, _ = load_ingest(tmp_path)
    df = samples.to_pandas()
    assert df["key"].is_unique and len(df) == 500
    assert sorted(df["label_name"].unique()) == [
        "2s1",
        "bmp2",
        "brdm2",
        "btr60",
        "btr70",
        "d7",
        "t62",
        "t72",
        "zil131",
        "zsu234",
    ]
    assert (df.groupby(["split", "label_name"]).size() == 25).all() and set(df["split"]) == {"train", "test"}
    sizes = df.groupby("label_name")[["width", "height"]].first()
    assert tuple(sizes.loc["d7"]) == (177, 178) and tuple(sizes.loc["zil131"]) == (192, 193)
    assert tuple(sizes.loc["brdm2"]) == (128, 129) and tuple(sizes.loc["2s1"]) == (158, 158)
