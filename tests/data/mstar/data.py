#!/usr/bin/env python3
"""Write the tiny MSTAR fixture (``sources.md`` §5 recipe): raw Phoenix tree + MSTAR-10 JPEG tree.

Run from anywhere: ``python tests/data/mstar/data.py`` rewrites the files beside this script and prints their
sha256. Seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sardata.sources.mstar import write_phoenix

HERE = Path(__file__).resolve().parent
TARGETS = "MSTAR_PUBLIC_TARGETS_CHIPS_T72_BMP2_BTR70_SLICY/TARGETS"
MIXED = "MSTAR_PUBLIC_MIXED_TARGETS_CD2/17_DEG/COL2/SCENE1"


def _chip(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    mag = np.sqrt(0.01 * rng.exponential(1.0, (rows, cols))).astype(np.float32)
    mag[rows // 2, cols // 2] = 1.5  # a bright scatterer, like the real chips' max of 0.6-2.2
    phase = rng.uniform(0, 2 * np.pi, (rows, cols)).astype(np.float32)
    return mag, phase


def _fields(target: str, serial: str, az: float, dep: int, filename: str) -> dict[str, str | int]:
    return {
        "Filename": filename,
        "ParentScene": filename.split(".")[0],
        "TargetType": target,
        "TargetSerNum": serial,
        "TargetAz": f"{az:.6f}",
        "DesiredDepression": dep,
        "MeasuredDepression": f"{dep + 0.09375:.6f}",
        "RadarMode": "mode 5 - spot light",
        "CollectionDate": "19950902",
        "CenterFrequency": "9.60 GHz",
        "Bandwidth": " 0.591 GHz",
        "RangePixelSpacing": "0.202148",
        "CrossRangePixelSpacing": "0.203125",
        "Polarization": "HH",
    }


def generate(root: Path) -> list[Path]:
    """Write the fixture under ``root/raw`` and ``root/jpeg``; return the files written."""
    rng = np.random.default_rng(20261122)
    raw = root / "raw"
    chips = [
        # (relative path, TargetType, serial, rows, cols, azimuth, depression)
        (f"{TARGETS}/TRAIN/17_DEG/BMP2/SN_9563/HB03787.000", "bmp2_tank", "9563", 20, 18, 346.491974, 17),
        (f"{TARGETS}/TEST/15_DEG/T72/SN_132/HB03333.015", "t72_tank", "132", 128, 128, 10.790657, 15),
        (f"{MIXED}/2S1/HB14931.000", "2s1_gun", "b01", 24, 24, 91.25, 17),
        # folder says BTR70, header says T72: label comes from the header, disagreement kept as a warning
        (f"{TARGETS}/TRAIN/17_DEG/BTR70/SN_C71/HB03790.004", "t72_tank", "132", 16, 16, 5.0, 17),
        (f"{TARGETS}/TRAIN/17_DEG/SLICY/HB14932.015", "slicey", "", 16, 16, 0.0, 17),
        # bad inputs, fixed below
        (f"{TARGETS}/TRAIN/17_DEG/BMP2/SN_9563/HB03791.000", "bmp2_tank", "9563", 16, 16, 1.0, 17),
        (f"{TARGETS}/TEST/15_DEG/T72/SN_132/HB03334.015", "t72_tank", "132", 16, 16, 2.0, 15),
        (f"{TARGETS}/TRAIN/17_DEG/BMP2/SN_9563/HB03792.000", "bmp2_tank", "9563", 16, 16, 3.0, 17),
    ]
    written = []
    for rel, target, serial, rows, cols, az, dep in chips:
        path = raw / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        name = Path(rel).name
        write_phoenix(path, *_chip(rng, rows, cols), _fields(target, serial, az, dep, name.lower()))
        written.append(path)
    # truncated in the middle of the magnitude block
    trunc = raw / chips[5][0]
    trunc.write_bytes(trunc.read_bytes()[:-700])
    # one payload byte flipped: MD5 mismatch
    bad_md5 = raw / chips[6][0]
    data = bytearray(bad_md5.read_bytes())
    data[-5] ^= 0xFF
    bad_md5.write_bytes(bytes(data))
    # header sizes disagree with the file: NumberOfRows says 17 but 16 rows are stored
    mism = raw / chips[7][0]
    mism.write_bytes(mism.read_bytes().replace(b"NumberOfRows= 16", b"NumberOfRows= 17", 1))
    # decoy preview and documentation siblings
    Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8), mode="L").save(raw / MIXED / "2S1/HB14931.JPG")
    (raw / MIXED / "2S1/HB14931.HTM").write_text("<html>preview</html>\n")
    written += [raw / MIXED / "2S1/HB14931.JPG", raw / MIXED / "2S1/HB14931.HTM"]

    jpeg = root / "jpeg" / "MSTAR-10"
    sizes = {"BMP2": (32, 32), "D7": (35, 36)}  # (width, height): D7 non-square like the real 177x178
    for split in ("train", "test"):
        for cls, (w, h) in sizes.items():
            for stem in ("hb03787", f"hb0{4000 + len(cls)}" if split == "train" else "hb05001"):
                path = jpeg / split / cls / f"{stem}.jpeg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8), mode="L").save(path, quality=90)
                written.append(path)
    return sorted(written)


def main() -> None:
    for sub in ("raw", "jpeg"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    for path in generate(HERE):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE), file=sys.stdout)


if __name__ == "__main__":
    main()
