"""HRSID ship detection and instance segmentation: 800 × 800 tiles + COCO JSON (``sources.md`` is silent on it;
this module models the public release, github.com/chaozhong2010/HRSID).

Layout: ``HRSID_png/images/*.png`` (or the JPEG release ``HRSID_JPG/JPEGImages/*.jpg``) beside
``annotations/{train2017,test2017,train_test2017}.json`` and, in some copies, ``inshore_offshore/{inshore,
offshore}.json``. Tiles are named ``P<scene>_<a>_<b>_<c>_<d>`` (the window of the source scene the tile was cut
from; the order of the four numbers is not documented) or ``P<scene>_<n>``. The COCO index is
:mod:`sardata.sources._coco`, boxes and masks :mod:`sardata.sources._detect`.

Work unit = one image (it reads the JSONs; each worker parses them once). A JSON is a ``skipped`` row (reason
``companion``), or, when some of its entries are unusable (an unsafe or missing ``file_name``, a duplicate image id,
an annotation of no listed image), an ``ok`` row with one rejected member row per such entry (``images[3]``,
``annotations[7]``).

Decisions where the spec is silent:

* **Classes**: ``ship`` only; COCO categories map by *name* (HRSID's is ``{"id": 1, "name": "ship"}``, so class id
  0 = ``ship``); an unknown category id or another name rejects the image (``unknown_class``).
* **Split**: from the official split file listing the image (``train2017.json`` → ``train``, ``test2017.json`` →
  ``test``; 3,642 / 1,962 images); an image only ``train_test2017.json`` lists goes to ``pool``; one listed by both
  split files is rejected (``split_conflict``). The union file's boxes are used only for images no split file lists;
  where it disagrees with the split file, ``meta.warnings`` says so (known to differ for a few images).
* **Scene tags**: ``meta.scene_tags`` = ``["inshore"]`` / ``["offshore"]`` from the subset JSONs (by file name);
  ``meta.source_scene`` / ``meta.window`` from the tile name (group by ``source_scene`` for leak-free re-splits).
* **Fields**: ``img`` uint8 ``(1, 800, 800)``; ``boxes`` float32 ``(N, 5)`` = 0, x0, y0, x0 + w, y0 + h from the COCO
  ``bbox``; ``inst`` uint8 instance-id map from the polygons (``-o masks=false``: boxes only). ``n_boxes`` column.
  Label ``ship`` when the tile has a box, else null. A box reaching beyond the tile is clipped and counted
  (``meta.boxes_clipped``; ``-o clip_boxes=false`` rejects the tile); hostile annotations are rejected rows
  (see :mod:`sardata.sources._detect`). A tile whose size differs from its JSON entry is rejected (``size_mismatch``):
  the polygons are in the declared frame.
* **Columns**: radiometry ``display8``, scale ``uint8``; sensor, band and polarisation ``unknown`` (Sentinel-1B,
  TerraSAR-X and TanDEM-X tiles, C and X band, not recorded per tile). 16-bit PNGs are rejected (``bad_dtype``);
  the PNG release is assumed 8-bit (not verified on real files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sardata.errors import SkipFile
from sardata.sources._base import FileUnit, MemberStatus, Sample, Source
from sardata.sources._coco import IMAGE_SUFFIXES, CocoIndex, build_index, coco_image, json_unit, list_files

CLASSES = ("ship",)
TILE = re.compile(r"^(?P<scene>P\d+)_(?P<window>\d+_\d+_\d+_\d+|\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class HRSIDOptions:
    #: clip boxes reaching beyond the tile (true) or reject the tile (false)
    clip_boxes: bool = True
    #: rasterise instance masks into ``inst.npy`` (false: boxes only)
    masks: bool = True


def parse_tile_name(stem: str) -> dict[str, Any]:
    """``{"source_scene": "P0001", "window": [0, 800, 7200, 8000]}`` from a tile stem (None where not named so)."""
    m = TILE.match(stem)
    if m is None:
        return {"source_scene": None, "window": None}
    window = [int(v) for v in m["window"].split("_")]
    return {"source_scene": m["scene"].upper(), "window": window if len(window) == 4 else None}


class HRSID(Source):
    companion_files = True  # boxes live in the JSONs: resume checks the whole listing
    id = "hrsid"
    version = "1.0.0"
    description = "HRSID ship detection + instance segmentation (800x800 tiles, COCO JSON): boxes and masks kept"
    classes = CLASSES
    Options = HRSIDOptions

    def __init__(self, root: str | os.PathLike[str], options: Any = None) -> None:
        super().__init__(root, options)
        self._index: CocoIndex | None = None

    @property
    def base(self) -> Path:
        return self.root if self.root.is_dir() else self.root.parent

    def index(self, rels: list[str] | None = None) -> CocoIndex:
        """The COCO index of this root, built once per process (from ``rels`` or by listing the root)."""
        if self._index is None:
            self._index = build_index(self.base, list_files(self.base) if rels is None else rels)
        return self._index

    def skip_reasons(self, rels: list[str]) -> dict[str, str]:
        out = super().skip_reasons(rels)
        for rel in rels:
            suffix = PurePosixPath(rel).suffix.lower()
            if rel not in out and suffix not in IMAGE_SUFFIXES and suffix != ".json":
                out[rel] = f"not_data: {suffix or 'extension-less'} files are not HRSID tiles or COCO annotations"
        return out

    def read(self, unit: FileUnit) -> Iterable[Sample | MemberStatus]:
        suffix = PurePosixPath(unit.rel).suffix.lower()
        if suffix == ".json":
            return json_unit(self.index(), unit.rel)
        if suffix not in IMAGE_SUFFIXES:
            raise SkipFile("not_data", f"{suffix or 'extension-less'} files are not HRSID tiles or annotations")
        arrays, meta, record = coco_image(self.index(), unit, CLASSES, self.options.clip_boxes, self.options.masks)
        n_boxes = len(arrays["boxes"])
        return [
            Sample(
                arrays=arrays,
                split=record.split,
                label_name="ship" if n_boxes else None,
                columns={
                    "radiometry": "display8",
                    "scale": "uint8",
                    "sensor": "unknown",
                    "band": "unknown",
                    "pol": "unknown",
                    "n_boxes": n_boxes,
                },
                meta={**meta, **parse_tile_name(PurePosixPath(unit.rel).stem)},
            )
        ]


__all__ = ["CLASSES", "HRSID", "HRSIDOptions", "parse_tile_name"]
