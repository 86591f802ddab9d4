"""How the loaders name a decoded sample's keys: the shard member names, or torchgeo-style names.

Why apart from the datasets: one naming rule serves both loaders (:class:`~sardata.stream.dataset.ShardIterable`,
:class:`~sardata.stream.dataset.ShardDataset`) and every read path (per sample, or straight into batch tensors).

* ``keys="fields"`` (default): the members as stored and as stock WebDataset decodes them — ``img.npy``,
  ``gr.npy``, ``mask.npy``, ``meta.json``, ``cls``...
* ``keys="torchgeo"``: the names torchgeo and most model code use — ``image``, ``label``, ``mask``, ``gr``,
  ``meta`` (every other member loses its extension: ``cplx``, ``boxes``, ``iq``, ``pdw``, ``toa``) — plus, for
  georeferenced samples (a ``crs`` in the manifest), ``crs`` (a string such as ``"EPSG:32633"``) and ``bounds``
  (float64 ``[minx, maxx, miny, maxy]`` in that CRS: torchgeo's ``BoundingBox`` order, from the manifest's
  ``bbox`` column, which is rasterio's ``(left, bottom, right, top)``).

The name applies to what the loader *delivers*: a transform always receives the stored member names (so one
transform serves both namings) and the loader renames what the transform returns. ``__key__``, ``__shard__``,
``valid``, ``__index__`` and ``__epoch__`` are the same in both namings.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from sardata.errors import ConfigError

KEYS = ("fields", "torchgeo")
TORCHGEO = {"img.npy": "image", "cls": "label"}  # the rest: the member name without its extension
GEO_COLUMNS = ("crs", "bbox")


def check_keys(keys: str) -> str:
    if keys not in KEYS:
        raise ConfigError(f"keys={keys!r}; choose from {KEYS}")
    return keys


def torchgeo_name(field: str) -> str:
    """``img.npy`` -> ``image``, ``cls`` -> ``label``, ``gr.npy`` -> ``gr``, ``meta.json`` -> ``meta``."""
    if field in TORCHGEO:
        return TORCHGEO[field]
    stem, dot, ext = field.rpartition(".")
    return stem if dot and ext in ("npy", "json") else field


def rename(sample: dict[str, Any], keys: str) -> dict[str, Any]:
    """``sample`` (or a collated batch) with its member names in the ``keys`` naming; unchanged for ``"fields"``."""
    if keys == "fields":
        return sample
    return {torchgeo_name(k): v for k, v in sample.items()}


def member_names(fields: Collection[str] | None) -> set[str] | None:
    """``fields`` given in either naming (``{"image", "label"}`` or ``{"img.npy", "cls"}``) as member names."""
    if fields is None:
        return None
    from sardata.shards.codecs import FIELDS

    members = {f"{name}.{spec.encoding}" if spec.encoding in ("npy", "json") else name for name, spec in FIELDS.items()}
    back = {torchgeo_name(m): m for m in members}
    return {f if f in members else back.get(f, f) for f in fields}


def geo_entry(crs: Any, bbox: Any) -> dict[str, Any] | None:
    """The ``crs`` / ``bounds`` a georeferenced sample carries, from its manifest columns; None without a CRS (a
    bbox without a CRS is pixel coordinates, not a place)."""
    if not isinstance(crs, str) or not crs or bbox is None or len(bbox) != 4:
        return None
    left, bottom, right, top = (float(v) for v in bbox)
    return {"crs": crs, "bounds": np.array([left, right, bottom, top], dtype=np.float64)}


def crop_bounds(bounds: np.ndarray, h: int, w: int, top: int, left: int, ch: int, cw: int) -> np.ndarray:
    """The bounds of the ``ch`` x ``cw`` window at (``top``, ``left``) of an ``h`` x ``w`` north-up chip."""
    minx, maxx, miny, maxy = (float(v) for v in bounds)
    px, py = (maxx - minx) / w, (maxy - miny) / h
    return np.array([minx + left * px, minx + (left + cw) * px, maxy - (top + ch) * py, maxy - top * py], np.float64)


__all__ = ["GEO_COLUMNS", "KEYS", "TORCHGEO", "check_keys", "crop_bounds", "geo_entry", "member_names", "rename",
           "torchgeo_name"]  # fmt: skip
