"""Samples into batches: collation, batch tensors in shared memory, and ``.npy`` fields read straight into them.

Why apart from the index and the datasets: how a batch is laid out in memory (one storage for the small tensors,
shared memory in workers, no per-sample copies) is a performance concern of its own, measured by
``sardata bench stream``; it must give exactly what :meth:`ShardIndex.read` + :func:`collate` give.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from sardata.errors import ShardIntegrityError
from sardata.shards.codecs import FIELDS, plain_npy_layout
from sardata.shards.reader import check_dtype
from sardata.stream.index import Row, ShardIndex


def collate(samples: list[dict[str, Any]], stacked: dict[str, torch.Tensor] | None = None,
            shared: bool = False) -> dict[str, Any]:  # fmt: skip
    """Stack arrays of equal shape into tensors; keep everything else (keys, JSON, ragged arrays) as lists.

    ``stacked``: fields already read straight into batch tensors (:func:`read_stacked`), taken as they are.
    ``shared`` (in a DataLoader worker): stacks are written into shared memory directly, and the small tensors
    (labels, ``valid``, ``__index__``...) are views of **one** storage — every storage a worker hands over costs a
    file-descriptor round trip, measured at ~1 ms each here, more than the rest of a small batch."""
    out: dict[str, Any] = dict(stacked or {})
    small: dict[str, torch.Tensor] = {}
    names = list(dict.fromkeys(k for s in samples for k in s))  # union, first-seen order (mixed sources differ)
    for name in names:
        values = [s.get(name) for s in samples]
        if any(v is None for v in values):
            out[name] = values
        elif all(isinstance(v, np.ndarray) and v.dtype.names is None and v.shape == values[0].shape for v in values):
            out[name] = _stack(values, shared)
        elif isinstance(values[0], (bool, int, np.integer)) and not isinstance(values[0], str):
            out[name] = small[name] = torch.tensor(values)
        else:
            out[name] = values
    if shared and len(small) > 1:
        out.update(one_storage(small))
    return out


def _stack(values: list[np.ndarray], shared: bool) -> torch.Tensor:
    """Stack equal-shape arrays; one dtype goes straight into the batch tensor, mixed dtypes (sources built with
    different codecs) are promoted by numpy first, as ``np.stack`` always did."""
    dtype = values[0].dtype
    if dtype.isnative and all(v.dtype == dtype for v in values):
        out = batch_tensor((len(values), *values[0].shape), dtype, shared)
        np.stack(values, out=out.numpy())
        return out
    stacked = np.stack(values)
    return torch.from_numpy(stacked if stacked.dtype.isnative else stacked.astype(stacked.dtype.newbyteorder("=")))


def one_storage(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies of small tensors as views of a single shared-memory storage (64-byte aligned sections)."""
    sizes = {k: -(-t.nbytes // 64) * 64 for k, t in tensors.items()}
    buf = batch_tensor((sum(sizes.values()),), np.dtype(np.uint8), shared=True)
    out, at = {}, 0
    for k, t in tensors.items():
        view = buf[at : at + t.nbytes].view(t.dtype).view(t.shape)
        out[k] = view.copy_(t)
        at += sizes[k]
    return out


def batch_tensor(shape: tuple[int, ...], dtype: np.dtype, shared: bool) -> torch.Tensor:
    """An uninitialised batch tensor; in a DataLoader worker it is allocated in shared memory, so handing it to
    the main process costs no copy (what ``default_collate`` does for its own stacks)."""
    tdtype = torch.from_numpy(np.empty(0, dtype)).dtype
    if not shared:
        return torch.empty(shape, dtype=tdtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    new_shared = getattr(torch.UntypedStorage, "_new_shared", None)
    if new_shared is None:  # a torch without the helper: allocate, then move (one extra copy)
        return torch.empty(shape, dtype=tdtype).share_memory_()
    return torch.empty(0, dtype=tdtype).set_(new_shared(nbytes)).view(shape)


def read_stacked(picks: list[tuple[ShardIndex, int]], extras: list[dict[str, Any]] | None = None,
                 shared: bool = False) -> dict[str, Any]:  # fmt: skip
    """Read a batch with every ``.npy`` field whose header (dtype, shape) is the same for all samples read
    **straight into one batch tensor** — no per-sample buffer, no stack copy — and the rest as :meth:`ShardIndex.read`
    + :func:`collate` would. ``extras``: per-sample values added before collation (``valid``, ``__index__``...).
    The result equals ``collate([index.read(row) | extra ...])``."""
    if not picks:
        return collate([])
    rows = [(index, index.rows[r]) for index, r in picks]
    first = {m["field"]: m for m in rows[0][1].members}
    direct = all(index.verify != "sample" for index, _ in rows)  # "sample" hashes each sample's bytes as it reads
    fields = [f for f, m in first.items() if direct and getattr(FIELDS.get(f.split(".")[0]), "encoding", None) == "npy"
              and all(any(n["field"] == f and n["size"] == m["size"] for n in row.members) for _, row in rows)]  # fmt: skip
    stacked: dict[str, torch.Tensor] = {}
    for field in fields:
        batch = _read_field_stacked(rows, field, shared)
        if batch is not None:
            stacked[field] = batch
    skip = frozenset(stacked)
    samples = [index.read(r, skip) for index, r in picks]
    for sample, extra in zip(samples, extras or [{}] * len(samples), strict=True):
        sample.update(extra)
    out = collate(samples, stacked, shared)
    order = ["__key__", "__shard__", *first, *(extras[0] if extras else {})]  # the per-sample path's key order
    return {k: out[k] for k in order if k in out} | out


def _read_field_stacked(rows: list[tuple[ShardIndex, Row]], field: str, shared: bool) -> torch.Tensor | None:
    """One ``.npy`` field of every row read into slot i of a batch tensor; None when headers differ (ragged)."""
    out = header = None
    for i, (index, row) in enumerate(rows):
        m = next(m for m in row.members if m["field"] == field)
        fh = index.shard_file(row.shard)
        fh.seek(m["offset"])
        where = f"{row.shard}:{row.key}"
        if header is None:
            head = fh.read(min(m["size"], 4096))  # .npy headers are far shorter (numpy pads them to 64 bytes)
            try:
                layout = plain_npy_layout(head, m["size"])
            except ValueError:
                layout = None  # damaged or refused: the per-sample path raises the error naming shard and key
            if layout is None:
                return None
            offset, shape, dtype = layout
            check_dtype(field, dtype, where)  # an edited header raises here, never yields another dtype
            if math.prod(shape) == 0 or dtype.names or not dtype.isnative:
                return None  # empty, structured (PDW) or foreign-endian arrays go through the per-sample path
            header = head[:offset]
            out = batch_tensor((len(rows), *shape), dtype, shared)
            view = out.numpy().reshape(len(rows), -1).view(np.uint8)
            fh.seek(m["offset"] + offset)
        elif fh.read(len(header)) != header:
            return None  # another dtype/shape: the per-sample path decodes (or rejects) it
        if fh.readinto(view[i]) != view.shape[1]:
            raise ShardIntegrityError(f"{where}: {field} is truncated; re-fetch or rebuild")
    return out


__all__ = ["batch_tensor", "collate", "one_storage", "read_stacked"]
