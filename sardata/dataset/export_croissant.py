"""``sardata manifest export DS --format croissant``: Croissant 1.0 JSON-LD of a built dataset, valid for
``mlcroissant validate`` with no warnings (tested with mlcroissant 1.1.1, offline: the context is inline and
every ``contentUrl`` is relative to the document, so nothing is fetched).

What it holds:

- the dataset: ``license`` (one entry per source card licence), ``citeAs`` (the source cards' citations),
  ``datePublished`` (the card's ``created_at``) and ``version`` (``<schema_version>+<config_sha256[:12]>``); the
  rules are in :mod:`sardata.dataset.export_meta`;
- one ``cr:FileObject`` per table and per shard, each with its ``sha256`` and ``contentSize``; ``contentUrl`` values
  are relative to the dataset folder (write the document there: ``--out DS/croissant.json``) unless the card has a
  ``base_url`` (then shards are absolute under it);
- record sets ``samples`` and ``shards``: one field per Parquet column (types from the Arrow schema, lists as
  ``repeated``, the ``members`` structs as sub-fields);
- per array field stored in the shards (``img``, ``gr``, ``mask``...): a ``cr:FileSet`` ``<field>-members`` of the
  ``*.<field>.npy`` members ``containedIn`` every shard, and a record set ``<field>`` with ``<field>/key`` (the
  sample key: the member name less ``.<field>.npy``; it equals ``samples/key``) and ``<field>/npy``.

**Pixels through Croissant records.** ``mlcroissant`` reads these record sets offline: it extracts each tar and
yields one record per member. It cannot decode ``.npy``: its readers cover CSV, TSV, JSON, JSON Lines, Parquet,
text, MP3, JPEG, PNG, TIFF, ARFF and DICOM, and a ``fileProperty: content`` field yields the file's bytes. So
``<field>/npy`` is typed ``sc:Text`` (bytes in mlcroissant) and holds the member's raw ``.npy`` bytes;
``numpy.load(io.BytesIO(value), allow_pickle=False)`` gives the stored array. The FileSets declare
``application/x-npy`` (no registered MIME type exists for ``.npy``). Declaring ``isArray``/``arrayShape`` (Croissant
1.1) would make mlcroissant cast those bytes to numbers and fail, so shapes and dtypes are in the descriptions and
in ``samples`` (``channels``, ``height``, ``width``, ``dtype``) and ``dataset.json`` (``features.gr``).

Two costs of mlcroissant's record reading, not of this document: every shard is extracted in full under
``$CROISSANT_CACHE/extract`` (a second copy of the shards on disk), and that folder is named by the sha256 of the
``contentUrl`` string, so two datasets with the same relative shard names share it: give each dataset its own
``CROISSANT_CACHE`` (or clear it) before reading records.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sardata.dataset.export_meta import dataset_card, dataset_version, date_published, source_infos
from sardata.errors import ManifestSchemaError
from sardata.manifest.io import read_table
from sardata.safepath import check_relpath, resolve_inside
from sardata.shards.codecs import FIELDS
from sardata.stream.locate import card_base

CROISSANT_CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
#: what the FileSets of ``.npy`` members declare (there is no registered MIME type for NumPy's format)
NPY_FORMAT = "application/x-npy"

#: the JSON-LD context of the Croissant 1.0 specification (Appendix 1), as mlcroissant checks it.
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
    "equivalentProperty": "cr:equivalentProperty",
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
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def _croissant_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "sc:Boolean"
    if pa.types.is_integer(t):
        return "sc:Integer"
    if pa.types.is_floating(t):
        return "sc:Float"
    return "sc:Text"


def _column_field(record: str, file_id: str, f: pa.Field) -> dict[str, Any]:
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


def _table_files(root: Path, card: dict[str, Any]) -> list[dict[str, Any]]:
    files = []
    for name, info in sorted(card.get("tables", {}).items()):
        path = resolve_inside(root, f"{name}.parquet", "table name", "dataset.json")
        if not path.is_file():
            raise ManifestSchemaError(f"{path}: listed in dataset.json but missing; restore it or rebuild the dataset")
        files.append({"@type": "cr:FileObject", "@id": f"{name}.parquet", "name": f"{name}.parquet",
                      "contentUrl": f"{name}.parquet", "contentSize": f"{path.stat().st_size} B",
                      "encodingFormat": "application/x-parquet", "sha256": info["sha256"]})  # fmt: skip
    return files


def _shard_files(root: Path, card: dict[str, Any]) -> list[dict[str, Any]]:
    base = card_base(card, root) if card.get("base_url") else None
    files = []
    for s in read_table(root / "shards.parquet", "shards").to_pylist():
        check_relpath(s["path"], "shard path", "shards.parquet")
        url = s["path"] if base is None else f"{base.rstrip('/')}/{s['path']}"
        files.append({"@type": "cr:FileObject", "@id": s["path"], "name": s["shard"], "contentUrl": url,
                      "contentSize": f"{s['bytes']} B", "encodingFormat": "application/x-tar",
                      "sha256": s["sha256"]})  # fmt: skip
    return files


def array_fields(samples: pa.Table) -> list[str]:
    """The ``.npy`` member fields stored in the shards (``img``, ``gr``...), from the ``members`` column."""
    names = pc.unique(pc.struct_field(pc.list_flatten(samples.column("members")), "field")).to_pylist()
    return sorted(n[: -len(".npy")] for n in names if isinstance(n, str) and n.endswith(".npy"))


def _member_file_set(field: str, tars: list[str]) -> dict[str, Any]:
    return {"@type": "cr:FileSet", "@id": f"{field}-members", "name": f"{field}-members",
            "description": f"the {field}.npy members of every shard (one per sample that has the field)",
            "containedIn": [{"@id": t} for t in tars], "encodingFormat": NPY_FORMAT,
            "includes": f"*.{field}.npy"}  # fmt: skip


def _member_record_set(field: str) -> dict[str, Any]:
    spec = FIELDS.get(field)
    meaning = spec.meaning if spec is not None else "array"
    source = {"fileSet": {"@id": f"{field}-members"}}
    return {
        "@type": "cr:RecordSet", "@id": field, "name": field, "key": {"@id": f"{field}/key"},
        "description": f"one record per {field}.npy tar member: {meaning}",
        "field": [
            {"@type": "cr:Field", "@id": f"{field}/key", "name": "key", "dataType": "sc:Text",
             "description": "sample key: the member name less its field suffix; joins samples/key",
             "source": {**source, "extract": {"fileProperty": "filename"},
                        "transform": {"regex": f"^(.+)\\.{field}\\.npy$"}}},
            {"@type": "cr:Field", "@id": f"{field}/npy", "name": "npy", "dataType": "sc:Text",
             "description": f"the member's bytes: a .npy 1.0 array ({meaning}), little-endian, C order, no "
             "pickle; numpy.load(io.BytesIO(value), allow_pickle=False) decodes it",
             "source": {**source, "extract": {"fileProperty": "content"}}},
        ],
    }  # fmt: skip


def _record_sets(root: Path) -> tuple[list[dict[str, Any]], pa.Table]:
    record_sets, tables = [], {}
    for table in ("samples", "shards"):
        tables[table] = read_table(root / f"{table}.parquet", table)
        record_sets.append({"@type": "cr:RecordSet", "@id": table, "name": table,
                            "description": f"one row per {table[:-1]} ({table}.parquet)",
                            "field": [_column_field(table, f"{table}.parquet", f) for f in tables[table].schema]})  # fmt: skip
    record_sets[0]["key"] = {"@id": "samples/key"}
    return record_sets, tables["samples"]


def croissant(root: str | os.PathLike[str], cards_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Croissant 1.0 JSON-LD of a built dataset (see the module docstring); ``cards_dir``: where the source cards
    (``<id>.yaml``) are, by default the checkout's ``manifests/sources``."""
    root = Path(root)
    card = dataset_card(root)
    shards = _shard_files(root, card)
    record_sets, samples = _record_sets(root)
    arrays = array_fields(samples) if shards else []
    member_sets = [_member_file_set(f, [s["@id"] for s in shards]) for f in arrays]
    sources = source_infos(card, None if cards_dir is None else Path(cards_dir))
    names = ", ".join(f"{s.id} v{s.version}" for s in sources) or "unknown sources"
    doc = {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "name": root.resolve().name,
        "description": f"sardata dataset built from {names}: WebDataset shards with a Parquet index (schema "
        f"{card['schema_version']}); array fields {', '.join(arrays) or 'none'} are .npy tar members",
        "conformsTo": CROISSANT_CONFORMS_TO,
        "license": list(dict.fromkeys(s.licence for s in sources)) or ["unknown: the card lists no source"],
        "citeAs": "\n".join(dict.fromkeys(s.citation for s in sources)) or "unknown: the card lists no source",
        "version": dataset_version(card),
        "distribution": _table_files(root, card) + shards + member_sets,
        "recordSet": record_sets + [_member_record_set(f) for f in arrays],
    }
    published = date_published(card)
    if published is not None:
        doc["datePublished"] = published
    return doc


__all__ = ["CROISSANT_CONFORMS_TO", "CROISSANT_CONTEXT", "NPY_FORMAT", "array_fields", "croissant"]
