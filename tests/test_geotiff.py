"""GeoTIFF scenes (windowed tiling, nodata rule, geo metadata, bounded memory) and folders of chips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, load_generator

from sardata.errors import ConfigError
from sardata.ingest import ingest, load_ingest
from sardata.manifest.io import read_table
from sardata.store import load_arrays

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
ROOT = FIXTURES / "geotiff" / "GeoTIFF"
gen = load_generator("geotiff")


def test_scene_tiles_geo_metadata_and_nodata_rule(tmp_path: Path) -> None:
    result = ingest("geotiff", ROOT / "scene", tmp_path, options={"tile": "32", "stride": "32"})
    samples, sources = (t.to_pandas() for t in load_ingest(tmp_path))
    assert result.files == {"ok": 1} and len(samples) == 5  # 2 x 3 tiles, the nodata corner tile skipped
    skipped = sources[sources["status"] == "skipped"]
    assert skipped["src_member"].tolist() == ["r000000-c000000"] and skipped["reason"].tolist() == ["nodata"]
    row = samples.set_index("src_member").loc["r000032-c000064"]
    assert row["key"] == "geotiff_s1-scene-tif-r000032-c000064" and row["split"] == "unlabelled"
    assert row["crs"] == "EPSG:32633" and row["pol"] == "VV,VH" and list(row["pixel_spacing_m"]) == [10.0, 10.0]
    assert list(row["bbox"]) == [500640.0, 3999360.0, 500960.0, 3999680.0]  # left, bottom, right, top
    meta = json.loads(row["meta"])
    assert meta["transform"] == [10.0, 0.0, 500640.0, 0.0, -10.0, 3999680.0] and meta["band_descriptions"] == [
        "VV",
        "VH",
    ]
    img = load_arrays(tmp_path, row["store_path"])["img"]
    np.testing.assert_array_equal(img, gen.scene_array()[:, 32:64, 64:96])
    assert (row["radiometry"], row["scale"]) == ("unspecified", "unspecified")


def test_overlapping_stride_and_partial_nodata_mask(tmp_path: Path) -> None:
    result = ingest(
        "geotiff", ROOT / "scene", tmp_path, options={"tile": "32", "stride": "16", "max_nodata_frac": "0.9"}
    )
    samples = load_ingest(tmp_path)[0].to_pandas()
    assert (
        result.files == {"ok": 1} and len(samples) == 3 * 5 - 1
    )  # floor((64-32)/16)+1 rows x floor((96-32)/16)+1 cols
    half = samples.set_index("src_member").loc["r000016-c000000"]
    arrays = load_arrays(tmp_path, half["store_path"])
    assert arrays["mask"].mean() == 0.5 and (arrays["img"][:, :16, :] == 0).all()  # nodata zeroed, masked


def test_cog_copy_gives_identical_chips(tmp_path: Path) -> None:
    ingest("geotiff", ROOT / "scene", tmp_path / "a", options={"tile": "32", "stride": "32"})
    ingest("geotiff", ROOT / "cog", tmp_path / "b", options={"tile": "32", "stride": "32"})
    a, b = (load_ingest(tmp_path / d)[0].to_pandas() for d in ("a", "b"))
    assert a["content_sha256"].tolist() == b["content_sha256"].tolist()


def test_chips_folder_labels_dtypes_and_missing_crs(tmp_path: Path) -> None:
    ingest(
        "geotiff",
        ROOT / "chips",
        tmp_path,
        options={"mode": "chips", "labels": "folder", "radiometry": "sigma0", "scale": "linear"},
    )
    df = load_ingest(tmp_path)[0].to_pandas().set_index("src_path")
    assert json.loads((tmp_path / "dataset.json").read_text())["class_maps"]["geotiff"] == ["clutter", "ship"]
    u8, f32, nocrs = df.loc["ship/ship_001.tif"], df.loc["ship/ship_002.tif"], df.loc["clutter/clutter_001.tif"]
    assert (u8["dtype"], u8["radiometry"], u8["label_name"]) == ("uint8", "display8", "ship")
    assert (f32["dtype"], f32["radiometry"], f32["scale"], f32["label"]) == ("float32", "sigma0", "linear", 1)
    assert f32["crs"] == "EPSG:4326" and not isinstance(f32["pixel_spacing_m"], np.ndarray)  # geographic: no spacing
    assert pd.isna(nocrs["crs"]) and "not georeferenced" in json.loads(nocrs["meta"])["warning"]


def test_cli_tile_stride_flags_and_bad_inputs(tmp_path: Path, sardata_cmd) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "fake.tif").write_bytes(b"not a tiff at all")
    (root / "trunc.tif").write_bytes((ROOT / "scene" / "s1_scene.tif").read_bytes()[:3000])
    (root / "small.tif").write_bytes((ROOT / "chips" / "ship" / "ship_001.tif").read_bytes())
    (root / "notes.txt").write_text("x")
    out = subprocess.run([*sardata_cmd, "ingest", "geotiff", str(root), "--out", str(tmp_path / "o"), "--tile", "32",
                          "--stride", "32"], capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 3
    status = {r["src_path"]: (r["status"], r["reason"]) for r in load_ingest(tmp_path / "o")[1].to_pylist()}
    assert status == {"fake.tif": ("rejected", "bad_format"), "trunc.tif": ("rejected", "undecodable"),
                      "small.tif": ("rejected", "too_small"), "notes.txt": ("skipped", "not_data")}  # fmt: skip
    with pytest.raises(ConfigError, match="mode"):
        ingest("geotiff", root, tmp_path / "x", options={"mode": "mosaic"})


@pytest.mark.slow
def test_8k_scene_bounded_rss(tmp_path: Path) -> None:
    """An 8192² float32 scene (256 MiB) tiles into 32 x 32 = 1024 chips with peak RSS < 500 MB."""
    import rasterio
    from rasterio.windows import Window

    scene = tmp_path / "big.tif"
    with rasterio.open(scene, "w", driver="GTiff", height=8192, width=8192, count=1, dtype="float32",
                       tiled=True, blockxsize=256, blockysize=256) as ds:  # fmt: skip
        rng = np.random.default_rng(0)
        block = rng.random((1, 1024, 8192), dtype=np.float32)
        for r in range(0, 8192, 1024):
            ds.write(block, window=Window(0, r, 8192, 1024))
    # peak RSS = VmHWM of the fresh process (ru_maxrss would carry over the forking pytest process's peak)
    code = (
        "import re\nfrom sardata.ingest import ingest\n"
        f"r = ingest('geotiff', {str(scene)!r}, {str(tmp_path / 'out')!r}, options={{'tile': '256', 'stride': '256'}})\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print(r.samples, hwm)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    samples, peak_kb = (int(v) for v in out.stdout.split())
    assert samples == 1024
    assert peak_kb * 1024 < 500e6, f"peak RSS {peak_kb / 1024:.0f} MB"


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_edge_rules_cover_the_whole_scene(tmp_path: Path) -> None:
    """Issue 20: full tiles only left the last 16 rows and 10 columns of a 2000 × 2100 scene at 256 px unsampled
    (56 tiles where torchgeo's grid gives 72). Same geometry scaled by 1/8: 250 × 262 at 32 px."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    scene = tmp_path / "scene" / "s.tif"
    scene.parent.mkdir()
    h, w, t = 250, 262, 32
    data = np.arange(h * w, dtype=np.float32).reshape(1, h, w) + 1
    with rasterio.open(scene, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32", nodata=0,
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10)) as ds:  # fmt: skip
        ds.write(data)
    opts = {"tile": str(t), "stride": str(t), "max_nodata_frac": "1.0", "radiometry": "sigma0", "scale": "linear"}
    counts = {}
    for edge in ("shift", "drop", "pad"):
        res = ingest("geotiff", scene.parent, tmp_path / edge, options={**opts, "edge": edge})
        rows = read_table(tmp_path / edge / "samples.parquet", "samples").to_pylist()
        counts[edge] = len(rows)
        assert res.files == {"ok": 1}
        covered = np.zeros((h, w), bool)
        for row in rows:
            img = load_arrays(tmp_path / edge, row["store_path"])["img"]
            assert img.shape == (1, t, t)
            meta = json.loads(row["meta"])
            r, c = meta["row"], meta["col"]
            valid = img[0] != 0  # the pad rule fills past the edge with nodata (0)
            covered[r : r + t, c : c + t][valid[: h - r, : w - c]] = True
            if edge != "pad":
                assert (img[0] == data[0, r : r + t, c : c + t]).all()  # real pixels only
        assert covered.all() == (edge != "drop")
        if edge == "drop":
            assert 1 - covered.mean() > 0.12  # the earlier rule never sampled the edge strip
    assert counts == {"shift": 72, "drop": 56, "pad": 72}
