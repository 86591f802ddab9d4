"""``sardata manifest export``: describe a built dataset for other tools — Croissant JSON-LD and a Hugging Face
``dataset_info`` YAML block. Both are generated from ``dataset.json`` and the Parquet schemas alone (no shard is
read), so an export is cheap and always agrees with the tables it describes.

Croissant (``--format croissant``, MLCommons Croissant 1.0): one ``cr:FileObject`` per table and per shard, each
with its ``sha256`` and ``contentSize``; a ``cr:RecordSet`` ``samples`` whose fields are the columns of
``samples.parquet`` (types from the Arrow schema, lists as ``repeated``, the ``members`` structs as sub-fields),
and a ``shards`` record set over ``shards.parquet``. ``contentUrl`` values are relative to the card unless the
card has a ``base_url`` (then shards are absolute under it), so the document travels with the folder.

Hugging Face (``--format hf``): the YAML front matter of a dataset card's README — ``dataset_info`` with the
index features (``samples.parquet`` columns in ``datasets`` dtype names; ``label`` as ``class_label`` when the
dataset has a single class map), per-split ``num_examples``/``num_bytes``, ``download_size`` and
``dataset_size``, plus ``configs`` pointing the WebDataset loader at ``shards/<split>-*.tar``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from sardata.errors import ConfigError, ManifestSchemaError
from sardata.manifest.io import read_card, read_table
from sardata.manifest.schema import TABLES
from sardata.safepath import check_relpath, resolve_inside
from sardata.stream.locate import card_base

FORMATS = ("croissant", "hf")
CROISSANT_CONFORMS_TO = "http://mlcommons.org/croissant/1.0"

#: the JSON-LD context recommended by the Croissant 1.0 specification (Appendix 1).
CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def export(root: str | os.PathLike[str], fmt: str) -> str:
    """The export of a built dataset as text (JSON-LD for ``croissant``, YAML for ``hf``)."""
    if fmt == "croissant":
        return json.dumps(croissant(root), indent=2, ensure_ascii=False) + "\n"
    if fmt == "hf":
        import yaml

        return "---\n" + yaml.safe_dump(hf_dataset_info(root), sort_keys=False, allow_unicode=True) + "---\n"
    raise ConfigError(f"export format {fmt!r}; choose from {FORMATS}")


# ----------------------------------------------------------------------------------------------- croissant
def _croissant_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "sc:Boolean"
    if pa.types.is_integer(t):
        return "sc:Integer"
    if pa.types.is_floating(t):
        return "sc:Float"
    return "sc:Text"


def _croissant_field(record: str, file_id: str, f: pa.Field) -> dict[str, Any]:
    fid = f"{record}/{f.name}"
    out: dict[str, Any] = {"@type": "cr:Field", "@id": fid, "name": f.name}
    t = f.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        out["repeated"] = True
        t = t.value_type
    if pa.types.is_struct(t):
        out["subField"] = [
            {"@type": "cr:Field", "@id": f"{fid}/{sub.name}", "name": sub.name, "dataType": _croissant_type(sub.type),
             "source": {"fileObject": {"@id": file_id}, "extract": {"column": f.name}, "transform": {"jsonPath": sub.name}}}
            for sub in t
        ]  # fmt: skip
    else:
        out["dataType"] = _croissant_type(t)
    out["source"] = {"fileObject": {"@id": file_id}, "extract": {"column": f.name}}
    return out


def croissant(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Croissant 1.0 JSON-LD of a built dataset (see the module docstring)."""
    root = Path(root)
    card = _dataset_card(root)
    base = card_base(card, root) if card.get("base_url") else None
    files: list[dict[str, Any]] = []
    for name, info in sorted(card.get("tables", {}).items()):
        path = resolve_inside(root, f"{name}.parquet", "table name", "dataset.json")
        if not path.is_file():
            raise ManifestSchemaError(f"{path}: listed in dataset.json but missing; restore it or rebuild the dataset")
        files.append({"@type": "cr:FileObject", "@id": f"{name}.parquet", "name": f"{name}.parquet",
                      "contentUrl": f"{name}.parquet", "contentSize": f"{path.stat().st_size} B",
                      "encodingFormat": "application/x-parquet", "sha256": info["sha256"]})  # fmt: skip
    for s in read_table(root / "shards.parquet", "shards").to_pylist():
        check_relpath(s["path"], "shard path", "shards.parquet")
        url = s["path"] if base is None else f"{base.rstrip('/')}/{s['path']}"
        files.append({"@type": "cr:FileObject", "@id": s["path"], "name": s["shard"], "contentUrl": url,
                      "contentSize": f"{s['bytes']} B", "encodingFormat": "application/x-tar",
                      "sha256": s["sha256"]})  # fmt: skip
    record_sets = []
    for table in ("samples", "shards"):
        schema = read_table(root / f"{table}.parquet", table).schema
        record_sets.append({"@type": "cr:RecordSet", "@id": table, "name": table,
                            "description": f"one row per {table[:-1]} ({table}.parquet)",
                            "field": [_croissant_field(table, f"{table}.parquet", f) for f in schema]})  # fmt: skip
    record_sets[0]["key"] = {"@id": "samples/key"}
    sources = ", ".join(f"{s.get('id')} v{s.get('version')}" for s in card.get("sources", []))
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "name": root.resolve().name,
        "description": f"sardata dataset built from {sources or 'unknown sources'}: WebDataset shards with a "
        f"Parquet index (schema {card['schema_version']})",
        "conformsTo": CROISSANT_CONFORMS_TO,
        "version": card.get("config_sha256", "")[:12],
        "distribution": files,
        "recordSet": record_sets,
    }


# ----------------------------------------------------------------------------------------------- hugging face
def _hf_dtype(t: pa.DataType) -> Any:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"sequence": _hf_dtype(t.value_type)}
    if pa.types.is_struct(t):
        return {"struct": [{"name": f.name, "dtype": _hf_dtype(f.type)} for f in t]}
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    return str(t)  # int16, int32, int64, float32 ("float"), float64 ("double") -> datasets' names below


_HF_NAMES = {"float": "float32", "double": "float64", "halffloat": "float16"}


def _hf_feature(f: pa.Field, class_names: list[str] | None) -> dict[str, Any]:
    if f.name == "label" and class_names is not None:
        return {"name": "label", "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(class_names)}}}}
    dtype = _hf_dtype(f.type)
    if isinstance(dtype, str):
        return {"name": f.name, "dtype": _HF_NAMES.get(dtype, dtype)}
    if "sequence" in dtype and isinstance(dtype["sequence"], str):
        return {"name": f.name, "sequence": _HF_NAMES.get(dtype["sequence"], dtype["sequence"])}
    if "sequence" in dtype:
        return {"name": f.name, "sequence": dtype["sequence"]}
    return {"name": f.name, **dtype}


def hf_dataset_info(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``dataset_info`` + ``configs`` YAML header of a Hugging Face dataset card (as a dict)."""
    root = Path(root)
    card = _dataset_card(root)
    maps = card.get("class_maps", {})
    names = next(iter(maps.values())) if len(maps) == 1 else None
    schema = read_table(root / "samples.parquet", "samples").schema
    splits = card.get("splits", {})
    table_bytes = sum((root / f"{n}.parquet").stat().st_size for n in TABLES if (root / f"{n}.parquet").exists())
    shard_bytes = sum(v.get("bytes", 0) for v in splits.values())
    return {
        "dataset_info": {
            "features": [_hf_feature(f, names) for f in schema],
            "splits": [
                {"name": s, "num_bytes": v.get("bytes", 0), "num_examples": v.get("samples", 0)}
                for s, v in splits.items()
            ],
            "download_size": shard_bytes + table_bytes,
            "dataset_size": shard_bytes,
        },
        "configs": [
            {"config_name": "default", "data_files": [{"split": s, "path": f"shards/{s}-*.tar"} for s in splits]}
        ],  # fmt: skip
    }


def _dataset_card(root: Path) -> dict[str, Any]:
    card = read_card(root)
    if card.get("kind", "dataset") != "dataset":
        raise ConfigError(f"{root}: export describes built datasets (build-shards output), not {card.get('kind')}")
    return card


__all__ = ["CROISSANT_CONTEXT", "FORMATS", "croissant", "export", "hf_dataset_info"]
