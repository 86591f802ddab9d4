"""Configuration helpers: mappings onto dataclasses (:func:`from_mapping`), canonical JSON and its sha256, and the
per-sample decode budget.

The canonical form (sorted keys, no whitespace, UTF-8, no NaN) is what ``config_sha256`` hashes, so the same
configuration gives the same hash on every machine and Python version.

Decode budget: a compressed or sparse input can declare far more pixels than it holds (a 50 KB TIFF declaring
20000² float32 pixels costs 1.6 GB once read). Every reader checks the decoded size a header declares against
:func:`sample_budget_bytes` *before* allocating and rejects the file (reason ``too_large``) when it is larger.
Default 2**28 bytes (256 MiB: e.g. 8192² float32 pixels, or 16384² uint8), far above any sample in the supported
datasets; override with ``SARDATA_MAX_SAMPLE_BYTES`` (read at each check, so it also reaches worker processes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sardata.errors import ConfigError

T = TypeVar("T")

SAMPLE_BUDGET_ENV = "SARDATA_MAX_SAMPLE_BYTES"
DEFAULT_SAMPLE_BUDGET_BYTES = 2**28


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` (dataclasses, dicts, lists, scalars) to canonical JSON."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def config_sha256(obj: Any) -> str:
    """sha256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def sample_budget_bytes() -> int:
    """Largest decoded size (bytes) one read of one input may allocate: ``SARDATA_MAX_SAMPLE_BYTES`` or 2**28.

    Raises:
        ConfigError: the variable is not a positive integer.
    """
    raw = os.environ.get(SAMPLE_BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_SAMPLE_BUDGET_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{SAMPLE_BUDGET_ENV}={raw!r}: expected a positive number of bytes (e.g. 268435456)")
    return value


# ----------------------------------------------------------------------------------------------- mappings
_NULL_WORDS = ("", "none", "null")
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


def from_mapping(cls: type[T], mapping: Mapping[str, Any], *, where: str, noun: str = "key") -> T:
    """Build the dataclass ``cls`` from ``mapping``, converting each value to its field's annotation.

    Why one function: source options (``-o key=value``), YAML recipes, pipeline steps and ``build-shards`` options
    are all "a mapping onto a dataclass"; one converter gives them one set of rules and one style of error.

    Rules: a string becomes the field's type (``"3"`` → 3, ``"yes"`` → True, ``"a,b"`` → ``("a", "b")``, and for
    integer sequences ``"0-4"`` → ``(0, 1, 2, 3, 4)`` and ``"100:50"`` → ``(100, 50)``; ``"none"``/``"null"``/``""``
    → None where None is allowed); a number becomes a string in a ``str`` field; a scalar or list becomes the
    field's tuple or list; a mapping becomes a nested dataclass. Other values are kept as they are (a YAML ``3``
    stays an int in a float field, so hashes of existing recipes do not move).

    Raises:
        ConfigError: ``mapping`` is not a mapping; unknown or missing keys (named, with ``where``); a value that
            does not convert; the dataclass's own checks failing.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(mapping).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    missing = [n for n, f in fields.items() if n not in mapping and _required(f)]
    if missing:
        raise ConfigError(f"{where}: unknown {noun}s {unknown}, missing {noun}s {missing}")
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ConfigError(f"{where} has no {noun} {names}; valid {noun}s: {sorted(fields) or 'none'}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], f"{where} {noun} {name}") for name, value in mapping.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def apply_overrides(data: dict[str, Any], overrides: Iterable[str] | Mapping[str, Any] | None) -> None:
    """Apply overrides to a parsed YAML mapping in place, before :func:`from_mapping`: ``key=value`` strings (CLI
    ``-s``; the value parsed as YAML: numbers, lists, null) or a mapping of keys to values (a pipeline step's
    ``overrides:``). ``a.b`` sets key ``b`` of mapping ``a``."""
    pairs = overrides.items() if isinstance(overrides, Mapping) else map(_split_override, overrides or [])
    for key, value in pairs:
        parts = str(key).split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r}: {p} is not a mapping")
        node[parts[-1]] = value


def _split_override(item: str) -> tuple[str, Any]:
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected key=value (e.g. epochs=5 or model_overrides.depth=4)")
    return key, yaml.safe_load(raw)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _coerce(value: Any, hint: Any, what: str) -> Any:
    """``value`` as annotation ``hint`` (the rules of :func:`from_mapping`); ``what`` names it in errors."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or (origin is not None and type(None) in args):
        if value is None or (isinstance(value, str) and value.lower() in _NULL_WORDS):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), what)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_mapping(hint, value, where=what)
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        return _coerce_sequence(value, hint, what)
    if not isinstance(value, str):
        return str(value) if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if hint is bool:
        if value.lower() in _TRUE_WORDS:
            return True
        if value.lower() in _FALSE_WORDS:
            return False
        raise ConfigError(f"{what}: expected true/false, got {value!r}")
    if hint in (int, float):
        try:
            return hint(value)
        except ValueError as exc:
            raise ConfigError(f"{what}: expected {hint.__name__}, got {value!r}") from exc
    return value


def _coerce_sequence(value: Any, hint: Any, what: str) -> Any:
    """A tuple or list field: ``"a,b"``, a list or one scalar, each item converted to the item annotation."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    item = args[0] if args and args[0] is not Ellipsis else str
    if isinstance(value, str):
        items: list[Any] = [v.strip() for v in value.split(",") if v.strip()]
        if item is int:
            items = _int_items(value, what)
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    out = [_coerce(v, item, f"{what}[{i}]") for i, v in enumerate(items)]
    return out if origin is list else tuple(out)


def _int_items(text: str, what: str) -> list[int]:
    """``10,20,40``, ``100:50:25``, a range ``0-9`` or a mix → ints (the CLI's ``--shots``/``--seeds`` syntax)."""
    out: list[int] = []
    for part in text.replace(":", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError(f"{what}: expected integers like 10,20,40 or 0-9, got {text!r}") from None
    return out
