"""Execution engines for the per-unit work of ``ingest`` and ``build-shards``.

``local`` (default) is the process pool inside :mod:`sardata.ingest` / :mod:`sardata.shards.build`. ``ray`` runs
the very same per-file (``process_unit``) and per-shard (``_build_one``) functions as Ray Data tasks, on a local
Ray instance or the cluster named by ``RAY_ADDRESS`` (:mod:`sardata.engines.ray`). Output never depends on the
engine: workers write units/shards under deterministic names, and the index is merged on the driver in plan order.
Ray is an optional extra (``pip install 'sardata[ray]'``) and is only imported when asked for.
"""

from __future__ import annotations

from types import ModuleType

from sardata.errors import ConfigError, DependencyNotFoundError

ENGINES = ("local", "ray")


def check_engine(engine: str) -> None:
    """Refuse an unknown engine, and a Ray engine without Ray installed, before any work starts."""
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}; choose from {ENGINES}")
    if engine == "ray":
        import_ray()


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


__all__ = ["ENGINES", "check_engine", "import_ray"]
