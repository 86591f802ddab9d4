"""Datasets over a built shard directory: an ``IterableDataset`` with the loader guarantees, and map-style access.

:class:`ShardIterable` yields **whole per-rank batches** (``DataLoader(ds, batch_size=None, num_workers=n)``):
worker i serves steps i, i+n, … and the DataLoader's in-order round robin restores the step sequence exactly,
for any n. The global sequence depends on (manifest, seed, epoch, shuffle parameters, global batch) only, so
changing the world size at a fixed global batch changes nothing (``data-contract.md`` §5). No shared memory, no
locks, no inter-process coordination.

Epochs: call :meth:`ShardIterable.set_epoch` before iterating. Each ``iter()`` also advances the dataset's own
epoch counter afterwards, which makes ``persistent_workers=True`` work too (worker copies cannot see
``set_epoch`` calls made in the main process, but they count epochs the same way).

Resume: ``state = ds.state_dict(step)`` with the number of global steps the trainer completed this epoch; a new
process calls ``ds.load_state_dict(state)`` and continues at that step without reading skipped data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from sardata.errors import ConfigError, LoaderStateError, ShardIntegrityError
from sardata.manifest.io import read_card
from sardata.manifest.schema import SCHEMA_VERSION
from sardata.shards.codecs import FIELDS
from sardata.shards.reader import check_dtype, decode_field
from sardata.stream.order import Plan, epoch_permutation, mixed_sequence, quotas
from sardata.stream.verify import await_verified, check_mode, check_sample, open_verified_table, verify_ahead


@dataclass
class Row:
    key: str
    shard: str
    members: list[dict]
    label: int | None
    sha256: str | None = None  # sample_sha256: over *all* members, also those ``fields`` skips
    all_members: list[dict] | None = None


class ShardIndex:
    """The rows of one view of a dataset, in manifest order (shards as in ``shards.parquet``, samples by
    ``shard_pos``), plus where the shard bytes live (local directory, or a URL through a cache)."""

    def __init__(self, root: str | os.PathLike[str], split: str | None = "train", view: str | None = None,
                 base_url: str | None = None, cache: Any = None, where: str | None = None,
                 fields: Collection[str] | None = None, verify: str = "shard") -> None:  # fmt: skip
        """``fields``: the members to read (e.g. ``{"img.npy", "cls"}`` for online GR); None reads all. Skipping
        a member skips its bytes, which is most of the I/O when it is the GR maps. ``verify``: ``"shard"``
        (default), ``"sample"`` or ``"off"`` — how shard bytes are checked against the index
        (:mod:`sardata.stream.verify`); tables are always checked against the card."""
        from sardata.manifest.relocate import locate

        self.root, base_url, cache = locate(root, base_url, cache)  # URL roots, the card's base_url
        card = read_card(self.root)
        self.card, self.verify = card, check_mode(verify)
        shards = open_verified_table(self.root, "shards", card).to_pylist()
        cols = ["key", "shard", "shard_pos", "members", "label", "split", "sample_sha256"] + ([view] if view else [])
        table = open_verified_table(self.root, "samples", card)
        if view is not None and view not in table.column_names:
            views = sorted(c for c in table.column_names if c.startswith("split_"))
            raise ConfigError(f"{self.root}: no view {view!r}; this build has {views or 'no views'} "
                              "(add it with build-shards --shots/--seeds/--long-tail)")  # fmt: skip
        samples = table.to_pandas() if where else table.select(cols).to_pandas()
        if where:  # a pandas query over manifest columns, e.g. "mode == 'VS'" (a cross-mode transfer's side)
            try:
                from sardata.manifest.where import filter_frame

                samples = filter_frame(samples, where)[cols]  # sardata.manifest.where: runs no code
            except Exception as exc:  # pandas raises many types for a bad expression
                raise ConfigError(f"{self.root}: bad --where {where!r} ({exc})") from exc
        if split is not None:  # one split value, or a comma list ("train,pool,unlabelled": everything but test)
            samples = samples[samples["split"].isin(split.split(","))]
        if view is not None:
            samples = samples[samples[view] == "train"]
        order = {s["shard"]: i for i, s in enumerate(shards)}
        samples = samples.assign(_o=samples["shard"].map(order)).sort_values(["_o", "shard_pos"])
        keep = None if fields is None else set(fields)
        self.rows = [
            Row(
                k,
                s,
                [x for x in m if keep is None or x["field"] in keep],
                None if pd.isna(label) else int(label),
                sha,
                list(m),
            )
            for k, s, m, label, sha in zip(
                samples["key"],
                samples["shard"],
                samples["members"],
                samples["label"],
                samples["sample_sha256"],
                strict=True,
            )
        ]
        if keep is not None and self.rows:
            present = {x["field"] for m in samples["members"] for x in m}
            if not keep & present:
                raise ConfigError(
                    f"{self.root}: none of fields {sorted(keep)} is in this dataset; it has {sorted(present)}"
                )
        counts = samples.groupby("shard", sort=False).size()
        self.shard_names = [s["shard"] for s in shards if s["shard"] in counts.index]
        self.shard_sizes = [int(counts[s]) for s in self.shard_names]
        self.shard_info = {s["shard"]: s for s in shards}
        self.base_url, self.cache = base_url, cache
        tables = card.get("tables", {})
        self.manifest_hash = (
            f"{tables.get('samples', {}).get('sha256', '')}:{tables.get('shards', {}).get('sha256', '')}"
        )
        self.selection = {"split": split, "view": view} | ({"where": where} if where else {})
        self._handles: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}  # shard -> Future of its background verification (verify_ahead)
        self._pid = os.getpid()  # handles and pending checks belong to the process that made them

    def __len__(self) -> int:
        return len(self.rows)

    def shard_path(self, shard: str) -> Path:
        info = self.shard_info[shard]
        if self.base_url is None and self.cache is None:
            from sardata.safepath import resolve_inside

            return resolve_inside(self.root, info["path"], "shard path", "shards.parquet")  # never outside the root
        from sardata.stream.remote import ShardCache, local_file, resolve

        url = resolve(self.base_url or str(self.root), info["path"])
        if self.cache is None:
            local = local_file(url)
            if local is not None:
                return local  # a relocated local dataset is read in place
            self.cache = ShardCache()
        return self.cache.local_path(url, info["sha256"], info["bytes"])

    def _own(self) -> None:
        if self._pid != os.getpid():  # a forked DataLoader worker: never share the parent's files or futures
            self._handles, self._pending, self._pid = {}, {}, os.getpid()

    def _rows_of(self, shard: str) -> Callable[[], list[dict[str, Any]]]:
        return lambda: [self._row_dict(r) for r in self.rows if r.shard == shard]  # on a mismatch only

    def prefetch(self, shard: str) -> None:
        """Start hashing ``shard`` in the background (``verify="shard"``, local shards), so that its check overlaps
        the delivery of the shards before it. Nothing is read from it until :meth:`_file` has the result."""
        self._own()
        if self.verify != "shard" or self.base_url is not None or self.cache is not None:
            return  # remote shards: the cache fetches (and hashes) them when first opened, as before
        if shard in self._pending or shard in self._handles:
            return
        path = self.shard_path(shard)
        self._pending[shard] = verify_ahead(path, self.shard_info[shard], self._rows_of(shard))

    def _file(self, shard: str) -> Any:
        """The open handle of ``shard`` (at most 8 kept, oldest closed first: reads are shard-local)."""
        self._own()
        fh = self._handles.get(shard)
        if fh is None:
            for old in list(self._handles)[: max(0, len(self._handles) - 7)]:
                self._handles.pop(old).close()
            path = self.shard_path(shard)
            pending = self._pending.pop(shard, None)
            if self.verify == "shard":  # before the first byte of this shard is used (once per file identity)
                await_verified(pending, path, self.shard_info[shard], self._rows_of(shard))
            fh = self._handles[shard] = open(path, "rb")  # noqa: SIM115
        return fh

    @staticmethod
    def _row_dict(row: Row) -> dict[str, Any]:
        return {"key": row.key, "members": row.all_members, "sample_sha256": row.sha256, "label": row.label}

    def read(self, i: int, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Decode sample ``i`` (all fields but ``skip``) with one seek per field in its shard."""
        row = self.rows[i]
        fh = self._file(row.shard)
        sample: dict[str, Any] = {"__key__": row.key, "__shard__": row.shard}
        checked = check_sample(fh, row.shard, self._row_dict(row)) if self.verify == "sample" else None
        for m in row.members:
            if m["field"] in skip:
                continue
            if checked is not None:  # the bytes just hashed, decoded from a writable copy
                where = f"{row.shard}:{row.key}"
                sample[m["field"]] = decode_field(m["field"], bytearray(checked[m["field"]]), where)
                continue
            fh.seek(m["offset"])
            buf = bytearray(m["size"])  # readinto + a zero-copy, writable view: one copy from the page cache
            if fh.readinto(buf) != m["size"]:
                raise ShardIntegrityError(f"{row.shard}:{row.key}: {m['field']} is truncated; re-fetch or rebuild")
            sample[m["field"]] = decode_field(m["field"], buf, f"{row.shard}:{row.key}")
        return sample

    def close(self) -> None:
        """Close the shard files kept open for sequential reads; drop background checks not yet waited on (a
        running one finishes and only leaves its marker; its result, or error, is never used)."""
        if getattr(self, "_pid", None) == os.getpid():  # also after a failed __init__ (called from __del__)
            while self._pending:
                self._pending.popitem()[1].cancel()
        while getattr(self, "_handles", None):
            self._handles.popitem()[1].close()

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}, "_pending": {}}  # handles and futures stay in their process


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
    from sardata.shards.codecs import plain_npy_layout

    out = header = None
    for i, (index, row) in enumerate(rows):
        m = next(m for m in row.members if m["field"] == field)
        fh = index._file(row.shard)
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


class ShardIterable(IterableDataset):
    """Streams per-rank batches of one view with exact length, equal batches per rank and arithmetic resume.

    ``root`` may be a list of datasets, mixed with ``weights`` (default: proportional to size) over an epoch of
    ``epoch_size`` samples (default: their total): integer quotas by largest remainder, each source following its
    own permutation stream across epochs, interleaved evenly (``data-contract.md`` §5.9).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | list[str | os.PathLike[str]],
        global_batch: int,
        *,
        split: str | None = "train",
        view: str | None = None,
        seed: int = 0,
        epoch: int = 0,
        world_size: int | None = None,
        rank: int | None = None,
        num_workers: int = 0,
        pad: str = "wrap",
        shuffle: bool = True,
        block_shards: int = 4,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        collate_fn: Callable[[list[dict[str, Any]]], Any] = collate,
        base_url: str | None = None,
        cache: Any = None,
        weights: list[float] | None = None,
        epoch_size: int | None = None,
        fields: Collection[str] | None = None,
        verify: str = "shard",
    ) -> None:
        if world_size is None or rank is None:
            dist = torch.distributed.is_available() and torch.distributed.is_initialized()
            world_size = torch.distributed.get_world_size() if dist else 1
            rank = torch.distributed.get_rank() if dist else 0
        roots = list(root) if isinstance(root, (list, tuple)) else [root]
        self.indexes = [ShardIndex(r, split, view, base_url, cache, fields=fields, verify=verify) for r in roots]
        self.index = self.indexes[0]
        self.mixed = len(roots) > 1 or weights is not None
        sizes = [len(i) for i in self.indexes]
        self.weights = list(weights) if weights is not None else [float(n) for n in sizes]
        if len(self.weights) != len(roots):
            raise ConfigError(f"{len(self.weights)} weights for {len(roots)} datasets")
        if any(n == 0 and w > 0 for n, w in zip(sizes, self.weights, strict=True)):
            raise ConfigError("a mixed dataset with positive weight has no samples in this view")
        total = (epoch_size or sum(sizes)) if self.mixed else sizes[0]
        self.quota = quotas(self.weights, total) if self.mixed else [total]
        self.plan = Plan(total, global_batch, world_size, num_workers, pad)
        self.rank, self.seed, self.epoch = rank, seed, epoch
        self.shuffle, self.block_shards = shuffle, block_shards
        self.transform, self.collate_fn = transform, collate_fn
        self.start_step = 0
        self._in_progress: int | None = None  # the epoch an in-process iter() is delivering (num_workers=0)
        self._resume: tuple[int, int] | None = None  # (epoch, step) of a loaded state, kept by set_epoch(epoch)

    def __len__(self) -> int:
        return self.plan.steps

    def set_epoch(self, epoch: int) -> None:
        """Deliver ``epoch`` next, from its first step, unless a state loaded with :meth:`load_state_dict` was
        saved in this epoch: then from the saved step (once). So the obvious loop resumes right."""
        resume = self._resume if self._resume is not None and self._resume[0] == epoch else None
        self.epoch, self.start_step, self._in_progress = epoch, resume[1] if resume else 0, None
        self._resume = None  # a loaded state resumes once, in the epoch it was saved in

    def permutation(self, epoch: int | None = None, source: int = 0) -> np.ndarray:
        stream = source if self.mixed else None
        return epoch_permutation(self.indexes[source].shard_sizes, self.seed, self.epoch if epoch is None else epoch,
                                 self.block_shards, self.shuffle, stream)  # fmt: skip

    def resolver(self, epoch: int) -> Callable[[int], tuple[ShardIndex, int]]:
        """Map a position of epoch ``epoch``'s global sequence to (dataset index, row)."""
        if not self.mixed:
            perm = self.permutation(epoch)
            return lambda i: (self.index, int(perm[i]))
        seq = mixed_sequence(self.quota, epoch)
        perms: dict[tuple[int, int], np.ndarray] = {}

        def resolve(i: int) -> tuple[ShardIndex, int]:
            source, pos = seq[i]
            n = len(self.indexes[source])
            key = (source, pos // n)  # the source's own epoch: it restarts when exhausted
            if key not in perms:
                perms[key] = self.permutation(key[1], source)
            return self.indexes[source], int(perms[key][pos % n])

        return resolve

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, n = (0, 1) if info is None else (info.id, info.num_workers)
        if info is not None and n != max(1, self.plan.num_workers):
            raise ConfigError(
                f"DataLoader has {n} workers but the dataset was built for num_workers={self.plan.num_workers}; "
                "pass the same number to both"
            )
        epoch, start = self.epoch, self.start_step
        locate = self.resolver(epoch)
        self.epoch, self.start_step = epoch + 1, 0  # the next iter() is the next epoch (persistent workers)
        if info is None:  # iterating in this process: state_dict() during the loop must name *this* epoch
            self._in_progress = epoch
        ahead = self._first_uses(worker, start, locate)  # this worker's shards, in the order it will open them
        started: set[tuple[int, str]] = set()
        queued = 0
        depth = max(2, self.block_shards)  # a shuffled block opens block_shards shards at once
        try:
            shared = info is not None  # a worker's batches go to the main process: build them in shared memory
            for step in self.plan.worker_steps(worker, start):
                slots = self.plan.slots(step, self.rank)
                picks = [locate(slot.index) for slot in slots]
                started.update((id(index), index.rows[row].shard) for index, row in picks)
                while queued < len(started) + depth:  # hash the next shards while this step's are delivered
                    nxt = next(ahead, None)
                    if nxt is None:
                        break
                    nxt[0].prefetch(nxt[1])
                    queued += 1
                extras = [{"valid": s.valid, "__index__": s.position, "__epoch__": epoch} for s in slots]
                if self.transform is None and self.collate_fn is collate:  # arrays straight into batch tensors
                    yield read_stacked(picks, extras, shared)
                    continue
                samples = []
                for extra, (index, row) in zip(extras, picks, strict=True):
                    sample = index.read(row) | extra
                    samples.append(self.transform(sample) if self.transform else sample)
                yield collate(samples, shared=shared) if self.collate_fn is collate else self.collate_fn(samples)
        finally:
            for index in self.indexes:
                index.close()

    def _first_uses(self, worker: int, start: int, locate: Callable[[int], tuple[ShardIndex, int]]
                    ) -> Iterator[tuple[ShardIndex, str]]:  # fmt: skip
        """(index, shard) of every shard this worker reads, once, in the order of its first sample."""
        seen: set[tuple[int, str]] = set()
        for step in self.plan.worker_steps(worker, start):
            for slot in self.plan.slots(step, self.rank):
                index, row = locate(slot.index)
                key = (id(index), index.rows[row].shard)
                if key not in seen:
                    seen.add(key)
                    yield index, key[1]

    # ------------------------------------------------------------------ resume
    def state_dict(self, step: int) -> dict[str, Any]:
        """Loader state after ``step`` completed global steps of the current epoch: the epoch being delivered
        when called inside the loop (also with ``num_workers=0``, where iterating advances ``self.epoch``), else
        the epoch ``set_epoch`` chose."""
        epoch = self._in_progress if self._in_progress is not None else self.epoch
        return {
            "manifest_hash": "|".join(i.manifest_hash for i in self.indexes), "selection": self.index.selection,
            "weights": self.weights if self.mixed else None, "epoch_size": self.plan.n_samples, "seed": self.seed,
            "epoch": epoch, "step": int(step), "global_batch": self.plan.global_batch, "pad": self.plan.pad,
            "shuffle": self.shuffle, "block_shards": self.block_shards, "schema_version": SCHEMA_VERSION,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at ``state['step']`` of ``state['epoch']``; refuse a state from another dataset or setup."""
        mine = self.state_dict(0)
        bad = [k for k in mine if k not in ("epoch", "step") and state.get(k) != mine[k]]
        if bad:
            detail = ", ".join(f"{k}: saved {state.get(k)!r} != now {mine[k]!r}" for k in bad)
            raise LoaderStateError(f"loader state does not fit this dataset/configuration ({detail})")
        if not 0 <= int(state["step"]) <= self.plan.steps:
            raise LoaderStateError(f"step {state['step']} outside the epoch's {self.plan.steps} steps")
        self.epoch, self.start_step, self._in_progress = int(state["epoch"]), int(state["step"]), None
        self._resume = (self.epoch, self.start_step)


class ShardDataset(Dataset):
    """Map-style view: ``ds[i]`` reads sample i (manifest order) with one seek per field; ``len(ds)`` is N."""

    def __init__(self, root: str | os.PathLike[str], split: str | None = "train", view: str | None = None,
                 transform: Callable | None = None, base_url: str | None = None, cache: Any = None,
                 where: str | None = None, fields: Collection[str] | None = None,
                 verify: str = "shard") -> None:  # fmt: skip
        """``verify``: see :class:`ShardIndex`; ``"sample"`` suits random access to a few samples of big shards."""
        self.index = ShardIndex(root, split, view, base_url, cache, where, fields, verify)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        sample = self.index.read(i % len(self))
        return self.transform(sample) if self.transform else sample


def order_lines(root: str | os.PathLike[str], global_batch: int, world_size: int, num_workers: int, seed: int,
                epoch: int, split: str | None = "train", view: str | None = None, pad: str = "wrap",
                shuffle: bool = True, block_shards: int = 4) -> Iterator[str]:  # fmt: skip
    """Audit lines ``global_index<TAB>rank<TAB>worker<TAB>key[<TAB>pad]`` in consumption order, no decoding."""
    index = ShardIndex(root, split, view)
    plan = Plan(len(index), global_batch, world_size, num_workers, pad)
    perm = epoch_permutation(index.shard_sizes, seed, epoch, block_shards, shuffle)
    n = max(1, num_workers)
    for step in range(plan.steps):
        for rank in range(world_size):
            for slot in plan.slots(step, rank):
                key = index.rows[int(perm[slot.index])].key
                pad_mark = "" if slot.position < plan.n_samples else ("\tpad" if slot.valid else "\tpad-masked")
                yield f"{slot.position}\t{rank}\t{step % n}\t{key}{pad_mark}"


__all__ = ["ShardDataset", "ShardIndex", "ShardIterable", "collate", "order_lines", "read_stacked"]
