"""Sentinel-1 SAFE (GRD, SLC): windowed reads, LUT calibration checked against hand-computed values, annotation
into the manifest, every SAFE file accounted for, hostile products as rejected rows, source card and generator."""

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

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
ROOT = FIXTURES / "sentinel1" / "Sentinel1"
GEN = load_generator("sentinel1")
GRD, SLC = GEN.GRD, GEN.SLC
VV = GEN.GRD_STEM.format(pol="vv", num="001")


def _ingest(root: Path, out: Path, **options: str):
    result = ingest("sentinel1", root, out, options={"tile": "16", "stride": "16", **options})
    samples, sources = (t.to_pandas() for t in load_ingest(out))
    return result, samples, sources


def _window(samples, out: Path, scene: str, member: str) -> tuple[dict, dict]:
    row = samples[(samples["src_member"] == member) & samples["src_path"].str.contains(scene)].iloc[0]
    return row, load_arrays(out, row["store_path"])


def _copy(tmp_path: Path, product: str = GRD) -> Path:
    root = tmp_path / "in"
    shutil.copytree(ROOT / product, root / product)
    return root / product


def test_grd_sigma0_matches_hand_computed_lut_interpolation(tmp_path: Path) -> None:
    result, samples, sources = _ingest(ROOT, tmp_path)
    assert result.files == {"ok": 3, "skipped": 10}  # 3 measurements; annotations, LUTs, manifest, preview...
    dn = GEN.grd_dn("vv").astype(np.float64)
    row, arrays = _window(samples, tmp_path, "grd-vv", "r000000-c000000")
    # pixel (5, 10): lines 0 and 20 (t = 5/20), pixels 0 and 16 (u = 10/16) of the sigmaNought table
    a = 0.75 * (600 + 10 / 16 * (640 - 600)) + 0.25 * (620 + 10 / 16 * (650 - 620))
    assert a == 628.4375 and arrays["img"][0, 5, 10] == pytest.approx(dn[5, 10] ** 2 / a**2, rel=1e-6)
    # pixel (30, 50): lines 20 and 40 (t = 1/2), pixels 48 and 55 (u = 2/7)
    row, arrays = _window(samples, tmp_path, "grd-vv", "r000024-c000040")
    a = 0.5 * (690 + 2 / 7 * (735 - 690)) + 0.5 * (710 + 2 / 7 * (760 - 710))
    assert arrays["img"][0, 6, 10] == pytest.approx(dn[30, 50] ** 2 / a**2, rel=1e-6)
    assert (row["radiometry"], row["scale"], row["sensor"], row["band"], row["pol"]) == (
        "sigma0", "linear", "Sentinel-1A", "C", "VV",
    )  # fmt: skip
    assert list(row["pixel_spacing_m"]) == [10.0, 10.0] and row["crs"] == "EPSG:4326"
    meta = json.loads(row["meta"])
    assert {k: meta[k] for k in ("mission", "mode", "polarisation", "pass", "product_type", "start_time")} == {
        "mission": "S1A", "mode": "IW", "polarisation": "VV", "pass": "Ascending", "product_type": "GRD",
        "start_time": "2024-01-02T05:06:07.000000",
    }  # fmt: skip
    assert meta["incidence_mid_swath_deg"] == 39.1 and meta["noise_file"].endswith(f"noise-{VV}.xml")
    assert meta["thermal_noise_removed"] is False


def test_gamma0_db_and_beta0_through_the_radiometry_rules(tmp_path: Path) -> None:
    _, samples, _ = _ingest(ROOT, tmp_path / "g", calibration="gamma0", db="true")
    dn = GEN.grd_dn("vv").astype(np.float64)
    row, arrays = _window(samples, tmp_path / "g", "grd-vv", "r000024-c000040")
    # last pixel (39, 55): lines 20 and 40 (t = 19/20), pixel 55 is the grid's last column
    a = 0.05 * 655 + 0.95 * 670
    assert arrays["img"][0, 15, 15] == pytest.approx(10 * math.log10(dn[39, 55] ** 2 / a**2), abs=1e-4)
    assert (row["radiometry"], row["scale"]) == ("gamma0", "db")
    magnitude = to_linear_magnitude(arrays["img"], row["radiometry"], row["scale"])
    assert magnitude[0, 15, 15] == pytest.approx(dn[39, 55] / a, rel=1e-5)
    # zero DN (border noise removal) is clipped to the dB floor and masked
    row, arrays = _window(samples, tmp_path / "g", "grd-vv", "r000000-c000000")
    assert (arrays["img"][0, :, :4] == -100.0).all() and not arrays["mask"][:, :4].any() and arrays["mask"][:, 4:].all()
    _, samples, _ = _ingest(ROOT, tmp_path / "b", calibration="beta0")
    row, arrays = _window(samples, tmp_path / "b", "grd-vh", "r000016-c000016")
    assert arrays["img"][0, 3, 3] == pytest.approx(GEN.grd_dn("vh")[19, 19].astype(float) ** 2 / 474.0**2, rel=1e-6)


def test_slc_calibrated_complex_and_bursts(tmp_path: Path) -> None:
    _, samples, sources = _ingest(ROOT / SLC, tmp_path)  # the root is the SAFE folder itself
    iq = GEN.slc_iq().astype(np.complex128)
    row, arrays = _window(samples, tmp_path, "slc", "r000000-c000016")
    # pixel (13, 30): lines 12 and 24 (t = 1/12), pixels 24 and 47 (u = 6/23)
    a = 11 / 12 * (330 + 6 / 23 * (352 - 330)) + 1 / 12 * (335 + 6 / 23 * (360 - 335))
    assert arrays["cplx"][0, 13, 14] == pytest.approx(iq[13, 30] / a, rel=1e-6)
    assert arrays["img"][0, 13, 14] == pytest.approx(abs(iq[13, 30]) ** 2 / a**2, rel=1e-6)
    assert arrays["mask"][0].sum() == 0 and arrays["mask"][12].sum() == 0  # bursts' first lines are invalid
    meta = json.loads(row["meta"])
    assert (meta["product_type"], meta["swath"], meta["lines_per_burst"], meta["n_bursts"]) == ("SLC", "IW2", 12, 3)
    assert (
        meta["burst"] == 0 and json.loads(_window(samples, tmp_path, "slc", "r000020-c000000")[0]["meta"])["burst"] == 1
    )
    assert list(row["pixel_spacing_m"]) == [pytest.approx(13.9), pytest.approx(2.33)]
    assert len(samples) == 9 and set(samples["height"]) == {16}  # rows 0, 16, 20 (shifted) x cols 0, 16, 32


def test_slc_uncalibrated_keeps_the_digital_numbers(tmp_path: Path) -> None:
    _, samples, _ = _ingest(ROOT / SLC, tmp_path, calibration="none")
    row, arrays = _window(samples, tmp_path, "slc", "r000016-c000032")
    np.testing.assert_array_equal(arrays["cplx"][0], GEN.slc_iq()[16:32, 32:48])
    assert (row["radiometry"], row["scale"]) == ("amplitude", "linear")
    np.testing.assert_allclose(arrays["img"][0], np.abs(GEN.slc_iq()[16:32, 32:48].astype(np.complex128)), rtol=1e-6)
    _, samples, _ = _ingest(ROOT / SLC, tmp_path / "nc", complex="false")
    assert all(list(f) == ["img", "mask"] for f in samples["fields"])


def test_window_geolocation_from_the_tie_point_grid(tmp_path: Path) -> None:
    _, samples, _ = _ingest(ROOT / GRD, tmp_path, tile="40", stride="40", edge="drop")
    row = samples.iloc[0]  # rows 0..39, columns 0..39: centre (19.5, 19.5)
    # incidence at the centre: lines 0 and 20 (t = 19.5/20), pixels 0 and 28 (u = 19.5/28)
    u = 19.5 / 28
    top, bottom = 30.5 + u * (37.0 - 30.5), 30.5 + u * (37.1 - 30.5)
    assert row["incidence_deg"] == pytest.approx(top + 19.5 / 20 * (bottom - top), abs=1e-5)
    west, south, east, north = row["bbox"]
    # corners clamp to the grid: west is line 39's first longitude; north is line 0 at column 39.5
    assert west == pytest.approx(6.98) and north == pytest.approx(45.12 + (39.5 - 28) / 27 * 0.02)
    assert south == pytest.approx(45.00) and east == pytest.approx(7.30 + (39.5 - 28) / 27 * 0.30)


def test_every_safe_file_is_accounted_for(tmp_path: Path) -> None:
    _, _, sources = _ingest(ROOT, tmp_path)
    files = sources[sources["src_member"].isna()]
    assert len(files) == sum(1 for p in ROOT.rglob("*") if p.is_file())
    reasons = files.set_index(files["src_path"].map(lambda p: Path(p).name))["reason"].to_dict()
    assert reasons[f"{VV}.xml"] == "companion" and reasons[f"calibration-{VV}.xml"] == "companion"
    assert reasons[f"noise-{VV}.xml"] == "companion" and reasons["manifest.safe"] == "metadata"
    assert reasons["map-overlay.kml"] == "not_data" and reasons["s1-level-1-calibration.xsd"] == "not_data"


def _rejected(root: Path, out: Path, **options: str) -> dict[str, tuple[str, str]]:
    result = ingest("sentinel1", root, out, options={"tile": "16", "stride": "16", **options})
    return {Path(p).name: (reason, detail) for p, reason, detail in result.rejected}


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_missing_companions_and_lut_problems_are_rejected_rows(tmp_path: Path) -> None:
    safe = _copy(tmp_path)
    cal = safe / "annotation" / "calibration"
    vh = GEN.GRD_STEM.format(pol="vh", num="002")
    (cal / f"calibration-{VV}.xml").unlink()
    (safe / "annotation" / f"{vh}.xml").rename(safe / "annotation" / "elsewhere.xml")
    rejected = _rejected(safe, tmp_path / "a")
    assert rejected[f"{VV}.tiff"][0] == "missing_calibration" and rejected[f"{vh}.tiff"][0] == "missing_annotation"
    assert _rejected(safe, tmp_path / "b", calibration="none").keys() == {f"{vh}.tiff"}  # no LUT needed
    lut = {**GEN.GRD_LUT, "lines": [0, 20, 30]}  # the grid stops 9 lines short of the image
    (cal / f"calibration-{VV}.xml").write_text(
        GEN.calibration_xml(GEN.ads_header("VV", "GRD", "IW", "", "", "001"), lut)
    )
    assert _rejected(safe, tmp_path / "c")[f"{VV}.tiff"][0] == "lut_coverage"
    lut = {**GEN.GRD_LUT, "pixels": [0, 16, 32, 48, 50]}  # ... or 5 pixels short
    (cal / f"calibration-{VV}.xml").write_text(
        GEN.calibration_xml(GEN.ads_header("VV", "GRD", "IW", "", "", "001"), lut)
    )
    assert _rejected(safe, tmp_path / "d")[f"{VV}.tiff"][0] == "lut_coverage"
    lut = {**GEN.GRD_LUT, "sigmaNought": [[0.0] * 5] * 3}
    (cal / f"calibration-{VV}.xml").write_text(
        GEN.calibration_xml(GEN.ads_header("VV", "GRD", "IW", "", "", "001"), lut)
    )
    assert _rejected(safe, tmp_path / "e")[f"{VV}.tiff"][0] == "bad_calibration"
    (cal / f"calibration-{VV}.xml").write_text('<!DOCTYPE x [<!ENTITY a "aaaa">]><calibration>&a;</calibration>')
    assert _rejected(safe, tmp_path / "f")[f"{VV}.tiff"][0] == "bad_metadata"
    (cal / f"calibration-{VV}.xml").write_text("<calibration><calibrationVectorList>")
    assert _rejected(safe, tmp_path / "g")[f"{VV}.tiff"][0] == "bad_metadata"


def test_wrong_sizes_truncated_and_declared_huge_measurements(tmp_path: Path) -> None:
    import rasterio

    safe = _copy(tmp_path)
    vh = GEN.GRD_STEM.format(pol="vh", num="002")
    _rewrite(safe / "annotation" / f"{VV}.xml", "<numberOfLines>40<", "<numberOfLines>41<")
    tiff = safe / "measurement" / f"{vh}.tiff"
    tiff.write_bytes(tiff.read_bytes()[:3000])
    rejected = _rejected(safe, tmp_path / "a")
    assert rejected[f"{VV}.tiff"][0] == "size_mismatch" and "41x56" in rejected[f"{VV}.tiff"][1]
    assert rejected[f"{vh}.tiff"][0] == "truncated"
    # a sparse TIFF declaring 100000 x 100000 DN (20 GB) in a few hundred bytes, with a matching annotation
    tiff.unlink()
    with rasterio.open(tiff, "w", driver="GTiff", height=100_000, width=100_000, count=1, dtype="uint16",
                       sparse_ok=True, tiled=True, blockxsize=2048, blockysize=2048) as ds:  # fmt: skip
        assert ds.width == 100_000
    _rewrite(safe / "annotation" / f"{vh}.xml", "<numberOfLines>40<", "<numberOfLines>100000<")
    _rewrite(safe / "annotation" / f"{vh}.xml", "<numberOfSamples>56<", "<numberOfSamples>100000<")
    assert tiff.stat().st_size < 100_000
    assert _rejected(safe, tmp_path / "b")[f"{vh}.tiff"][0] == "truncated"


def test_tile_limit_and_budget_are_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _rejected(ROOT / SLC, tmp_path / "a", max_tiles="4").popitem()[1][0] == "too_large"
    monkeypatch.setenv("SARDATA_MAX_SAMPLE_BYTES", "5000")  # the XMLs fit; a 20 x 20 window's intermediates do not
    reason, detail = _rejected(ROOT / SLC, tmp_path / "b", tile="20", stride="20").popitem()[1]
    assert reason == "too_large" and "tile" in detail


def test_a_companion_linked_outside_the_root_is_refused(tmp_path: Path) -> None:
    safe = _copy(tmp_path)
    outside = tmp_path / "outside.xml"
    shutil.copy(safe / "annotation" / f"{VV}.xml", outside)
    (safe / "annotation" / f"{VV}.xml").unlink()
    (safe / "annotation" / f"{VV}.xml").symlink_to(outside)
    assert _rejected(safe, tmp_path / "a")[f"{VV}.tiff"][0] == "unsafe_path"


def test_options_are_checked(tmp_path: Path) -> None:
    for bad in ({"calibration": "sigma1"}, {"tile": "0"}, {"max_nodata_frac": "0"}, {"edge": "wrap"}):
        with pytest.raises(ConfigError):
            ingest("sentinel1", ROOT, tmp_path / "x", options=bad)


def test_source_card_and_generator(tmp_path: Path) -> None:
    card = load_yaml(REPO / "manifests" / "sources" / "sentinel1.yaml")
    assert isinstance(card, SourceCard) and card.classes == [] and card.band == "C"
    files = GEN.generate(tmp_path)
    committed = sorted(p for p in ROOT.rglob("*") if p.is_file())
    assert [p.relative_to(tmp_path) for p in files] == [p.relative_to(ROOT) for p in committed]
    assert all(p.read_bytes() == (ROOT / p.relative_to(tmp_path)).read_bytes() for p in files)
    assert sum(p.stat().st_size for p in committed) < 200_000
