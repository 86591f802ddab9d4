"""sardata: SAR and radar data pipelines — ingest raw sources, build WebDataset shards, stream and train.

The names a user needs import from the top::

    from sardata import ingest, build_shards, ShardDataset, ShardIterable, ShardCache, create_model, list_models

Each is imported on first use (PEP 562 ``__getattr__``, by module name), so ``import sardata`` stays light (no
torch, no pyarrow) and this module imports no submodule: submodules may read ``sardata.__version__`` without a
circle.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

#: public name → the modules that may define it, tried in order (a module being split keeps the old path last)
_LAZY: dict[str, tuple[str, ...]] = {
    "ingest": ("sardata.ingest",),
    "build_shards": ("sardata.shards.build",),
    "BuildConfig": ("sardata.shards.config", "sardata.shards.build"),
    "ShardDataset": ("sardata.stream.dataset",),
    "ShardIterable": ("sardata.stream.dataset",),
    "ShardLoader": ("sardata.stream.loader",),
    "ShardCache": ("sardata.stream.cache", "sardata.stream.remote"),
    "create_model": ("sardata.models",),
    "list_models": ("sardata.models",),
}

__all__ = ["__version__", *_LAZY]


class _Package(types.ModuleType):
    """The package's module type: loading submodule ``sardata.ingest`` must not replace the function ``ingest``.

    The import system binds every loaded submodule on its package (``sardata.ingest = <module>``); left alone, that
    would make ``from sardata import ingest`` return the module or the function depending on what ran before. So
    ``sardata.ingest`` is always the function; the subpackage's names import as ``from sardata.ingest import …``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """Import a public name on first use and cache it on the package."""
    for module in _LAZY.get(name, ()):
        try:
            found = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise  # a dependency of the module is missing: say so, do not hide it
            continue
        if hasattr(found, name):
            globals()[name] = value = getattr(found, name)
            return value
    raise AttributeError(f"module 'sardata' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
