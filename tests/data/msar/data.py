#!/usr/bin/env python3
"""Write the tiny MSAR-1.0 fixture (``sources.md`` §1 recipe) under ``MSAR-1.0 dataset/`` (space in the name).

``JPEGImages/{01,0267,01806}.jpg`` at 256x256 and ``12.jpg`` at 512x512, RGB with equal channels, and one
``Annotations/<stem>.xml`` each: all four Chinese class names, one XML with two objects, one with none, one float
box, one saved as GBK with ``encoding="gbk"``. Run ``python tests/data/msar/data.py``; prints the sha256 of every
file. Seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
TOP = "MSAR-1.0 dataset"
#: stem -> (size, XML encoding, objects as (name, xmin, ymin, xmax, ymax))
IMAGES: dict[str, tuple[int, str, list[tuple[str, float, float, float, float]]]] = {
    "01": (256, "utf-8", [("船只", 40, 50, 90, 80), ("油罐", 150, 120, 200, 190)]),  # two objects; 2nd is larger
    "0267": (256, "utf-8", [("飞机", 100.5, 60.25, 140.75, 110.5)]),  # float box
    "01806": (256, "utf-8", []),  # background only
    "12": (512, "gbk", [("桥梁", 60, 200, 450, 260)]),  # non-256 size, GBK-encoded XML
}


def voc_xml(stem: str, size: int, objects: list[tuple[str, float, float, float, float]], encoding: str) -> str:
    """A PASCAL-VOC annotation as labelImg writes it."""
    objs = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x0:g}</xmin>\n\t\t\t<ymin>{y0:g}</ymin>\n"
        f"\t\t\t<xmax>{x1:g}</xmax>\n\t\t\t<ymax>{y1:g}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for name, x0, y0, x1, y1 in objects
    )
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<annotation>\n\t<folder>JPEGImages</folder>\n'
        f"\t<filename>{stem}.jpg</filename>\n\t<size>\n\t\t<width>{size}</width>\n\t\t<height>{size}</height>\n"
        f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n"
    )


def generate(root: Path) -> list[Path]:
    """Write the fixture under ``root`` (the ``MSAR-1.0 dataset`` folder); return the files written."""
    rng = np.random.default_rng(20240128)
    written = []
    for stem, (size, encoding, objects) in IMAGES.items():
        grey = np.sqrt(rng.exponential(1.0, (size, size))) * 40
        for _, x0, y0, x1, y1 in objects:  # a bright target inside each box
            grey[int(y0) : int(y1), int(x0) : int(x1)] += 120
        grey = grey.clip(0, 255).astype(np.uint8)
        img = root / "JPEGImages" / f"{stem}.jpg"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([grey] * 3, axis=-1), mode="RGB").save(img, quality=90)
        xml = root / "Annotations" / f"{stem}.xml"
        xml.parent.mkdir(parents=True, exist_ok=True)
        xml.write_bytes(voc_xml(stem, size, objects, encoding).encode(encoding))
        written += [img, xml]
    return sorted(written)


def main() -> None:
    shutil.rmtree(HERE / TOP, ignore_errors=True)
    for path in generate(HERE / TOP):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
