"""Read and write manifest tables with schema validation (``data-contract.md`` §3, *Validation*)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sardata.atomic import atomic_path
from sardata.errors import ManifestSchemaError
from sardata.manifest.card import check_card
from sardata.manifest.rows import check_rows
from sardata.manifest.schema import (
    COLUMNS_SINCE,
    EXTRA_COLUMN_PREFIXES,
    OPTIONAL_COLUMNS,
    SCHEMA_VERSION,
    TABLES,
    parse_version,
    with_metadata,
)

CARD_NAME = "dataset.json"
CARD_MAX_BYTES = 64 << 20  # a card is a few KB; anything this large is not one
CARD_MAX_DEPTH = 64  # deepest JSON nesting accepted in a card (real cards nest ~5 levels)


SORTED_ROW_GROUP = 1 << 16  # rows per row group when write_table sorts while writing


def write_table(table: pa.Table, path: str | os.PathLike[str], name: str, config_sha256: str = "",
                sort_by: str | None = None) -> None:  # fmt: skip
    """Cast ``table`` to the declared schema of ``name`` and write it atomically (fsynced).

    ``sort_by``: write the rows ordered by that column, taking one row group at a time through the sort
    permutation, so a large table is never held twice (once unsorted, once sorted). An optional column
    (``OPTIONAL_COLUMNS``) that ``table`` lacks or holds only nulls in is left out."""
    schema = with_metadata(_written_schema(table, name), name, config_sha256)
    extra = [c for c in table.column_names if c not in TABLES[name].names]
    if extra:
        _check_extra(extra, Path(path))
        for col in extra:
            schema = schema.append(table.schema.field(col))
    table = table.select(schema.names).cast(schema)
    with atomic_path(path, fsync=True) as tmp:
        if sort_by is None:
            pq.write_table(table, tmp, compression="zstd")
            return
        import pyarrow.compute as pc

        order = pc.sort_indices(table, [(sort_by, "ascending")])
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for start in range(0, max(1, table.num_rows), SORTED_ROW_GROUP):
                writer.write_table(table.take(order[start : start + SORTED_ROW_GROUP]))


def _written_schema(table: pa.Table, name: str) -> pa.Schema:
    """The declared schema of ``name`` less the optional columns without a value in ``table``."""
    schema = TABLES[name]
    for col in sorted(OPTIONAL_COLUMNS.get(name, ())):
        if col not in table.column_names or table.column(col).null_count == table.num_rows:
            schema = schema.remove(schema.get_field_index(col))
    return schema


def _check_extra(extra: list[str], path: Path) -> None:
    bad = [c for c in extra if not c.startswith(EXTRA_COLUMN_PREFIXES)]
    if bad:
        raise ManifestSchemaError(
            f"{path}: unexpected columns {bad}; extra columns must start with one of {EXTRA_COLUMN_PREFIXES}"
        )


def validate_schema(found: pa.Schema, name: str, path: Path) -> None:
    """Compare a file's schema with the declared one; raise :class:`ManifestSchemaError` on mismatch.

    Columns introduced by a newer minor version than the file's (``COLUMNS_SINCE``) may be absent: an older minor
    version stays readable and :func:`read_table` fills them with nulls."""
    expected = TABLES[name]
    meta = {k.decode(): v.decode() for k, v in (found.metadata or {}).items()}
    version = meta.get("sardata.schema_version")
    if version is None:
        raise ManifestSchemaError(f"{path}: not a sardata {name} table (no sardata.schema_version metadata)")
    check_version(version, path)
    later = _added_after(name, version) | set(OPTIONAL_COLUMNS.get(name, {}))
    missing = [f.name for f in expected if f.name not in found.names and f.name not in later]
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


def _added_after(name: str, version: str) -> set[str]:
    """Columns of table ``name`` introduced by a schema version newer than ``version``."""
    ours = parse_version(version)
    return {col for col, since in COLUMNS_SINCE.get(name, {}).items() if parse_version(since) > ours}


def check_version(version: str, path: Path, writer: str | None = None) -> None:
    """Refuse another major schema version (naming the sardata release to install); warn on a newer minor one.

    ``writer`` is the ``sardata_version`` that wrote the file, when known (from ``dataset.json``, also looked up
    beside a table): the message then says ``install sardata>=<writer>``; without it, ``sardata><this version>``.
    """
    try:
        major, minor, _ = parse_version(version)
    except ValueError as exc:
        raise ManifestSchemaError(f"{path}: malformed schema_version {version!r} (expected MAJOR.MINOR.PATCH)") from exc
    our_major, our_minor, _ = parse_version(SCHEMA_VERSION)
    if major > our_major:
        writer = writer or _writer_version(path)
        need = f">={writer}" if writer else f">{_sardata_version()}"
        raise ManifestSchemaError(
            f"{path}: schema_version {version} is newer than this sardata ({_sardata_version()}, reads schema "
            f"{our_major}.x); install sardata{need} (install a matching sardata release: pip install 'sardata{need}')"
        )
    if major < our_major:
        raise ManifestSchemaError(
            f"{path}: schema_version {version} is an older major version than this sardata reads ({our_major}.x); "
            f"rebuild it with this sardata (rerun ingest / build-shards) or read it with the sardata release that "
            f"wrote it ({_writer_version(path) or 'see sardata_version in dataset.json'})"
        )
    if minor > our_minor:
        warnings.warn(
            f"{path}: schema_version {version} is newer than {SCHEMA_VERSION}; columns added since are ignored "
            "(upgrade sardata to use them)",
            stacklevel=3,
        )


def _sardata_version() -> str:
    from sardata import __version__

    return __version__


def _writer_version(path: Path) -> str | None:
    """``sardata_version`` of the card next to ``path`` (or ``path`` itself), without validating it."""
    card = path if path.name == CARD_NAME else path.parent / CARD_NAME
    try:
        value = json.loads(card.read_text(encoding="utf-8")).get("sardata_version")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return str(value) if value else None


def read_table(path: str | os.PathLike[str], name: str) -> pa.Table:
    """Read a manifest table after validating its schema against the declared constant."""
    path = Path(path)
    if name not in TABLES:
        raise ManifestSchemaError(f"{path}: unknown table {name!r} (known: {sorted(TABLES)})")
    if not path.is_file():
        raise ManifestSchemaError(
            f"{path}: {name} table not found; restore it or rerun the command that wrote this manifest"
        )
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestSchemaError(f"{path}: not a readable Parquet file ({exc})") from exc
    validate_schema(schema, name, path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestSchemaError(f"{path}: corrupt Parquet data ({exc}); restore or rebuild this table") from exc
    version = (schema.metadata or {}).get(b"sardata.schema_version", b"").decode()
    table = _fill_later_columns(table, name, version)
    check_rows(table, name, path, read_table)
    return table


def _fill_later_columns(table: pa.Table, name: str, version: str) -> pa.Table:
    """Add the columns an older minor version lacks as nulls, in declared order (readers see one layout); an optional
    column (``OPTIONAL_COLUMNS``) a file of its version or newer lacks stays absent (no row had a value)."""
    expected = TABLES[name]
    ours = parse_version(version)
    unused = {c for c, since in OPTIONAL_COLUMNS.get(name, {}).items() if parse_version(since) <= ours}
    absent = [f for f in expected if f.name not in table.column_names and f.name not in unused]
    if not absent:
        return table
    for f in absent:
        table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    order = [f.name for f in expected if f.name in table.column_names]
    order += [c for c in table.column_names if c not in expected.names]
    return table.select(order)


def read_card(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``dataset.json`` of a manifest directory (a directory without it is an unfinished run)."""
    path = Path(root) / CARD_NAME
    if not path.exists():
        raise ManifestSchemaError(
            f"{path} missing: {root} is not a finished sardata manifest (rerun the command that creates it)"
        )
    card = load_card_json(path)
    writer = card.get("sardata_version")
    check_version(str(card.get("schema_version", "0.0.0")), path, str(writer) if writer else None)
    return card


def load_card_json(path: Path) -> dict[str, Any]:
    """Parse and structurally validate a card, so every reader can index it without a traceback.

    Size and nesting are bounded before and after parsing (``json.loads`` recurses: a deeply nested card would
    raise ``RecursionError``); NaN/Infinity are refused (the writer never emits them)."""
    fix = "restore dataset.json from a copy or rerun the command that wrote it"
    try:
        if path.stat().st_size > CARD_MAX_BYTES:
            raise ManifestSchemaError(f"{path}: card larger than {CARD_MAX_BYTES} bytes; {fix}")
        card = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise ManifestSchemaError(f"{path}: JSON nested deeper than {CARD_MAX_DEPTH} levels; {fix}") from None
    except (ValueError, OSError) as exc:
        raise ManifestSchemaError(f"{path}: not valid JSON ({exc}); {fix}") from exc
    if not isinstance(card, dict):
        raise ManifestSchemaError(f"{path}: expected a JSON object, found {type(card).__name__}; {fix}")
    if _depth(card) > CARD_MAX_DEPTH:
        raise ManifestSchemaError(f"{path}: JSON nested deeper than {CARD_MAX_DEPTH} levels; {fix}")
    check_card(card, path)
    return card


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a card")


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value, iteratively (no recursion limit)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d <= CARD_MAX_DEPTH and isinstance(node, dict | list):
            stack += [(v, d + 1) for v in (node.values() if isinstance(node, dict) else node)]
    return deepest


def write_card(root: str | os.PathLike[str], card: dict[str, Any]) -> None:
    """Write ``dataset.json`` atomically (always the last file of a run)."""
    data = json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_path(Path(root) / CARD_NAME, fsync=True) as tmp:
        tmp.write_text(data, encoding="utf-8")
