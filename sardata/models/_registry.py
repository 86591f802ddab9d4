"""Model registry: ``register_model`` / ``create_model(name, **overrides)`` / ``list_models(pattern)``.

Modeled on timm's flat registry, but every model module is listed here and imported on first use, so a model
exists whether or not someone imported its module, and ``sardata --help`` imports no torch.

Contract every registered factory follows (the trainers rely on it, never on concrete classes):

* ``factory(**overrides) -> torch.nn.Module``; overrides are constructor keywords (``img_size``, ``embed_dim``...).
* The module has ``model.task`` in ``{"pretrain", "classify"}`` and ``model.modality`` in ``{"sar_image", "radar"}``.
* Pretraining models implement ``forward_loss(batch, generator) -> dict`` with at least ``"loss"`` (scalar tensor)
  and optional float-able diagnostics; ``batch`` is the collated loader batch moved to the device (SAR:
  ``image`` (N, 1, H, W) float in [0, 1] and, in precomputed mode, ``gr`` (N, 4, H, W); radar: ``x`` (N, 2, 512),
  ``tau`` (N, 64), ``valid`` (N, 512) bool). ``generator`` is a ``torch.Generator`` on the batch's device seeded by
  the trainer from (seed, global step, rank): models never touch the global RNG.
* Classifiers implement ``forward_features(batch_or_tensor) -> (N, D)`` pooled feature, ``forward_head``, and
  ``forward`` returning logits; ``num_features`` gives D and ``reset_classifier(num_classes, kind)`` installs the
  head (``kind``: ``"finetune"`` or ``"linear"`` — see the model family's docs for the head's definition).
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from typing import Any

from sardata.errors import ConfigError

#: every module that registers models; imported (all of them) on the first registry lookup
MODEL_MODULES: tuple[str, ...] = (
    "sardata.models.vit_irpe",
    "sardata.models.lomar_sar",
    "sardata.models.mae",
    "sardata.models.radarpos",
    "sardata.models.baselines_1d",
)

_REGISTRY: dict[str, Callable[..., Any]] = {}
_loaded = False


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: register ``fn`` under its function name."""
    if fn.__name__ in _REGISTRY and _REGISTRY[fn.__name__] is not fn:
        raise ValueError(f"model {fn.__name__!r} registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in MODEL_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a glob, sorted."""
    _load()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def describe_model(name: str) -> str:
    """The first line of a registered model's docstring (``sardata models list``)."""
    _load()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    doc = (_REGISTRY[name].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def create_model(name: str, **overrides: Any) -> Any:
    """Build a registered model; unknown names raise ``ConfigError`` listing close matches."""
    _load()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    try:
        return factory(**overrides)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from exc
