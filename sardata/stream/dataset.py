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

DataLoader: the dataset batches, so the loader must not. ``DataLoader(ds, batch_size=32)`` (the webdataset / MDS /
LitData habit, and torch's default ``batch_size=1``) would collate 32 whole batches into one: it is refused with a
one-line ``ConfigError`` when the first batch is requested, before any data is read, and so is a loader with
another number of workers than the dataset's ``num_workers``. torch gives a dataset no hook when a plain
``DataLoader`` is constructed; :class:`sardata.stream.loader.ShardLoader` (a ``DataLoader``) makes both checks at
construction. Iterated in this process (``num_workers=0``, or ``for batch in ds``) the dataset serves every step,
whatever its ``num_workers``.

Keys: ``keys="fields"`` (default) delivers the stored member names (``img.npy``, ``cls``...), ``keys="torchgeo"``
torchgeo's (``image``, ``label``, ``crs``, ``bounds``...), with or without a transform (:mod:`sardata.stream.keys`).

The parts the datasets stand on live beside this module and are importable from here as before: the index and read
path (:mod:`sardata.stream.index`), batching (:mod:`sardata.stream.batch`) and the order (:mod:`sardata.stream.order`).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Collection, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from sardata.errors import ConfigError, LoaderStateError
from sardata.manifest.schema import SCHEMA_VERSION
from sardata.stream.batch import batch_tensor, collate, one_storage, read_stacked
from sardata.stream.index import Row, ShardIndex
from sardata.stream.keys import check_keys, rename
from sardata.stream.order import Plan, epoch_permutation, mixed_sequence, quotas


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
        keys: str = "fields",
    ) -> None:
        warn_legacy_names(transform, check_keys(keys))
        if world_size is None or rank is None:
            dist = torch.distributed.is_available() and torch.distributed.is_initialized()
            world_size = torch.distributed.get_world_size() if dist else 1
            rank = torch.distributed.get_rank() if dist else 0
        roots = list(root) if isinstance(root, (list, tuple)) else [root]
        self.indexes = [ShardIndex(r, split, view, base_url, cache, fields=fields, verify=verify, keys=keys)
                        for r in roots]  # fmt: skip
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
        self.transform, self.collate_fn, self.keys = transform, collate_fn, keys
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
        self._check_loader(info)
        worker = 0 if info is None else info.id
        epoch, start = self.epoch, self.start_step
        locate = self.resolver(epoch)
        self.epoch, self.start_step = epoch + 1, 0  # the next iter() is the next epoch (persistent workers)
        if info is None:  # iterating in this process: state_dict() during the loop must name *this* epoch
            self._in_progress = epoch
        steps = list(self.plan.worker_steps(worker, start) if info else range(start, self.plan.steps))  # here: all
        ahead = self._first_uses(steps, locate)  # this worker's shards, in the order it will open them
        started: set[tuple[int, str]] = set()
        queued = 0
        depth = max(2, self.block_shards)  # a shuffled block opens block_shards shards at once
        try:
            shared = info is not None  # a worker's batches go to the main process: build them in shared memory
            for step in steps:
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
                    yield rename(read_stacked(picks, extras, shared), self.keys)
                    continue
                samples = []
                for extra, (index, row) in zip(extras, picks, strict=True):
                    sample = index.read(row) | extra
                    samples.append(rename(self.transform(sample) if self.transform else sample, self.keys))
                yield collate(samples, shared=shared) if self.collate_fn is collate else self.collate_fn(samples)
        finally:
            for index in self.indexes:
                index.close()

    def _check_loader(self, info: Any) -> None:
        """Refuse, before the first batch is read, a DataLoader that batches the batches or has another number of
        workers than this dataset was planned for (:class:`~sardata.stream.loader.ShardLoader` checks both when
        it is built)."""
        batching = loader_batch_size(self)
        if batching is not None:
            k, world = batching or "k", self.plan.world_size
            raise ConfigError(
                f"DataLoader(ds, batch_size={k}) would collate whole batches: ShardIterable yields per-rank batches "
                f"of {self.plan.per_rank_batch} samples itself; use DataLoader(ds, batch_size=None) or ShardLoader(ds)"
                f" (for batches of {k}: ShardIterable(root, global_batch={k if world == 1 else f'{k} x {world}'}))"
            )
        if info is not None and info.num_workers != max(1, self.plan.num_workers):
            raise ConfigError(
                f"DataLoader has {info.num_workers} workers but the dataset was built for num_workers="
                f"{self.plan.num_workers}; pass the same number to both (ShardLoader(ds) takes the dataset's)"
            )

    def _first_uses(self, steps: list[int], locate: Callable[[int], tuple[ShardIndex, int]]
                    ) -> Iterator[tuple[ShardIndex, str]]:  # fmt: skip
        """(index, shard) of every shard these steps read, once, in the order of its first sample."""
        seen: set[tuple[int, str]] = set()
        for step in steps:
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
                 verify: str = "shard", keys: str = "fields") -> None:  # fmt: skip
        """``verify``: see :class:`ShardIndex`; ``"sample"`` suits random access to a few samples of big shards.
        ``keys``: ``"fields"`` or ``"torchgeo"`` (:mod:`sardata.stream.keys`)."""
        warn_legacy_names(transform, check_keys(keys))
        self.index = ShardIndex(root, split, view, base_url, cache, where, fields, verify, keys)
        self.transform, self.keys = transform, keys

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        sample = self.index.read(i % len(self))
        return rename(self.transform(sample) if self.transform else sample, self.keys)


def warn_legacy_names(transform: Any, keys: str) -> None:
    """A transform that renames members itself (:class:`~sardata.stream.transforms.JointAugment`: ``img.npy`` ->
    ``image``) under ``keys="fields"`` gives keys that change with the transform: deprecated."""
    if keys == "fields" and getattr(transform, "renames_fields", False):
        warnings.warn(
            f"{type(transform).__name__} renames img.npy/gr.npy to image/gr, so the sample keys change with the "
            "transform; pass keys='torchgeo' (image, gr, label... with or without a transform) or "
            f"{type(transform).__name__}(keep_names=True) (img.npy, gr.npy); the rename under keys='fields' will go",
            DeprecationWarning,
            stacklevel=3,
        )


def loader_batch_size(ds: Any) -> int | None:
    """How many items a torch DataLoader collates into one batch from ``ds``'s iterator: ``None`` when it does not
    batch (``batch_size=None``) or the caller is not a DataLoader; ``0`` when it batches by an unknown size.

    torch gives a dataset no hook when a DataLoader is built, so this reads the fetcher that asks this iterator
    for its first item (``auto_collation`` and the length of ``possibly_batched_index``, in the main process and in
    workers alike). A caller it does not recognise (``for b in ds``, a future torch) is not checked.
    """
    frame = sys._getframe(1)
    for _ in range(4):  # this function <- the generator's first step <- the fetcher's fetch()
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if owner is not ds and getattr(owner, "dataset", None) is ds and hasattr(owner, "auto_collation"):
            if not owner.auto_collation:
                return None
            index = frame.f_locals.get("possibly_batched_index")
            return len(index) if isinstance(index, list | tuple) else 0
        frame = frame.f_back
    return None


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


__all__ = [
    "Row",
    "ShardDataset",
    "ShardIndex",
    "ShardIterable",
    "batch_tensor",
    "collate",
    "loader_batch_size",
    "one_storage",
    "order_lines",
    "read_stacked",
    "warn_legacy_names",
]
