"""Structure of ``dataset.json`` (``data-contract.md`` §3): built from the same parts by every writer (ingest,
build-shards, merge), checked in one place when a card is read.

Every reader indexes the card directly (``card["tables"]["samples"]["sha256"]``, ``card["splits"][s]["bytes"]``),
so a hand-edited or damaged card must fail here, as one :class:`ManifestSchemaError` naming the field and the
fix, instead of as a ``KeyError``/``AttributeError`` somewhere downstream.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sardata.atomic import sha256_file
from sardata.errors import ManifestSchemaError
from sardata.manifest.schema import SCHEMA_VERSION, TABLES

_NONE = type(None)


def card_header(kind: str, config: dict[str, Any], config_sha256: str, **extra: Any) -> dict[str, Any]:
    """The fields every card starts with: kind, schema and sardata versions, creation time, the configuration and
    its hash (``extra`` adds kind-specific provenance such as ``git_sha`` or ``input_root``)."""
    import datetime as dt

    import sardata

    return {"kind": kind, "schema_version": SCHEMA_VERSION, "sardata_version": sardata.__version__,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "config": config,
            "config_sha256": config_sha256, **extra}  # fmt: skip


def table_entries(out: Path, rows: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``tables``: each written table's row count and the sha256 of its file (the card is the root of trust)."""
    return {name: {"rows": int(n), "sha256": sha256_file(out / f"{name}.parquet")} for name, n in rows.items()}


def split_summary(splits: Any, shard_splits: list[str], shard_bytes: list[int]) -> dict[str, dict[str, int]]:
    """``splits``: samples, shards and bytes per split (``splits`` is the samples' split column, a pandas
    Series; ``shard_splits``/``shard_bytes`` one entry per shard)."""
    return {
        s: {"samples": int((splits == s).sum()), "shards": sum(x == s for x in shard_splits),
            "bytes": sum(b for x, b in zip(shard_splits, shard_bytes, strict=True) if x == s)}
        for s in sorted(splits.unique())
    }  # fmt: skip


def per_split_class(samples: Any) -> dict[str, int]:
    """``counts.per_split_class``: ``"<split>/<class>"`` → samples (unlabelled rows count as ``(none)``)."""
    groups = samples.groupby(["split", samples["label_name"].fillna("(none)")]).size()
    return {f"{s}/{c}": int(n) for (s, c), n in groups.items()}


#: top-level card fields and their JSON types (a field may be absent unless ``REQUIRED`` names it).
CARD_TYPES: dict[str, tuple[type, ...]] = {
    "schema_version": (str,),
    "sardata_version": (str,),
    "git_sha": (str, _NONE),
    "created_at": (str, _NONE),
    "kind": (str,),
    "config": (dict,),
    "config_sha256": (str,),
    "sources": (list,),
    "splits": (dict,),
    "fields": (dict,),
    "features": (dict,),
    "class_maps": (dict,),
    "tables": (dict,),
    "counts": (dict,),
    "views": (list,),
    "view_warnings": (dict,),
    "normalisation": (dict, _NONE),
    "base_url": (str, _NONE),
    "input_root": (str, _NONE),
}
#: fields every card of a kind must have (readers index them without ``.get``).
REQUIRED: dict[str, tuple[str, ...]] = {
    "ingest": ("schema_version", "config_sha256", "sources", "tables"),
    "dataset": ("schema_version", "tables"),
}
#: tables each kind must list in ``tables``.
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {"ingest": ("samples",), "dataset": ("samples", "shards")}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIX = "restore dataset.json from a copy or rerun the command that wrote it"


def _fail(path: Path, what: str) -> ManifestSchemaError:
    return ManifestSchemaError(f"{path}: {what}; {_FIX}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _type_names(types: tuple[type, ...]) -> str:
    names = {dict: "object", list: "array", str: "string", _NONE: "null", int: "integer"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def check_card(card: dict[str, Any], path: Path) -> None:
    """Raise :class:`ManifestSchemaError` unless ``card`` has the types and fields readers rely on."""
    for key, types in CARD_TYPES.items():
        if key in card and not isinstance(card[key], types):
            found = type(card[key]).__name__
            raise _fail(path, f"field {key!r} must be a JSON {_type_names(types)}, found {found}")
    kind = card.get("kind", "dataset")
    missing = [k for k in REQUIRED.get(kind, ("schema_version",)) if k not in card]
    if missing:
        raise _fail(path, f"a {kind} card needs fields {missing}")
    _check_tables(card.get("tables", {}), kind, path)
    for split, info in card.get("splits", {}).items():
        if not isinstance(info, dict) or not all(_count(info.get(k, 0)) for k in ("samples", "bytes", "shards")):
            raise _fail(path, f"splits.{split} must be an object of non-negative integers samples/bytes/shards")
    if not all(isinstance(s, dict) for s in card.get("sources", [])):
        raise _fail(path, "sources must be an array of objects")
    for source, names in card.get("class_maps", {}).items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _fail(path, f"class_maps.{source} must be an array of class names (strings)")
    if not all(isinstance(v, str) for v in card.get("views", [])):
        raise _fail(path, "views must be an array of view names (strings)")
    for key, value in card.get("counts", {}).items():
        if key.startswith(("files", "per_")) and not (
            isinstance(value, dict) and all(_count(v) for v in value.values())
        ):
            raise _fail(path, f"counts.{key} must be an object of non-negative integers")


def _check_tables(tables: dict[str, Any], kind: str, path: Path) -> None:
    for name, info in tables.items():
        if name not in TABLES:
            raise _fail(path, f"tables names unknown table {name!r} (known: {sorted(TABLES)})")
        if not isinstance(info, dict):
            raise _fail(path, f"tables.{name} must be an object with rows and sha256")
        if not _count(info.get("rows")):
            raise _fail(path, f"tables.{name}.rows must be a non-negative integer, found {info.get('rows')!r}")
        if not isinstance(info.get("sha256"), str) or not _SHA256.match(info["sha256"]):
            raise _fail(path, f"tables.{name}.sha256 must be 64 lower-case hex digits, found {info.get('sha256')!r}")
    absent = [t for t in REQUIRED_TABLES.get(kind, ()) if t not in tables]
    if absent:
        raise _fail(path, f"a {kind} card must list tables {absent}")
