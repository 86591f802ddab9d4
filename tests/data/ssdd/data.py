#!/usr/bin/env python3
"""Write the tiny SSDD fixture: one variant of the official release (``BBox_RBox_PSeg_SSDD``), both styles.

``voc_style/``: ``JPEGImages/00000{1,2,9}.jpg`` + ``000010.jpg`` with ``Annotations/<stem>.xml`` (``<bndbox>`` and
``<segm><point>x,y</point>…`` polygons, as in the PSeg variants), the split copies ``Annotations_train/``,
``Annotations_test/``, ``Annotations_test_inshore/``, ``Annotations_test_offshore/`` and
``ImageSets/Main/{train,test,test_inshore,test_offshore}.txt``. ``coco_style/``: ``annotations/{train,test,
test_inshore,test_offshore}.json`` (category ``{"id": 1, "name": "ship"}``) with the images copied to
``images/{train,test,test_inshore,test_offshore}/``. Splits follow the official rule (numbers ending in 1 or 9 are
test): 000001 (offshore) and 000009 (inshore) test, 000002 and 000010 train. Images are 3-channel grey JPEGs of
different sizes; ``000002`` holds a ship whose box reaches past the bottom edge; ``000010`` has one ship without a
polygon (box only). Run ``python tests/data/ssdd/data.py``; prints the sha256 of every file. Seeded, deterministic.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
TOP = "BBox_RBox_PSeg_SSDD"
#: stem -> (width, height, scene, ships as (xmin, ymin, xmax, ymax, polygon or None))
IMAGES: dict[str, tuple[int, int, str, list[tuple[int, int, int, int, list[tuple[int, int]] | None]]]] = {
    "000001": (160, 120, "offshore", [(20, 30, 50, 42, [(20, 36), (35, 30), (50, 36), (35, 42)])]),
    "000002": (128, 96, "", [(60, 80, 80, 100, [(60, 80), (80, 80), (80, 100), (60, 100)]),  # past the bottom
                             (10, 10, 30, 20, [(10, 10), (30, 10), (30, 20), (10, 20)])]),
    "000009": (160, 120, "inshore", [(100, 50, 130, 70, [(100, 60), (115, 50), (130, 60), (115, 70)])]),
    "000010": (96, 96, "", [(40, 40, 56, 48, None)]),
}  # fmt: skip


def split_of(stem: str) -> str:
    return "test" if stem[-1] in "19" else "train"


def voc_xml(stem: str, width: int, height: int, ships: list) -> str:
    objects = []
    for x0, y0, x1, y1, poly in ships:
        segm = "".join(f"<point>{x},{y}</point>" for x, y in poly) if poly else ""
        objects.append(
            "<object><name>ship</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
            f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>"
            + (f"<segm>{segm}</segm>" if segm else "")
            + "</object>"
        )
    return (f"<annotation><folder>JPEGImages</folder><filename>{stem}.jpg</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size><segmented>0</segmented>{''.join(objects)}"
            "</annotation>\n")  # fmt: skip


def coco(stems: list[str], ids: dict[str, int]) -> dict:
    images, anns = [], []
    for stem in stems:
        width, height, _, ships = IMAGES[stem]
        images.append({"id": ids[stem], "file_name": f"{stem}.jpg", "width": width, "height": height})
        for x0, y0, x1, y1, poly in ships:
            seg = [[float(v) for p in poly for v in p]] if poly else []
            anns.append({"id": len(anns) + 100 * ids[stem], "image_id": ids[stem], "category_id": 1, "iscrowd": 0,
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "segmentation": seg})  # fmt: skip
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "ship", "supercategory": "ship"}]}


def generate(root: Path) -> list[Path]:
    """Write ``root/BBox_RBox_PSeg_SSDD/{voc_style,coco_style}``; return the files written."""
    rng = np.random.default_rng(1160)
    voc, cc = root / TOP / "voc_style", root / TOP / "coco_style"
    groups = {"train": [s for s in IMAGES if split_of(s) == "train"], "test": [s for s in IMAGES if split_of(s) == "test"],
              "test_inshore": [s for s, v in IMAGES.items() if v[2] == "inshore"],
              "test_offshore": [s for s, v in IMAGES.items() if v[2] == "offshore"]}  # fmt: skip
    written: list[Path] = []

    def write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)

    jpegs, xmls = {}, {}
    for stem, (width, height, _, ships) in IMAGES.items():
        grey = Image.fromarray((np.sqrt(rng.exponential(1.0, (height, width))) * 25).clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(grey)
        for x0, y0, x1, y1, poly in ships:
            draw.polygon(poly or [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], fill=220)
        path = voc / "JPEGImages" / f"{stem}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.merge("RGB", [grey] * 3).save(path, quality=92)
        written.append(path)
        jpegs[stem], xmls[stem] = path.read_bytes(), voc_xml(stem, width, height, ships).encode()
        write(voc / "Annotations" / f"{stem}.xml", xmls[stem])
    ids = {stem: i for i, stem in enumerate(IMAGES, 1)}
    for group, stems in groups.items():
        for stem in stems:
            write(voc / f"Annotations_{group}" / f"{stem}.xml", xmls[stem])
            write(cc / "images" / group / f"{stem}.jpg", jpegs[stem])
        write(voc / "ImageSets" / "Main" / f"{group}.txt", "".join(f"{s}\n" for s in stems).encode())
        write(cc / "annotations" / f"{group}.json", json.dumps(coco(stems, ids)).encode())
    return sorted(written)


def main() -> None:
    shutil.rmtree(HERE / TOP, ignore_errors=True)
    for path in generate(HERE):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
