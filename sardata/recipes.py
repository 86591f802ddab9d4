"""Load and validate the YAML under ``models/``, ``pipelines/`` and ``manifests/`` into frozen dataclasses.

Every YAML file carries ``kind:``; :data:`KINDS` maps it to the dataclass that validates it. Unknown or missing
keys are a :class:`~sardata.errors.ConfigError` naming the file. Nothing at run time needs these files: they are
documentation and runnable configuration (``architecture.md`` §1).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sardata.errors import ConfigError


@dataclass(frozen=True)
class SourceCard:
    """``manifests/sources/<id>.yaml``: what a source is, where it comes from, what ingest should find."""

    kind: str
    id: str
    name: str
    licence: str
    citation: str
    homepage: str
    sensor: str
    band: str
    resolution_m: float | None
    polarisations: list[str]
    layout: str
    classes: list[str]
    expected: dict[str, Any]
    splits: str
    notes: str = ""
    synthetic: bool = False  # data described/written for this card is simulated (fixture generators, simulators)

    def __post_init__(self) -> None:
        from sardata.sources import get_source

        cls = get_source(self.id)
        if list(cls.classes) != list(self.classes):
            raise ConfigError(
                f"source card {self.id}: classes {self.classes} differ from the adapter's {list(cls.classes)}"
            )


@dataclass(frozen=True)
class PipelineStep:
    name: str
    args: list[str]


@dataclass(frozen=True)
class PipelineRecipe:
    """``pipelines/<name>.yaml``: an ordered list of ``sardata`` commands, run by ``sardata run``."""

    kind: str
    name: str
    description: str
    steps: list[PipelineStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.steps:
            raise ConfigError(f"pipeline {self.name}: no steps")


@dataclass(frozen=True)
class ModelPreset:
    """``models/<name>.yaml``: a registry name, the constructor overrides it documents, and a short model card."""

    kind: str
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)


#: ``kind:`` → dataclass (or "module:Class", imported on use so reading a card never imports torch)
KINDS: dict[str, type | str] = {
    "source-card": SourceCard,
    "pipeline": PipelineRecipe,
    "model-preset": ModelPreset,
    "pretrain": "sardata.train.pretrain:PretrainConfig",
    "finetune": "sardata.train.finetune:FinetuneConfig",
    "crossmode": "sardata.train.crossmode:CrossModeConfig",
}


def _kind_class(kind: str) -> type:
    target = KINDS[kind]
    if isinstance(target, str):
        import importlib

        module, name = target.split(":")
        target = getattr(importlib.import_module(module), name)
    return target


def load_yaml(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Any:
    """Parse a resource YAML into its dataclass (chosen by ``kind``), after applying ``key=value`` overrides
    (values parsed as YAML; ``a.b=v`` sets key ``b`` of mapping ``a``)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML ({exc})") from exc
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        raise ConfigError(f"{path}: top-level `kind:` must be one of {sorted(KINDS)}")
    for item in overrides or []:
        apply_override(data, item)
    try:
        return _build(_kind_class(data["kind"]), data, str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``key=value`` / ``a.b=value`` override in place (value parsed as YAML: numbers, lists, null)."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected key=value (e.g. epochs=5 or model_overrides.depth=4)")
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {p} is not a mapping")
    node[parts[-1]] = yaml.safe_load(raw)


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    required = [
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in data]
    if unknown or missing:
        raise ConfigError(f"{cls.__name__}: unknown keys {unknown}, missing keys {missing}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if typing.get_origin(hint) is list and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            value = [_build(typing.get_args(hint)[0], v, f"{where}:{name}") for v in value]
        kwargs[name] = value
    return cls(**kwargs)
