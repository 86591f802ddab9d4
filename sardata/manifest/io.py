"""Read and write manifest tables with schema validation (``data-contract.md`` §3, *Validation*)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sardata._atomic import atomic_path
from sardata.errors import ManifestSchemaError
from sardata.manifest.schema import EXTRA_COLUMN_PREFIXES, SCHEMA_VERSION, TABLES, with_metadata

CARD_NAME = "dataset.json"


def write_table(table: pa.Table, path: str | os.PathLike[str], name: str, config_sha256: str = "") -> None:
    """Cast ``table`` to the declared schema of ``name`` and write it atomically (fsynced)."""
    schema = with_metadata(TABLES[name], name, config_sha256)
    extra = [c for c in table.column_names if c not in schema.names]
    if extra:
        _check_extra(extra, Path(path))
        for col in extra:
            schema = schema.append(table.schema.field(col))
    table = table.select(schema.names).cast(schema)
    with atomic_path(path, fsync=True) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _check_extra(extra: list[str], path: Path) -> None:
    bad = [c for c in extra if not c.startswith(EXTRA_COLUMN_PREFIXES)]
    if bad:
        raise ManifestSchemaError(
            f"{path}: unexpected columns {bad}; extra columns must start with one of {EXTRA_COLUMN_PREFIXES}"
        )


def validate_schema(found: pa.Schema, name: str, path: Path) -> None:
    """Compare a file's schema with the declared one; raise :class:`ManifestSchemaError` on mismatch."""
    expected = TABLES[name]
    meta = {k.decode(): v.decode() for k, v in (found.metadata or {}).items()}
    version = meta.get("sardata.schema_version")
    if version is None:
        raise ManifestSchemaError(f"{path}: not a sardata {name} table (no sardata.schema_version metadata)")
    check_version(version, path)
    missing = [f.name for f in expected if f.name not in found.names]
    mistyped = [
        f"{f.name} (expected {f.type}, found {found.field(f.name).type})"
        for f in expected
        if f.name in found.names and not found.field(f.name).type.equals(f.type)
    ]
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if mistyped:
        problems.append(f"mistyped columns {mistyped}")
    extra = [c for c in found.names if c not in expected.names]
    bad_extra = [c for c in extra if not c.startswith(EXTRA_COLUMN_PREFIXES)]
    if bad_extra:
        problems.append(f"unexpected columns {bad_extra} (extra columns need a prefix {EXTRA_COLUMN_PREFIXES})")
    if problems:
        raise ManifestSchemaError(
            f"{path}: {name} table does not match schema {SCHEMA_VERSION}: " + "; ".join(problems)
        )


def check_version(version: str, path: Path) -> None:
    """Refuse a newer major schema version; warn on a newer minor one."""
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError as exc:
        raise ManifestSchemaError(f"{path}: malformed schema_version {version!r}") from exc
    our_major, our_minor = (int(p) for p in SCHEMA_VERSION.split(".")[:2])
    if major != our_major:
        raise ManifestSchemaError(
            f"{path}: schema_version {version} needs a sardata release supporting schema {major}.x "
            f"(this sardata reads {our_major}.x); install a matching sardata version"
        )
    if minor > our_minor:
        warnings.warn(f"{path}: schema_version {version} is newer than {SCHEMA_VERSION}", stacklevel=3)


def read_table(path: str | os.PathLike[str], name: str) -> pa.Table:
    """Read a manifest table after validating its schema against the declared constant."""
    path = Path(path)
    if not path.exists():
        raise ManifestSchemaError(f"{path}: {name} table not found; is this a sardata manifest directory?")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestSchemaError(f"{path}: not a readable Parquet file ({exc})") from exc
    validate_schema(schema, name, path)
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestSchemaError(f"{path}: corrupt Parquet data ({exc}); restore or rebuild this table") from exc


def read_card(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``dataset.json`` of a manifest directory (a directory without it is an unfinished run)."""
    path = Path(root) / CARD_NAME
    if not path.exists():
        raise ManifestSchemaError(
            f"{path} missing: {root} is not a finished sardata manifest (rerun the command that creates it)"
        )
    card = json.loads(path.read_text(encoding="utf-8"))
    check_version(str(card.get("schema_version", "0.0.0")), path)
    return card


def write_card(root: str | os.PathLike[str], card: dict[str, Any]) -> None:
    """Write ``dataset.json`` atomically (always the last file of a run)."""
    data = json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_path(Path(root) / CARD_NAME, fsync=True) as tmp:
        tmp.write_text(data, encoding="utf-8")
