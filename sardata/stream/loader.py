"""A torch ``DataLoader`` for the shard datasets, checked when it is built.

Why apart from the datasets: :class:`~sardata.stream.dataset.ShardIterable` yields whole per-rank batches, so its
loader must not batch again (``batch_size=None``) and must run the number of workers the dataset was planned for.
A plain ``DataLoader`` gives the dataset no hook at construction, so the dataset can only refuse a wrong loader
when the first batch is requested; :class:`ShardLoader` refuses it on the line that builds it, with the fix.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader

from sardata.errors import ConfigError
from sardata.stream.batch import collate
from sardata.stream.dataset import ShardIterable


class ShardLoader(DataLoader):
    """``ShardLoader(ds)``: a ``DataLoader`` over a :class:`ShardIterable` with ``batch_size=None`` and the dataset's
    ``num_workers``; any other keyword goes to ``DataLoader`` (``pin_memory``, ``persistent_workers``...).

    ``batch_size`` may be given as the dataset's per-rank batch (``global_batch / world_size``), the habit of
    webdataset, MosaicML Streaming and LitData users; another value is a ``ConfigError`` here, naming the fix.
    ``num_workers`` may be the dataset's or 0 (everything read in this process); another value is a
    ``ConfigError`` here rather than inside a worker. ``len(loader)`` is the exact number of steps per epoch.

    A map-style :class:`~sardata.stream.dataset.ShardDataset` gets an ordinary ``DataLoader`` (``batch_size``
    default 1, ``shuffle`` allowed) collating with :func:`sardata.stream.batch.collate` (ragged arrays, metadata
    and missing values become lists instead of errors).
    """

    def __init__(self, dataset: Any, batch_size: int | None = None, num_workers: int | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        if not isinstance(dataset, ShardIterable):
            kwargs.setdefault("collate_fn", collate)
            super().__init__(dataset, batch_size=1 if batch_size is None else batch_size,
                             num_workers=num_workers or 0, **kwargs)  # fmt: skip
            return
        plan = dataset.plan
        if batch_size is not None and batch_size != plan.per_rank_batch:
            world = "" if plan.world_size == 1 else f" x {plan.world_size} ranks"
            raise ConfigError(
                f"ShardLoader(ds, batch_size={batch_size}): the dataset yields per-rank batches of "
                f"{plan.per_rank_batch} (global_batch={plan.global_batch}); leave batch_size out, or build "
                f"ShardIterable(root, global_batch={batch_size}{world})"
            )
        if num_workers is None:
            num_workers = plan.num_workers
        elif num_workers not in (0, plan.num_workers):
            raise ConfigError(
                f"ShardLoader(ds, num_workers={num_workers}): the dataset was built with num_workers="
                f"{plan.num_workers}; leave num_workers out, or build ShardIterable(..., num_workers={num_workers})"
            )
        super().__init__(dataset, batch_size=None, num_workers=num_workers, **kwargs)


__all__ = ["ShardLoader"]
