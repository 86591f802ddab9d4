"""Ray Data execution of ingest units and shard builds (``--engine ray``).

The pipeline is the local one with Ray as the pool: the driver lists the work (input files, or the shard plan
computed from the manifest alone), Ray Data maps it over a pool of actors with :func:`map_units` — each actor
runs the caller's initialiser once and then the caller's per-unit function (ingest and build-shards pass their
own; this module imports neither) — and the driver merges the results with the engine-independent merge
(ingest in file order, build-shards in plan order).
Units and shards are written by the workers straight to their final, deterministic paths under ``out`` (temp +
fsync + rename), so the bytes are those of the local engine; results travel back as JSON (``_build_one`` writes
the same dict to its sidecar).

Cluster: an already initialised Ray (``ray.init`` by the caller) is used as is; otherwise ``ray.init()`` connects
to ``RAY_ADDRESS`` when set, or starts a local instance that is shut down again after the run. On a multi-node
cluster ``out`` (and the inputs) must be on storage mounted at the same path on every node (NFS, Lustre...).
``workers`` caps the actor pool; ``workers <= 1`` means one actor per CPU of the cluster (scale-out is the point).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from sardata.errors import DependencyNotFoundError


def import_ray() -> ModuleType:
    """``import ray`` (with Ray Data), or :class:`DependencyNotFoundError` naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray core without the data extra is not enough
    except ImportError as exc:
        raise DependencyNotFoundError(
            f"--engine ray needs Ray Data, which is not installed ({exc}); pip install 'sardata[ray]'"
        ) from exc
    return ray


def _fetch(shared: list[Any]) -> tuple:
    """The run's arguments, put in the object store once by the driver (``[ObjectRef]``: a nested reference is
    fetched here, so actors share one copy instead of each carrying the rows in its constructor)."""
    import ray

    return ray.get(shared[0])


class _UnitActor:
    """One Ray actor = one worker process of the caller's pool: the caller's initialiser runs once, then the
    caller's per-item function runs per row (this module knows no caller: ingest and build-shards pass theirs)."""

    def __init__(self, shared: list[Any]) -> None:
        init, init_args, fn, items = _fetch(shared)
        if init is not None:
            init(*init_args)
        self.fn, self.items = fn, items

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"i": row["i"], "result": json.dumps(self.fn(self.items[row["i"]]))}


def map_units(
    init: Callable[..., None] | None,
    init_args: tuple,
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Any]:
    """Yield ``fn(item)`` for every item (any order) on a Ray actor pool, each actor set up by
    ``init(*init_args)`` (``None``: nothing to set up), as :func:`sardata.engines.local.map_units` does; ``fn``
    must return JSON-safe values."""
    yield from _map(_UnitActor, (init, init_args, fn, items), len(items), workers, progress)


def _map(actor: type, args: tuple, n: int, workers: int, progress: Callable[[int, int], None] | None) -> Iterator[Any]:
    """Run ``actor([ref to args])(row)`` over rows ``{"i": 0..n-1}`` on an actor pool; yield decoded results."""
    if n == 0:
        return
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        with _quiet(ray):
            pool = workers if workers > 1 else int(ray.cluster_resources().get("CPU", 1))
            pool = max(1, min(pool, n))
            items = ray.data.from_items([{"i": i} for i in range(n)], override_num_blocks=min(n, pool * 4))
            shared = [ray.put(args)]
            with warnings.catch_warnings():
                # max_restarts=0: a failed actor fails the run (a rerun resumes from committed units/shards) and Ray
                # does not warn that restarted actors could lose their constructor arguments. Ray >= 2.51 flags the
                # keyword as deprecated "remote args" although its own docs name it as the way to disable restarts.
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
                mapped = items.map(actor, fn_constructor_args=(shared,), compute=ray.data.ActorPoolStrategy(size=pool),
                                   num_cpus=1, max_restarts=0)  # fmt: skip
            for done, row in enumerate(mapped.iter_rows(), 1):
                if progress:
                    progress(done, n)
                yield json.loads(row["result"])
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _quiet(ray: Any) -> Iterator[None]:
    """Library code never prints: no Ray Data progress bars, execution banners or INFO logs during the run
    (warnings and errors still reach the log); the caller's settings are restored afterwards."""
    ctx = ray.data.DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "print_on_execution_start", "enable_auto_log_stats")}
    logger = logging.getLogger("ray.data")
    level = logger.level
    for k in saved:
        setattr(ctx, k, False)
    logger.setLevel(logging.ERROR)  # also hides "progress bars disabled", which is what we asked for
    try:
        yield
    finally:
        logger.setLevel(level)
        for k, v in saved.items():
            setattr(ctx, k, v)


__all__ = ["import_ray", "map_units"]
