"""Chips from boxes: one fixed-size chip per annotated box of a built detection dataset, for ATR-style pretraining
and classification (issue 20, point 7).

:class:`ChipDataset` is a map-style dataset (``DataLoader(chips, batch_size=B, shuffle=True)``) over a built dataset
whose samples carry ``boxes.npy`` (``hrsid``, ``ssdd``, ``sar-ship``, ``msar``). Item ``j`` is box ``b`` of sample
``s``, in manifest order; the chips are enumerated from the manifest alone (the size of each sample's
``boxes.npy`` member gives its box count, so no array is read to build the index), and nothing is written: a chip
view costs no second copy of the data. A view on the loader side, next to :class:`~sardata.stream.radar.RadarView`,
rather than a ``build-shards`` option: shards stay one sample per scene, and the chip size is a training choice.

Item (:func:`chip_at`): ``img`` ``(C, size, size)`` of the stored dtype, the window of ``size`` × ``size`` pixels
whose centre is the box centre (window origin ``floor(centre - size / 2)``), zero-padded where it leaves the image;
``valid`` bool ``(size, size)`` (False on that padding); ``inst`` uint8 ``(size, size)``, 1 on this box's instance
mask (all 0 when the scene has no ``inst.npy``; ``has_mask`` tells); ``box`` float32 ``(4,)`` x0, y0, x1, y1 in chip
pixels, clipped to the chip; ``label`` the box's class id; ``truncated`` True when the box is larger than the chip
(the chip holds its centre part: no resize, so one pixel stays one pixel); ``parent_key``, ``box_index`` and
``__key__`` = ``<parent key>/b<box index>``. Every item has the same keys and shapes, so the default collate works.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from sardata.errors import ConfigError, ShardIntegrityError
from sardata.shards.codecs import npy_nbytes
from sardata.stream.index import Row, ShardIndex

FIELDS = frozenset({"img.npy", "boxes.npy", "inst.npy"})


def box_count(row: Row) -> int:
    """Boxes of a sample from the size of its ``boxes.npy`` member (float32 ``(N, 5)``; 0 without the member)."""
    member = next((m for m in row.all_members or row.members if m["field"] == "boxes.npy"), None)
    if member is None:
        return 0
    size = int(member["size"])
    for header in (128, 192, 256):  # .npy v1.0 headers are padded to 64 bytes; (N, 5) float32 takes 128
        n, rest = divmod(size - header, 20)
        if n >= 0 and not rest and npy_nbytes((n, 5), "float32") == size:
            return n
    raise ShardIntegrityError(f"{row.shard}:{row.key}: boxes.npy of {size} bytes is not a float32 (N, 5) array")


def crop_padded(arr: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """The ``size`` × ``size`` window at (``top``, ``left``) of the last two axes, zeros outside ``arr``."""
    height, width = arr.shape[-2:]
    out = np.zeros((*arr.shape[:-2], size, size), arr.dtype)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(height, top + size), min(width, left + size)
    if y1 > y0 and x1 > x0:
        out[..., y0 - top : y1 - top, x0 - left : x1 - left] = arr[..., y0:y1, x0:x1]
    return out


def chip_at(sample: dict[str, Any], index: int, size: int) -> dict[str, Any]:
    """Chip of box ``index`` of a loader sample (``img.npy``, ``boxes.npy``, optional ``inst.npy``)."""
    boxes, img = sample["boxes.npy"], sample["img.npy"]
    if not 0 <= index < len(boxes):
        raise ShardIntegrityError(f"{sample.get('__key__')}: box {index} of {len(boxes)} (manifest and shard differ)")
    cls, x0, y0, x1, y1 = (float(v) for v in boxes[index])
    top, left = math.floor((y0 + y1) / 2 - size / 2), math.floor((x0 + x1) / 2 - size / 2)
    valid = crop_padded(np.ones(img.shape[-2:], bool), top, left, size)
    inst = sample.get("inst.npy")
    mask = crop_padded(inst == index + 1, top, left, size) if inst is not None else np.zeros((size, size), bool)
    box = np.clip(np.array([x0 - left, y0 - top, x1 - left, y1 - top], np.float32), 0, size)
    key = sample.get("__key__", "")
    return {
        "img": crop_padded(img, top, left, size), "valid": valid, "inst": mask.astype(np.uint8),
        "has_mask": inst is not None, "box": box, "label": int(cls), "truncated": x1 - x0 > size or y1 - y0 > size,
        "parent_key": key, "box_index": index, "__key__": f"{key}/b{index}",
    }  # fmt: skip


class ChipDataset(Dataset):
    """One ``size`` × ``size`` chip per box of a built detection dataset (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], size: int, split: str | None = "train", *,
                 where: str | None = None, base_url: str | None = None, cache: Any = None, verify: str = "shard",
                 transform: Callable[[dict[str, Any]], Any] | None = None) -> None:  # fmt: skip
        """``split``/``where``/``base_url``/``cache``/``verify`` select and read scenes as in
        :class:`~sardata.stream.dataset.ShardDataset`; ``transform`` maps each chip dict."""
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ConfigError(f"chip size {size!r}: expected a positive number of pixels")
        self.size, self.transform = size, transform
        self.index = ShardIndex(root, split, None, base_url, cache, where, FIELDS, verify)
        if self.index.rows and not any(m["field"] == "boxes.npy" for r in self.index.rows for m in r.members):
            raise ConfigError(f"{self.index.root}: no sample has boxes.npy; chips need a detection dataset "
                              "(ingested from hrsid, ssdd, sar-ship or msar)")  # fmt: skip
        counts = np.array([box_count(r) for r in self.index.rows], np.int64)
        self.parents = np.repeat(np.arange(len(counts)), counts)
        self.box_index = np.arange(len(self.parents)) - np.repeat(np.cumsum(counts) - counts, counts)
        self._last: tuple[int, int, dict[str, Any]] | None = None  # (pid, parent, sample): a scene's chips read it once

    def __len__(self) -> int:
        return len(self.parents)

    def __getitem__(self, j: int) -> Any:
        if not -len(self) <= j < len(self):
            raise IndexError(j)
        j %= len(self)
        parent = int(self.parents[j])
        if self._last is None or self._last[:2] != (os.getpid(), parent):
            self._last = (os.getpid(), parent, self.index.read(parent))
        chip = chip_at(self._last[2], int(self.box_index[j]), self.size)
        return self.transform(chip) if self.transform else chip

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_last": None}


__all__ = ["ChipDataset", "box_count", "chip_at", "crop_padded"]
