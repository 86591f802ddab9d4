"""Ray Data execution of ingest units and shard builds (``--engine ray``).

The pipeline is the local one with Ray as the pool: the driver lists the work (input files, or the shard plan
computed from the manifest alone), Ray Data maps it over a pool of actors — each actor runs the module's own
initialiser once (``sardata.ingest._init_worker`` / ``sardata.shards.build._init``) and then the same per-unit
function (``process_unit`` via ``_run_task``, ``_build_one``) — and the driver merges the results with the
engine-independent merge (``sardata.ingest.merge`` in file order, ``sardata.shards.build._merge`` in plan order).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sardata.engines import import_ray


def _fetch(shared: list[Any]) -> tuple:
    """The run's arguments, put in the object store once by the driver (``[ObjectRef]``: a nested reference is
    fetched here, so actors share one copy instead of each carrying the rows in its constructor)."""
    import ray

    return ray.get(shared[0])


class _IngestActor:
    """One Ray actor = one ingest worker process (the adapter is built once, as in the local pool)."""

    def __init__(self, shared: list[Any]) -> None:
        from sardata.ingest import _init_worker

        tasks, source_id, root, opts, out, fingerprint = _fetch(shared)
        _init_worker(source_id, root, opts, out, fingerprint)
        self.tasks = tasks

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from sardata.ingest import _run_task

        return {"i": row["i"], "result": json.dumps(_run_task(self.tasks[row["i"]]))}


class _BuildActor:
    """One Ray actor = one shard writer (rows, config and output directory loaded once)."""

    def __init__(self, shared: list[Any]) -> None:
        from sardata.shards.build import _init

        plans, df, cfg, out, cfg_sha = _fetch(shared)
        _init(df, cfg, out, cfg_sha)
        self.plans = plans

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from sardata.shards.build import _build_one

        return {"i": row["i"], "result": json.dumps(_build_one(self.plans[row["i"]]))}


def run_ingest(
    tasks: list[Any],
    source_id: str,
    root: Path,
    opts: Any,
    out: Path,
    fingerprint: str,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> Iterator[dict[str, Any]]:
    """Yield one ``sources`` row per task (any order), as ``sardata.ingest._run`` does."""
    args = (tasks, source_id, str(root), opts, str(out), fingerprint)
    yield from _map(_IngestActor, args, len(tasks), workers, progress)


def run_build(
    plans: list[Any],
    df: Any,
    cfg: Any,
    out: Path,
    cfg_sha: str,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> Iterator[dict[str, Any]]:
    """Yield one ``_build_one`` result per planned shard (any order), as ``sardata.shards.build._run`` does."""
    yield from _map(_BuildActor, (plans, df, cfg, str(out), cfg_sha), len(plans), workers, progress)


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


__all__ = ["run_build", "run_ingest"]
