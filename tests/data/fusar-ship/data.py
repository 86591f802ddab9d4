#!/usr/bin/env python3
"""Write the tiny FUSAR-Ship fixture (``sources.md`` §6 recipe). Two trees, each ingested on its own:

* ``FUSAR_Ship1.0/`` — the original layout: ``Cargo/BulkCarrier/Ship_C01S02N0001.tiff`` (512×512, written by
  GDAL through rasterio), ``Fishing/Fishing/Ship_C04S01N0002.tiff`` and ``Tanker/LPGTanker/Ship_C12S03N0003.tiff``
  (64×64, written by Pillow), a truncated ``Cargo/BulkCarrier/Ship_C01S02N0004.tiff`` and ``meta.csv`` with the 9
  columns, CRLF line ends and backslash paths: rows for 0001, 0002 and 0004, no row for the Tanker chip, and one
  orphan row (``Ship_C13S01N0005``, ``Tug\\Tug``) whose image does not exist.
* ``New_FUSAR/`` — the 10-class repackage: ``{Train,Val}/{Cargo,Fishing}/*.{png,jpg}``, 64×64 mode L, with one
  RGB-with-equal-channels PNG.

Run ``python tests/data/fusar-ship/data.py``; prints the sha256 of every file. Seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
CSV_HEADER = "id,mmsi,length,width,polarMode,centerLookAngle,heightspace,widthspace,path"
CSV_ROWS = (
    "Ship_C01S02N0001,413256960,189.99,32.26,VH,33.57,1.124,0.982,Cargo\\BulkCarrier",
    "Ship_C04S01N0002,412440123,38.5,7.2,VV,41.02,1.124,1.011,Fishing\\Fishing",
    "Ship_C01S02N0004,477123400,225,32.2,DH,28.4,1.124,0.995,Cargo\\BulkCarrier",
    "Ship_C13S01N0005,413999001,31.6,9.8,VH,36.9,1.124,1.003,Tug\\Tug",  # orphan: no such image
)
REPACK = (  # (split folder, class folder, file name, rgb)
    ("Train", "Cargo", "Ship_C01S01N0101.png", False),
    ("Train", "Cargo", "Ship_C01S01N0102.jpg", False),
    ("Train", "Fishing", "Ship_C04S01N0103.png", True),
    ("Val", "Cargo", "Ship_C01S01N0104.jpg", False),
    ("Val", "Fishing", "Ship_C04S01N0105.png", False),
)


def _chip(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dark sea speckle with a bright ship ellipse at the centre, uint8."""
    sea = np.sqrt(rng.exponential(1.0, (size, size))) * 18
    yy, xx = np.mgrid[:size, :size] - size / 2
    ship = ((xx / (size / 5)) ** 2 + (yy / (size / 14)) ** 2) < 1
    sea[ship] += 150
    return sea.clip(0, 255).astype(np.uint8)


def _tiff_pillow(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="TIFF")
    return buf.getvalue()


def _tiff_gdal(img: np.ndarray) -> bytes:
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile() as mem:
            profile = {"driver": "GTiff", "width": img.shape[1], "height": img.shape[0], "count": 1, "dtype": "uint8"}
            with mem.open(**profile) as ds:
                ds.write(img, 1)
            return mem.read()


def generate(root: Path) -> list[Path]:
    """Write both trees under ``root``; return the files written (sorted)."""
    rng = np.random.default_rng(1502)
    top = root / "FUSAR_Ship1.0"
    files = {
        top / "Cargo/BulkCarrier/Ship_C01S02N0001.tiff": _tiff_gdal(_chip(rng, 512)),
        top / "Fishing/Fishing/Ship_C04S01N0002.tiff": _tiff_pillow(_chip(rng, 64)),
        top / "Tanker/LPGTanker/Ship_C12S03N0003.tiff": _tiff_pillow(_chip(rng, 64)),
        # cut inside the strip data: the IFD (at offset 8) still says 4096 pixel bytes
        top / "Cargo/BulkCarrier/Ship_C01S02N0004.tiff": _tiff_pillow(_chip(rng, 64))[:2000],
        top / "meta.csv": ("\r\n".join((CSV_HEADER, *CSV_ROWS)) + "\r\n").encode("utf-8"),
    }
    for split, cls, name, rgb in REPACK:
        img = _chip(rng, 64)
        pil = Image.fromarray(np.stack([img] * 3, axis=-1), mode="RGB") if rgb else Image.fromarray(img, mode="L")
        buf = io.BytesIO()
        pil.save(buf, format="PNG" if name.endswith(".png") else "JPEG", quality=90)
        files[root / "New_FUSAR" / split / cls / name] = buf.getvalue()
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sorted(files)


def main() -> None:
    for sub in ("FUSAR_Ship1.0", "New_FUSAR"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    for path in generate(HERE):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
