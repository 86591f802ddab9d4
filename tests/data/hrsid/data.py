#!/usr/bin/env python3
"""Write the tiny HRSID fixture: the PNG release layout ``HRSID_png/images/*.png`` + COCO JSONs.

Four 800x800 8-bit tiles named like the release (``P<scene>_<a>_<b>_<c>_<d>.png``, and one ``P0137_<n>``),
annotated in ``annotations/train2017.json`` (two tiles), ``test2017.json`` (two) and ``train_test2017.json`` (all
four, the same annotations), plus the scene subsets ``inshore_offshore/{inshore,offshore}.json``. One category
``{"id": 1, "name": "ship"}`` as in HRSID. Ships are bright polygons on a blocky speckle background (blocky so that
the PNGs stay small); one ship reaches beyond the right edge (its box is clipped on ingest), one mask is an
uncompressed RLE, ``P0137_1`` has no ship. Run ``python tests/data/hrsid/data.py``; prints the sha256 of every
file. Seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
TOP = "HRSID_png"
SIZE = 800
#: tile -> (split, scene subset, ships as polygons [(x, y), ...]; "rle" marks a ship stored as an RLE mask)
TILES: dict[str, tuple[str, str, list[tuple[str, list[tuple[int, int]]]]]] = {
    "P0001_0_800_0_800": ("train", "offshore", [
        ("poly", [(100, 120), (160, 110), (170, 130), (110, 142)]),
        ("poly", [(400, 500), (430, 480), (470, 540), (440, 560)]),
    ]),
    "P0001_600_1400_0_800": ("train", "offshore", [
        ("poly", [(760, 300), (830, 300), (830, 330), (760, 330)]),  # beyond the right edge: clipped box
    ]),
    "P0002_0_800_800_1600": ("test", "inshore", [
        ("poly", [(200, 200), (260, 200), (260, 224), (200, 224)]),
        ("rle", [(600, 100), (640, 100), (640, 150), (600, 150)]),  # stored as uncompressed RLE
    ]),
    "P0137_1": ("test", "offshore", []),
}  # fmt: skip
CATEGORIES = [{"id": 1, "name": "ship", "supercategory": "ship"}]


def tile_pixels(rng: np.random.Generator, ships: list[tuple[str, list[tuple[int, int]]]]) -> np.ndarray:
    """Blocky speckle (16-px blocks, 8 grey levels) with ships filled in at 230."""
    blocks = (np.sqrt(rng.exponential(1.0, (SIZE // 16, SIZE // 16))) * 3).astype(np.uint8).clip(0, 7) * 8 + 10
    im = Image.fromarray(np.kron(blocks, np.ones((16, 16), np.uint8)))
    draw = ImageDraw.Draw(im)
    for _, pts in ships:
        draw.polygon(pts, fill=230)
    return np.asarray(im)


def rle_of_rectangle(pts: list[tuple[int, int]]) -> dict:
    """Uncompressed COCO RLE (column-major runs, background first) of the rectangle spanned by ``pts``."""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    mask = np.zeros((SIZE, SIZE), bool)
    mask[min(ys) : max(ys), min(xs) : max(xs)] = True
    flat = mask.T.reshape(-1)
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    edges = [0, *change.tolist(), flat.size]
    runs = np.diff(edges).tolist()
    return {"size": [SIZE, SIZE], "counts": runs if not flat[0] else [0, *runs]}


def annotation(ann_id: int, image_id: int, kind: str, pts: list[tuple[int, int]]) -> dict:
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    bbox = [float(min(xs)), float(min(ys)), float(max(xs) - min(xs)), float(max(ys) - min(ys))]
    seg = rle_of_rectangle(pts) if kind == "rle" else [[float(v) for p in pts for v in p]]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": bbox, "area": bbox[2] * bbox[3],
            "segmentation": seg, "iscrowd": 0}  # fmt: skip


def coco(names: list[str], ids: dict[str, int], anns: dict[str, list[dict]]) -> dict:
    images = [{"id": ids[n], "file_name": f"{n}.png", "width": SIZE, "height": SIZE} for n in names]
    return {"info": {"description": "sardata HRSID fixture"}, "images": images,
            "annotations": [a for n in names for a in anns[n]], "categories": CATEGORIES}  # fmt: skip


def generate(root: Path) -> list[Path]:
    """Write ``root/HRSID_png/``; return the files written."""
    rng = np.random.default_rng(5604)
    top = root / TOP
    for sub in ("images", "annotations", "inshore_offshore"):
        (top / sub).mkdir(parents=True, exist_ok=True)
    written, ids, anns, next_ann = [], {}, {}, 1
    for i, (name, (_, _, ships)) in enumerate(TILES.items(), 1):
        Image.fromarray(tile_pixels(rng, ships)).save(top / "images" / f"{name}.png", optimize=True)
        written.append(top / "images" / f"{name}.png")
        ids[name], anns[name] = i, []
        for kind, pts in ships:
            anns[name].append(annotation(next_ann, i, kind, pts))
            next_ann += 1
    files = {
        "annotations/train2017.json": [n for n, t in TILES.items() if t[0] == "train"],
        "annotations/test2017.json": [n for n, t in TILES.items() if t[0] == "test"],
        "annotations/train_test2017.json": list(TILES),
        "inshore_offshore/inshore.json": [n for n, t in TILES.items() if t[1] == "inshore"],
        "inshore_offshore/offshore.json": [n for n, t in TILES.items() if t[1] == "offshore"],
    }
    for rel, names in files.items():
        (top / rel).write_text(json.dumps(coco(names, ids, anns)), encoding="utf-8")
        written.append(top / rel)
    return sorted(written)


def main() -> None:
    shutil.rmtree(HERE / TOP, ignore_errors=True)
    for path in generate(HERE):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
