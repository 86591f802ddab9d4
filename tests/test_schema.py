"""Manifest schema: declared once, written with metadata, validated on read with precise errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sardata.errors import ManifestSchemaError
from sardata.manifest.io import read_table, write_table
from sardata.manifest.schema import SCHEMA_VERSION, SOURCES

ROW = {
    "source": "mstar",
    "src_path": "a/b.000",
    "src_member": None,
    "bytes": 10,
    "sha256": "0" * 64,
    "adapter": "mstar",
    "adapter_version": "1.0.0",
    "status": "ok",
    "reason": None,
    "detail": None,
    "error_type": None,
    "n_samples": 1,
}


def test_round_trip_with_metadata(tmp_path: Path) -> None:
    path = tmp_path / "sources.parquet"
    write_table(pa.Table.from_pylist([ROW], schema=SOURCES), path, "sources", "abc")
    meta = pq.read_schema(path).metadata
    assert meta[b"sardata.table"] == b"sources"
    assert meta[b"sardata.schema_version"] == SCHEMA_VERSION.encode()
    assert meta[b"sardata.config_sha256"] == b"abc"
    assert read_table(path, "sources").to_pylist() == [ROW]


def _write_raw(path: Path, table: pa.Table, version: str = SCHEMA_VERSION) -> None:
    meta = {"sardata.table": "sources", "sardata.schema_version": version, "sardata.config_sha256": ""}
    pq.write_table(table.replace_schema_metadata(meta), path)


def test_missing_and_mistyped_columns_are_named(tmp_path: Path) -> None:
    table = pa.Table.from_pylist([ROW], schema=SOURCES).drop_columns(["sha256"])
    table = table.set_column(table.schema.get_field_index("bytes"), "bytes", pa.array(["10"]))
    path = tmp_path / "sources.parquet"
    _write_raw(path, table)
    with pytest.raises(ManifestSchemaError) as err:
        read_table(path, "sources")
    msg = str(err.value)
    assert str(path) in msg and "missing columns ['sha256']" in msg and "bytes (expected int64, found string)" in msg


def test_unprefixed_extra_column_rejected_prefixed_allowed(tmp_path: Path) -> None:
    base = pa.Table.from_pylist([ROW], schema=SOURCES)
    path = tmp_path / "s.parquet"
    _write_raw(path, base.append_column("note", pa.array(["x"])))
    with pytest.raises(ManifestSchemaError, match=r"unexpected columns \['note'\]"):
        read_table(path, "sources")
    _write_raw(path, base.append_column("x_note", pa.array(["x"])))
    assert read_table(path, "sources").column("x_note").to_pylist() == ["x"]


def test_newer_major_fails_newer_minor_warns(tmp_path: Path) -> None:
    table = pa.Table.from_pylist([ROW], schema=SOURCES)
    path = tmp_path / "s.parquet"
    major = int(SCHEMA_VERSION.split(".")[0])
    _write_raw(path, table, f"{major + 1}.0.0")
    with pytest.raises(ManifestSchemaError, match="install a matching sardata"):
        read_table(path, "sources")
    _write_raw(path, table, f"{major}.99.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_table(path, "sources")
    assert any("newer" in str(w.message) for w in caught)


def test_not_a_sardata_table(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(ManifestSchemaError, match="not a sardata sources table"):
        read_table(path, "sources")
