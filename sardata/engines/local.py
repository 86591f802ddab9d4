"""The local engine: a process pool on this machine (``--engine local``, the default).

:func:`map_units` has the signature and meaning of :func:`sardata.engines.ray.map_units`, so a caller swaps engines
without changing its per-unit code. It knows no caller: each passes its own initialiser and per-item function
(module-level functions, so that ``spawn`` can import them).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from typing import Any


def map_units(
    init: Callable[..., None] | None,
    init_args: tuple,
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    chunksize: int = 1,
) -> Iterator[Any]:
    """Yield ``fn(item)`` for every item, after ``init(*init_args)`` has run once in each worker process.

    ``workers <= 1`` or a single item runs in this process, in item order (``init`` too: its globals are set
    here). Otherwise ``min(workers, len(items))`` processes take ``chunksize`` items at a time and results come in
    completion order, so callers that need an order sort them. ``progress(done, total)`` follows every result.
    A worker's exception is re-raised here; leaving the loop early (an exception, ``close()``) terminates the pool.
    """
    total = len(items)
    if workers <= 1 or total <= 1:
        if init is not None:
            init(*init_args)
        results: Iterator[Any] = map(fn, items)
        pool = None
    else:
        # fork where the OS has it: works from scripts without a __main__ guard, and the pool starts before the
        # caller has used pyarrow's thread pools. Elsewhere spawn.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ctx.Pool(min(workers, total), initializer=init, initargs=init_args)
        results = pool.imap_unordered(fn, items, chunksize=chunksize)
    try:
        for done, result in enumerate(results, 1):
            if progress:
                progress(done, total)
            yield result
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def small_unit_chunksize(total: int, workers: int) -> int:
    """A ``chunksize`` for many cheap items (files of a few KB): about 8 chunks per worker and at most 32 items
    each, so inter-process traffic stays small while the last chunks still balance the workers."""
    return max(1, min(32, total // (workers * 8) or 1))


__all__ = ["map_units", "small_unit_chunksize"]
