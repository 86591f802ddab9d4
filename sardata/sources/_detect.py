"""Detection annotations shared by the COCO and VOC adapters (:mod:`~sardata.sources.hrsid`,
:mod:`~sardata.sources.ssdd`): boxes checked and clipped, instance masks rasterised into one instance-id map, and
the sample fields they become.

Fields: ``boxes`` float32 ``(N, 5)`` = class id, x0, y0, x1, y1 in pixels (the registry's layout, as in
``sar-ship`` and ``msar``); ``inst`` ``(H, W)`` uint8 = 0 for background and ``i`` for the instance of box row
``i - 1``, painted in annotation order (where two instances overlap the later one wins); uint16 past 255 instances.
``inst`` is present when masks are wanted and at least one instance of the image carries one; an instance without a
mask (a box-only annotation) has no pixels in it. The adapters put ``len(boxes)`` in the ``n_boxes`` column.

Masks: polygons are filled with Pillow's ``ImageDraw.polygon`` (outline included; along edges it may differ from
pycocotools by a pixel); uncompressed RLE (``counts`` a list of run lengths, column-major, background first) is
decoded here; compressed RLE (``counts`` a string) needs pycocotools and is decoded with it only where it is
installed, otherwise the image is rejected (``unsupported_mask``) rather than stored with an empty instance.

Hostile input, each a ``RejectFile`` naming the annotation: a non-numeric or non-finite coordinate, a box with
zero or negative width or height, a box entirely outside the image, a polygon with fewer than 3 vertices or a vertex
more than one image size beyond an edge, an RLE whose size is not the image's or whose runs do not cover it exactly
(``bad_annotation``); more than :data:`MAX_INSTANCES` instances or :data:`MAX_VERTICES` polygon vertices in one
image (``too_large``). A box that reaches beyond the image is clipped to it and counted in ``meta.boxes_clipped``
(``clip=False`` rejects it instead). The box array and the instance map are budget-checked (:func:`check_budget`)
before they are allocated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sardata.errors import RejectFile
from sardata.sources._base import check_budget

#: instances (boxes) one image may hold: what an ``inst`` map can number (uint16)
MAX_INSTANCES = 65535
#: polygon vertices one image may hold (all instances together)
MAX_VERTICES = 1 << 20


@dataclass(frozen=True)
class Instance:
    """One annotated object: class id, box as annotated (x0, y0, x1, y1 in pixels), optional mask."""

    cls: int
    box: tuple[float, float, float, float]
    ref: str  # names the annotation in reasons: "annotations/train.json annotation 17", "Annotations/1.xml object 2"
    polygons: tuple[tuple[float, ...], ...] = ()  # flat x0, y0, x1, y1, ... lists
    rle: dict[str, Any] | None = None  # {"size": [h, w], "counts": [runs] | "compressed"}

    @property
    def has_mask(self) -> bool:
        return bool(self.polygons) or self.rle is not None


def number(value: Any, what: str) -> float:
    """A finite JSON/XML number (``bool`` and numeric strings refused), else ``bad_annotation``."""
    try:
        ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        ok = False
    if not ok:
        raise RejectFile("bad_annotation", f"{what}: {str(value)[:40]!r} is not a finite number")
    return float(value)


def clip_box(inst: Instance, width: int, height: int, clip: bool = True) -> tuple[list[float], bool]:
    """The box inside the ``width`` × ``height`` image and whether it had to be clipped.

    Raises:
        RejectFile: ``bad_annotation`` for a box with non-positive size, entirely outside the image, or reaching
            beyond it with ``clip=False``.
    """
    x0, y0, x1, y1 = (number(v, f"{inst.ref}: box") for v in inst.box)
    if x1 <= x0 or y1 <= y0:
        raise RejectFile("bad_annotation", f"{inst.ref}: box {[x0, y0, x1, y1]} has zero or negative width/height")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise RejectFile(
            "bad_annotation", f"{inst.ref}: box {[x0, y0, x1, y1]} lies outside the {width}x{height} image"
        )
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return [x0, y0, x1, y1], False
    if not clip:
        raise RejectFile("bad_annotation", f"{inst.ref}: box {[x0, y0, x1, y1]} reaches beyond the {width}x{height} "
                                           "image (clip_boxes=false)")  # fmt: skip
    return [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)], True


def polygon(values: Any, what: str) -> tuple[float, ...]:
    """A flat ``[x0, y0, x1, y1, ...]`` polygon of at least three finite vertices, else ``bad_annotation``."""
    if not isinstance(values, list | tuple) or len(values) < 6 or len(values) % 2:
        size = len(values) if isinstance(values, list | tuple) else type(values).__name__
        raise RejectFile("bad_annotation", f"{what}: a polygon needs an even number >= 6 of coordinates, got {size}")
    return tuple(number(v, what) for v in values)


def detection_fields(
    instances: Sequence[Instance], height: int, width: int, *, clip: bool = True, masks: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``boxes`` (and ``inst`` where a mask exists and ``masks``) for an image, plus its meta counts."""
    if len(instances) > MAX_INSTANCES:
        raise RejectFile("too_large", f"{len(instances)} instances in one image; at most {MAX_INSTANCES} are read")
    check_budget((len(instances), 5), 4, "boxes")
    rows, clipped = [], 0
    for inst in instances:
        box, was_clipped = clip_box(inst, width, height, clip)
        rows.append([float(inst.cls), *box])
        clipped += was_clipped
    arrays = {"boxes": np.array(rows, np.float32).reshape(-1, 5)}
    with_mask = sum(inst.has_mask for inst in instances)
    if masks and with_mask:
        arrays["inst"] = instance_map(instances, height, width)
    return arrays, {"n_boxes": len(rows), "boxes_clipped": clipped, "n_masks": with_mask if masks else 0}


def instance_map(instances: Sequence[Instance], height: int, width: int) -> np.ndarray:
    """``(height, width)`` map: 0 background, ``i`` where instance ``i - 1`` is (later instances on top)."""
    vertices = sum(len(p) // 2 for inst in instances for p in inst.polygons)
    if vertices > MAX_VERTICES:
        raise RejectFile("too_large", f"{vertices} polygon vertices in one image; at most {MAX_VERTICES} are read")
    dtype = np.dtype(np.uint8 if len(instances) <= 255 else np.uint16)
    check_budget((height, width), dtype.itemsize, "instance map")
    out = np.zeros((height, width), dtype)
    for value, inst in enumerate(instances, 1):
        for poly in inst.polygons:
            _paint_polygon(out, poly, value, inst.ref)
        if inst.rle is not None:
            out[rle_mask(inst.rle, height, width, inst.ref)] = value
    return out


def _paint_polygon(out: np.ndarray, flat: tuple[float, ...], value: int, ref: str) -> None:
    """Fill one polygon into ``out`` with ``value``, drawing only over the part of the image it covers."""
    from PIL import Image, ImageDraw

    height, width = out.shape
    xy = np.asarray(flat, np.float64).reshape(-1, 2)
    if (np.abs(xy[:, 0] - width / 2) > 1.5 * width).any() or (np.abs(xy[:, 1] - height / 2) > 1.5 * height).any():
        raise RejectFile("bad_annotation", f"{ref}: polygon vertex more than one image size beyond the "
                                           f"{width}x{height} image")  # fmt: skip
    x0, y0 = max(0, math.floor(xy[:, 0].min())), max(0, math.floor(xy[:, 1].min()))
    x1, y1 = min(width, math.ceil(xy[:, 0].max()) + 1), min(height, math.ceil(xy[:, 1].max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return  # wholly outside the image: no pixels
    canvas = Image.new("1", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(canvas).polygon([(x - x0, y - y0) for x, y in xy.tolist()], fill=1, outline=1)
    out[y0:y1, x0:x1][np.asarray(canvas, bool)] = value


def rle_mask(rle: dict[str, Any], height: int, width: int, ref: str) -> np.ndarray:
    """Decode a COCO RLE into a ``(height, width)`` bool mask (compressed RLE through pycocotools, if installed).

    Raises:
        RejectFile: ``bad_annotation`` (malformed, another size, runs not covering the image), ``unsupported_mask``
            (compressed RLE without pycocotools).
    """
    size, counts = rle.get("size"), rle.get("counts")
    if not isinstance(size, list) or len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) for s in size):
        raise RejectFile("bad_annotation", f"{ref}: RLE size {size!r} is not [height, width]")
    if tuple(size) != (height, width):
        raise RejectFile("bad_annotation", f"{ref}: RLE size {size[0]}x{size[1]} is not the image's {height}x{width}")
    check_budget((height, width), 1, f"{ref}: RLE mask")
    if isinstance(counts, str):
        return _compressed_rle(counts, height, width, ref)
    if not isinstance(counts, list) or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        raise RejectFile("bad_annotation", f"{ref}: RLE counts must be a list of non-negative integers")
    if sum(counts) != height * width:
        raise RejectFile(
            "bad_annotation", f"{ref}: RLE runs cover {sum(counts)} pixels, the image has {height * width}"
        )
    runs = np.repeat((np.arange(len(counts)) % 2).astype(bool), counts)
    return runs.reshape(width, height).T  # column-major, as COCO stores it


def _compressed_rle(counts: str, height: int, width: int, ref: str) -> np.ndarray:
    try:
        from pycocotools import mask as coco_mask  # optional: used only where already installed
    except ImportError:
        raise RejectFile(
            "unsupported_mask",
            f"{ref}: compressed RLE (counts is a string) needs pycocotools, which is not installed; install it or "
            "convert the masks to polygons or uncompressed RLE",
        ) from None
    try:
        mask = coco_mask.decode({"size": [height, width], "counts": counts.encode("ascii")})
    except Exception as exc:  # noqa: BLE001 - pycocotools raises assorted types for a damaged string
        raise RejectFile("bad_annotation", f"{ref}: compressed RLE does not decode: {exc}") from exc
    return np.asarray(mask, bool).reshape(height, width)


__all__ = ["MAX_INSTANCES", "MAX_VERTICES", "Instance", "clip_box", "detection_fields", "instance_map", "number",
           "polygon", "rle_mask"]  # fmt: skip
