"""Execution engines for per-unit work (ingest's files, build-shards' shards, any caller's items).

``local`` (default) is a process pool on this machine (:mod:`sardata.engines.local`). ``ray`` runs the very same
initialiser and per-item function as Ray Data actor tasks, on a local Ray instance or the cluster named by
``RAY_ADDRESS`` (:mod:`sardata.engines.ray`). Engines know no caller: each passes its own functions. Output never
depends on the engine: ingest and build-shards write units/shards under deterministic names, and merge the index
on the driver in plan order. Ray is an optional extra (``pip install 'sardata[ray]'``), imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sardata.engines import local, ray
from sardata.engines.ray import import_ray
from sardata.errors import ConfigError

ENGINES = ("local", "ray")


def check_engine(engine: str) -> None:
    """Refuse an unknown engine, and a Ray engine without Ray installed, before any work starts."""
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}; choose from {ENGINES}")
    if engine == "ray":
        import_ray()


def map_units(
    init: Callable[..., None] | None,
    init_args: tuple,
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    engine: str = "local",
    chunksize: int = 1,
) -> Iterator[Any]:
    """Yield ``fn(item)`` for every item on ``engine``, in any order (see :func:`sardata.engines.local.map_units`).

    ``chunksize`` (items per task) applies to the local pool; Ray Data forms its own blocks. With ``ray``, ``fn``
    must return JSON-safe values.
    """
    check_engine(engine)
    if engine == "ray":
        return ray.map_units(init, init_args, fn, items, workers, progress)
    return local.map_units(init, init_args, fn, items, workers, progress, chunksize=chunksize)


__all__ = ["ENGINES", "check_engine", "import_ray", "map_units"]
