"""Row values readers use as offsets and names, checked when a table is read (``data-contract.md`` §3).

The loader seeks to ``members[].offset`` and allocates ``members[].size`` bytes, ``verify`` opens the shard
named in ``samples.shard``: a negative or out-of-range offset or an unknown shard name would otherwise end as
``OSError``/``MemoryError``/``KeyError`` deep in a read. One :class:`ManifestSchemaError` names the table, the
first bad row and the fix instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sardata.errors import ManifestSchemaError
from sardata.safepath import check_relpath

#: largest byte offset or size accepted in a table (256 TiB): far above any shard, and sums stay in int64.
MAX_BYTES = 1 << 48
_FIX = "restore the table from a copy or rebuild the dataset (build-shards)"


#: reads one table by (path, name), checked: :func:`sardata.manifest.io.read_table`, passed in by the caller so
#: this module stays below ``io`` (no import circle)
TableReader = Callable[[Path, str], pa.Table]


def check_rows(table: pa.Table, name: str, path: Path, read: TableReader) -> None:
    """Raise :class:`ManifestSchemaError` when a row of ``table`` holds an offset, size or name readers cannot use.

    ``read`` opens the ``shards.parquet`` beside a samples table, whose rows the samples must fit."""
    if name == "shards":
        _check_shards(table, path)
    elif name == "samples":
        _check_samples(table, path, read)


def _fail(path: Path, what: str) -> ManifestSchemaError:
    return ManifestSchemaError(f"{path}: {what}; {_FIX}")


def _np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False))


def _bad_range(values: np.ndarray) -> np.ndarray:
    return (values < 0) | (values > MAX_BYTES)


def _check_shards(table: pa.Table, path: Path) -> None:
    names = table.column("shard").to_pylist()
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise _fail(path, f"shard {dup!r} is listed more than once")
    for col in ("bytes", "n_samples", "shard_index"):
        bad = np.flatnonzero(_bad_range(_np(table.column(col))))
        if bad.size:
            raise _fail(path, f"shard {names[bad[0]]!r} has {col}={table.column(col)[int(bad[0])]}")
    for shard, location in zip(names, table.column("path").to_pylist(), strict=True):
        if "://" not in location:  # URLs are checked against the allow-list when resolved (remote.check_location)
            check_relpath(location, f"path of shard {shard!r}", str(path))


def _check_samples(table: pa.Table, path: Path, read: TableReader) -> None:
    """Rows placed in a shard (``shard`` set) must have usable offsets; with ``shards.parquet`` beside the table,
    every row must name a listed shard and lie inside its bytes."""
    sibling = path.parent / "shards.parquet"
    shards = _shard_sizes(read(sibling, "shards")) if path.name.startswith("samples") and sibling.is_file() else None
    shard = table.column("shard")
    keys = table.column("key")
    if path.name == "samples.parquet" and pc.count_distinct(keys).as_py() != table.num_rows:  # §1.2
        counts = pc.value_counts(keys)
        dup = counts.filter(pc.greater(pc.struct_field(counts, "counts"), 1))[0]["values"].as_py()
        raise _fail(path, f"key {dup!r} occurs in more than one row (keys are unique within a dataset)")
    if shards is not None and shard.null_count:
        row = int(np.flatnonzero(_np(pc.is_null(shard)))[0])
        raise _fail(path, f"sample {keys[row].as_py()} has no shard although this is a built dataset")
    placed = table.filter(pc.is_valid(shard))
    if placed.num_rows == 0:
        if shards:
            raise _fail(path, f"no sample rows although shards.parquet lists {len(shards)} shards")
        return
    keys = placed.column("key")
    for col in ("shard_pos", "sample_offset", "sample_bytes", "members"):
        if placed.column(col).null_count:
            row = int(np.flatnonzero(_np(pc.is_null(placed.column(col))))[0])
            raise _fail(path, f"sample {keys[row].as_py()} is in a shard but has no {col}")
    start, length = _np(placed.column("sample_offset")), _np(placed.column("sample_bytes"))
    for col, values in (("shard_pos", _np(placed.column("shard_pos"))), ("sample_offset", start),
                        ("sample_bytes", length)):  # fmt: skip
        bad = np.flatnonzero(_bad_range(values))
        if bad.size:
            raise _fail(path, f"sample {keys[int(bad[0])].as_py()} has {col}={int(values[bad[0]])}")
    members = placed.column("members").combine_chunks()
    flat = pc.list_flatten(members)
    parent = _np(pc.list_parent_indices(members))
    offset, size = _np(pc.struct_field(flat, "offset")), _np(pc.struct_field(flat, "size"))
    if pc.struct_field(flat, "offset").null_count or pc.struct_field(flat, "size").null_count:
        raise _fail(path, "a member has no offset or size")
    bad = np.flatnonzero(_bad_range(offset) | _bad_range(size))
    if not bad.size:
        bad = np.flatnonzero((offset < start[parent]) | (offset + size > start[parent] + length[parent]))
    if bad.size:
        i = int(bad[0])
        raise _fail(path, f"sample {keys[int(parent[i])].as_py()}: member at offset {int(offset[i])} of {int(size[i])} bytes "
                          f"lies outside the sample's byte range")  # fmt: skip
    if shards is not None:
        _check_in_shards(placed, start + length, shards, path)


def _shard_sizes(table: pa.Table) -> dict[str, tuple[int, int]]:
    """shard name -> (bytes, n_samples) from the ``shards.parquet`` table."""
    sizes = zip(table.column("bytes").to_pylist(), table.column("n_samples").to_pylist(), strict=True)
    return dict(zip(table.column("shard").to_pylist(), sizes, strict=True))


def _check_in_shards(placed: pa.Table, end: np.ndarray, shards: dict[str, tuple[int, int]], path: Path) -> None:
    names = placed.column("shard").to_pylist()
    counts = Counter(names)
    for shard, (_, n_samples) in shards.items():
        if counts.get(shard, 0) != n_samples:
            raise _fail(path, f"{counts.get(shard, 0)} rows name shard {shard!r} but shards.parquet says {n_samples}")
    for i, (name, stop) in enumerate(zip(names, end.tolist(), strict=True)):
        size = shards.get(name, (None, 0))[0]
        if size is None:
            raise _fail(path, f"sample {placed.column('key')[i].as_py()} names shard {name!r}, which shards.parquet does "
                              "not list")  # fmt: skip
        if stop > size:
            raise _fail(path, f"sample {placed.column('key')[i].as_py()} ends at byte {stop}, past the end of shard {name!r} "
                              f"({size} bytes)")  # fmt: skip


__all__ = ["MAX_BYTES", "check_rows"]
