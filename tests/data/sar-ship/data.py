#!/usr/bin/env python3
"""Write the tiny SAR-Ship-Dataset fixture (``sources.md`` §2 recipe): ``ship_dataset_v0/`` + a zipped copy.

Six 256x256 chips with YOLO ``.txt`` labels: the five named stems plus ``Gao_ship_hv_0201608254401010022``
(invented, the one with an empty ``.txt``); four RGB-equal and two mode-L JPEGs; ``Gao_ship_hh_…`` has three
label lines and a trailing blank line. ``ship_dataset_v0.zip`` holds the same files under ``ship_dataset_v0/``
(stored, fixed timestamps, so its bytes are reproducible). Run ``python tests/data/sar-ship/data.py``; prints the
sha256 of every file. Seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
TOP = "ship_dataset_v0"
SIZE = 256
#: stem -> (PIL mode, ship boxes in pixels as (x0, y0, x1, y1)); boxes are multiples of 1/2 px so YOLO text is exact
CHIPS: dict[str, tuple[str, list[tuple[int, int, int, int]]]] = {
    "Gao_ship_hh_0201608254401010021": ("RGB", [(100, 110, 130, 122), (20, 30, 36, 70), (200, 180, 250, 196)]),
    "Gao_ship_vv_02017010717020801": ("RGB", [(120, 120, 141, 133)]),
    "Sen_ship_vh_0201611220205011": ("RGB", [(60, 90, 75, 99)]),  # invented digit tail
    "newship011017035": ("L", [(0, 0, 12, 9)]),  # touches the corner
    "ship030402": ("L", [(128, 64, 160, 80)]),
    "Gao_ship_hv_0201608254401010022": ("RGB", []),  # empty .txt
}


def yolo_lines(boxes: list[tuple[int, int, int, int]]) -> str:
    """``0 cx cy w h`` normalised, one line per box (exact binary fractions, written with repr)."""
    return "".join(
        f"0 {(x0 + x1) / 2 / SIZE!r} {(y0 + y1) / 2 / SIZE!r} {(x1 - x0) / SIZE!r} {(y1 - y0) / SIZE!r}\n"
        for x0, y0, x1, y1 in boxes
    )


def generate(root: Path) -> list[Path]:
    """Write ``root/ship_dataset_v0/`` and ``root/ship_dataset_v0.zip``; return the files written."""
    rng = np.random.default_rng(39729)
    folder = root / TOP
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (mode, boxes) in CHIPS.items():
        grey = np.sqrt(rng.exponential(1.0, (SIZE, SIZE))) * 30
        for x0, y0, x1, y1 in boxes:
            grey[y0:y1, x0:x1] += 150
        grey = grey.clip(0, 255).astype(np.uint8)
        pixels = np.stack([grey] * 3, axis=-1) if mode == "RGB" else grey
        Image.fromarray(pixels, mode=mode).save(folder / f"{stem}.jpg", quality=90)
        text = yolo_lines(boxes) + ("\n" if len(boxes) == 3 else "")  # the 3-line file ends with a blank line
        (folder / f"{stem}.txt").write_text(text, encoding="utf-8", newline="\n")
        written += [folder / f"{stem}.jpg", folder / f"{stem}.txt"]
    written.sort()
    archive = root / f"{TOP}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(_info(f"{TOP}/", 0o40755), b"")
        for path in written:
            zf.writestr(_info(f"{TOP}/{path.name}", 0o100644), path.read_bytes())
    return [*written, archive]


def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2021, 1, 1, 0, 0, 0))
    info.external_attr = mode << 16
    return info


def main() -> None:
    shutil.rmtree(HERE / TOP, ignore_errors=True)
    (HERE / f"{TOP}.zip").unlink(missing_ok=True)
    for path in generate(HERE):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
