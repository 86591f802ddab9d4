#!/usr/bin/env python3
"""Write the tiny GeoTIFF fixture (``sources.md`` §9 recipe) into ``GeoTIFF/``.

``scene/s1_scene.tif``: 2-band float32 64 × 96 (H × W) in EPSG:32633, band descriptions VV/VH, nodata = -9999 over
the top-left 32 × 32 corner; ``cog/s1_scene_cog.tif``: a tiled COG-style copy with overviews;
``chips/{ship,clutter}/*.tif``: one uint8, one float32, one without CRS. Seeded.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NODATA = -9999.0


def scene_array(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = rng.exponential(0.05, (2, 64, 96)).astype(np.float32)
    arr[:, :32, :32] = NODATA
    return arr


def generate(root: Path) -> list[Path]:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin

    root.mkdir(parents=True, exist_ok=True)
    arr = scene_array()
    profile = {"driver": "GTiff", "height": 64, "width": 96, "count": 2, "dtype": "float32", "crs": "EPSG:32633",
               "transform": from_origin(500000.0, 4000000.0, 10.0, 10.0), "nodata": NODATA}  # fmt: skip
    (root / "scene").mkdir(exist_ok=True)
    with rasterio.open(root / "scene" / "s1_scene.tif", "w", **profile) as ds:
        ds.write(arr)
        ds.descriptions = ("VV", "VH")
    (root / "cog").mkdir(exist_ok=True)
    with rasterio.open(
        root / "cog" / "s1_scene_cog.tif", "w", **profile, tiled=True, blockxsize=16, blockysize=16
    ) as ds:
        ds.write(arr)
        ds.descriptions = ("VV", "VH")
        ds.build_overviews([2, 4], Resampling.average)
    rng = np.random.default_rng(4)
    for folder, name, data, crs in [
        ("ship", "ship_001.tif", rng.integers(0, 255, (1, 20, 24), dtype=np.uint8), "EPSG:32633"),
        ("ship", "ship_002.tif", rng.exponential(0.1, (1, 20, 20)).astype(np.float32), "EPSG:4326"),
        ("clutter", "clutter_001.tif", rng.exponential(0.1, (1, 18, 22)).astype(np.float32), None),
    ]:
        (root / "chips" / folder).mkdir(parents=True, exist_ok=True)
        kw = {"crs": crs, "transform": from_origin(10.0, 50.0, 0.0001, 0.0001)} if crs else {}
        with rasterio.open(root / "chips" / folder / name, "w", driver="GTiff", height=data.shape[1],
                           width=data.shape[2], count=1, dtype=data.dtype, **kw) as ds:  # fmt: skip
            ds.write(data)
    return sorted(p for p in root.rglob("*") if p.is_file())


def main() -> None:
    shutil.rmtree(HERE / "GeoTIFF", ignore_errors=True)
    for path in generate(HERE / "GeoTIFF"):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
