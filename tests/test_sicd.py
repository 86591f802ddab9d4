"""SICD (NITF) through sarpy: windowed complex reads, chip mode, metadata columns, Radiometric calibration against
hand-computed values, hostile files as rejected rows, source card and generator."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, load_generator

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.radiometry import to_linear_magnitude
from sardata.recipes import SourceCard, load_yaml
from sardata.store import load_arrays

pytest.importorskip("sarpy")
ROOT = FIXTURES / "sicd" / "SICD"
GEN = load_generator("sicd")
SCENE = "scene_vv.nitf"


def _ingest(tmp_path: Path, root: Path = ROOT, **options: str):
    out = tmp_path / "out"
    result = ingest("sicd", root, out, options=options)
    samples, sources = (t.to_pandas() for t in load_ingest(out))
    return result, samples, sources, out


def _scene_only(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(ROOT / SCENE, root / SCENE)
    return root


def test_scene_windows_keep_the_complex_pixels_and_metadata(tmp_path: Path) -> None:
    result, samples, sources, out = _ingest(tmp_path, _scene_only(tmp_path), tile="16", stride="16")
    assert result.files == {"ok": 1} and len(samples) == 12  # 48 x 64 in 16 px windows
    row = samples.set_index("src_member").loc["r000016-c000032"]
    assert row["key"] == "sicd_scene-vv-nitf-r000016-c000032" and row["split"] == "unlabelled"
    arrays = load_arrays(out, row["store_path"])
    expected = GEN.image(GEN.SCENE)[16:32, 32:48]
    np.testing.assert_array_equal(arrays["cplx"], expected[None])
    np.testing.assert_allclose(arrays["img"], np.abs(expected.astype(np.complex128))[None], rtol=1e-6)
    assert (row["radiometry"], row["scale"], row["dtype"]) == ("amplitude", "linear", "float32")
    assert (row["sensor"], row["band"], row["pol"]) == ("SARDATA-SIM-1", "X", "VV")
    assert list(row["pixel_spacing_m"]) == [0.5, pytest.approx(0.4)]
    meta = json.loads(row["meta"])
    assert meta["graze_deg"] == pytest.approx(math.degrees(math.atan2(500, 400)), abs=0.01)  # flat-earth geometry
    assert row["incidence_deg"] == pytest.approx(90 - meta["graze_deg"], abs=1e-4)
    assert meta["resolution_m"] == [0.6, 0.5] and meta["sample_spacing_m"] == [0.5, 0.4]
    assert meta["collect_start"] == "2024-01-02T03:04:05.000000" and meta["collector"] == "SARDATA-SIM-1"
    assert meta["tx_rcv_polarization"] == "V:V" and meta["radar_mode"] == "SPOTLIGHT" and meta["side_of_track"] == "R"
    assert meta["scene_shape"] == [48, 64] and meta["pixel_type"] == "RE32F_IM32F"
    # the window's bbox lies inside the scene's corners (rows point east, columns north in the fixture)
    lat = [c[0] for c in meta["image_corners"]]
    lon = [c[1] for c in meta["image_corners"]]
    west, south, east, north = row["bbox"]
    assert row["crs"] == "EPSG:4326" and min(lon) < west < east < max(lon) and min(lat) < south < north < max(lat)
    assert set(sources["status"]) == {"ok"}


def test_chip_mode_reads_each_file_as_one_sample_int16_included(tmp_path: Path) -> None:
    result, samples, _, out = _ingest(tmp_path, mode="chip", output="magnitude")
    assert result.files == {"ok": 2} and len(samples) == 2
    by_file = samples.set_index("src_path")
    chip = by_file.loc["chip_hh.ntf"]
    assert (chip["height"], chip["width"], chip["pol"], chip["fields"].tolist()) == (20, 24, "HH", ["img"])
    img = load_arrays(out, chip["store_path"])["img"]
    np.testing.assert_allclose(img[0], np.abs(GEN.image(GEN.CHIP)), rtol=1e-6)
    assert json.loads(chip["meta"])["pixel_type"] == "RE16I_IM16I"


def test_sigma0_from_the_scale_factor_polynomial_hand_computed(tmp_path: Path) -> None:
    root = _scene_only(tmp_path)
    _, samples, _, out = _ingest(tmp_path, root, tile="16", stride="16", calibration="sigma0")
    row = samples.set_index("src_member").loc["r000000-c000016"]
    img = load_arrays(out, row["store_path"])["img"][0]
    x = GEN.image(GEN.SCENE)
    # pixel (10, 20): SCP pixel (24, 32), spacing 0.5 / 0.4 m -> xrow = -7 m, ycol = -4.8 m
    sf = 2.0 + 0.01 * -4.8 + 0.02 * -7.0  # SIGMA0_COEFS [[2.0, 0.01], [0.02, 0.0]]
    assert img[10, 4] == pytest.approx(abs(complex(x[10, 20])) ** 2 * sf, rel=1e-6)
    assert (row["radiometry"], row["scale"]) == ("sigma0", "linear")
    # dB through the same rule, and radiometry.to_linear_magnitude maps it back to sqrt(sigma0)
    _, samples_db, _, out_db = _ingest(tmp_path / "db", root, tile="16", stride="16", calibration="gamma0", db="true")
    row = samples_db.set_index("src_member").loc["r000032-c000048"]
    img_db = load_arrays(out_db, row["store_path"])["img"][0]
    # GAMMA0_COEFS [[2.5, 0.0], [0.0, 0.005]]: 2.5 + 0.005 · xrow · ycol, xrow = (40 - 24) · 0.5, ycol = (60 - 32) · 0.4
    gamma = abs(complex(x[40, 60])) ** 2 * (2.5 + 0.005 * 8.0 * 11.2)
    assert img_db[8, 12] == pytest.approx(10 * math.log10(gamma), abs=1e-4)
    assert (row["radiometry"], row["scale"]) == ("gamma0", "db")
    magnitude = to_linear_magnitude(img_db, row["radiometry"], row["scale"])
    assert magnitude[8, 12] == pytest.approx(math.sqrt(gamma), rel=1e-5)


def test_calibration_without_radiometric_block_is_a_rejected_row(tmp_path: Path) -> None:
    result, _, sources, _ = _ingest(tmp_path, tile="16", stride="16", calibration="beta0")
    files = sources[sources["src_member"].isna()].set_index("src_path")
    assert files.loc["chip_hh.ntf", "reason"] == "missing_calibration"
    assert files.loc[SCENE, "status"] == "ok" and result.files == {"ok": 1, "rejected": 1}


def test_edge_pad_masks_and_skips_mostly_empty_windows(tmp_path: Path) -> None:
    _, samples, sources, out = _ingest(tmp_path, _scene_only(tmp_path), tile="40", stride="40", edge="pad")
    members = sources.dropna(subset=["src_member"]).set_index("src_member")
    assert members.loc["r000040-c000000", "reason"] == "nodata"  # 8 of 40 rows inside: 80 % padding
    row = samples.set_index("src_member").loc["r000000-c000040"]  # 24 of 40 columns inside
    arrays = load_arrays(out, row["store_path"])
    assert arrays["mask"][:, :24].all() and not arrays["mask"][:, 24:].any()
    assert (arrays["cplx"][0][:, 24:] == 0).all() and json.loads(row["meta"])["nodata_frac"] == 0.4


def _variant(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / "in" / name).write_bytes(data)


def test_hostile_files_are_rejected_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (ROOT / SCENE).read_bytes()
    (tmp_path / "in").mkdir()
    _variant(tmp_path, "cut.nitf", raw[: len(raw) // 2])
    _variant(tmp_path, "padded.nitf", raw + b"\x00" * 64)
    _variant(tmp_path, "header_only.ntf", raw[:200])
    _variant(tmp_path, "text.nitf", b"not a nitf at all" * 40)
    _variant(tmp_path, "rows.nitf", raw.replace(b"<NumRows>48</NumRows>", b"<NumRows>49</NumRows>", 1))
    _variant(tmp_path, "nosicd.nitf", raw.replace(b"XML_DATA_CONTENT", b"OTHER_DES_CONTNT", 1))
    result, _, sources, _ = _ingest(tmp_path, tmp_path / "in", tile="16", stride="16")
    status = sources[sources["src_member"].isna()].set_index("src_path")
    assert status.loc["cut.nitf", "reason"] == "truncated"
    assert status.loc["padded.nitf", "reason"] == "size_mismatch"
    assert status.loc["header_only.ntf", "reason"] == "truncated"
    assert status.loc["text.nitf", "reason"] == "bad_format"
    assert status.loc["rows.nitf", "reason"] == "size_mismatch" and "49x64" in status.loc["rows.nitf", "detail"]
    assert status.loc["nosicd.nitf", "reason"] == "not_sicd"
    assert result.files == {"rejected": 6}


def test_declared_sizes_over_the_budget_or_tile_limit_are_rejected(tmp_path: Path, monkeypatch) -> None:
    root = _scene_only(tmp_path)
    result, _, sources, _ = _ingest(tmp_path / "a", root, tile="16", stride="16", max_tiles="4")
    assert result.rejected[0][1] == "too_large" and "max_tiles" in result.rejected[0][2]
    monkeypatch.setenv("SARDATA_MAX_SAMPLE_BYTES", "20000")  # below 48 x 64 x 16 B
    result, _, _, _ = _ingest(tmp_path / "b", root, mode="chip")
    assert result.rejected[0][1] == "too_large"


def test_options_are_checked(tmp_path: Path) -> None:
    for bad in ({"output": "phase"}, {"mode": "stack"}, {"calibration": "rcs"}, {"edge": "wrap"}):
        with pytest.raises(ConfigError):
            ingest("sicd", ROOT, tmp_path / "x", options=bad)


def test_complex_windows_build_into_shards(tmp_path: Path) -> None:
    from sardata.shards.build import BuildConfig, build_shards

    _ingest(tmp_path, _scene_only(tmp_path), tile="24", stride="24")  # GR's largest radius needs > 17 px
    build_shards([tmp_path / "out"], tmp_path / "ds", BuildConfig(targets=("gr",)))
    from sardata.manifest.io import read_table

    samples = read_table(tmp_path / "ds" / "samples.parquet", "samples").to_pandas()
    assert len(samples) == 6 and all(set(f) >= {"cplx", "img", "gr"} for f in samples["fields"])


def test_source_card_and_generator(tmp_path: Path) -> None:
    card = load_yaml(REPO / "manifests" / "sources" / "sicd.yaml")
    assert isinstance(card, SourceCard) and card.classes == [] and "licence" in card.licence.lower()
    files = GEN.generate(tmp_path)
    committed = sorted(p for p in ROOT.rglob("*") if p.is_file())
    assert [p.relative_to(tmp_path) for p in files] == [p.relative_to(ROOT) for p in committed]
    assert all(p.read_bytes() == (ROOT / p.relative_to(tmp_path)).read_bytes() for p in files)
    assert sum(p.stat().st_size for p in committed) < 200_000
