"""Ingest rows by position, one row group at a time: what a build reads instead of holding every row.

Why: a build used to turn every ingest row into pandas objects in the driver and hand all of them to every
worker (≈ 1.5 KB per sample, so ≈ 1.5 GB for 10⁶ RadChar frames before a byte was written). Now the driver keeps
only the index columns (key, split, class, sizes, and where the row is: ingest directory and row number), and the
planner's scan, each shard worker and the index writer read the rows they need from the ingest's
``samples.parquet`` — together with the sample store's ``units/index.parquet``, written row for row in the same
order — a row group (65,536 rows) at a time. The last few decoded groups are kept, so reading positions in
increasing order (the scan, the index writer, a shard of consecutive keys) decodes each group once.
"""

from __future__ import annotations

import functools
from collections import OrderedDict, namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sardata.errors import ShardIntegrityError
from sardata.store import INDEX

#: the store index's columns, as they appear beside a sample's row
STORE_COLUMNS = {"pack": "store_pack", "offset": "store_offset", "sizes": "store_sizes", "xxh3": "store_xxh3"}


class RowGroups:
    """Rows of the ingest outputs ``dirs`` by (directory number, row number), with their store location."""

    def __init__(self, dirs: list[Path], columns: list[str] | None = None, cache: int = 3) -> None:
        import pyarrow.parquet as pq

        if columns is not None and "store_path" not in columns:
            columns = [*columns, "store_path"]
        self.dirs, self.columns, self._max = [Path(d) for d in dirs], columns, cache
        self._files = [(pq.ParquetFile(d / "samples.parquet"), _index_file(d)) for d in self.dirs]
        self._starts = [_starts(f) for f, _ in self._files]
        for d, (_, index), starts in zip(self.dirs, self._files, self._starts, strict=True):  # row for row
            n_samples, n_index = int(starts[-1]), index.metadata.num_rows
            if n_samples != n_index:
                raise ShardIntegrityError(
                    f"{d / 'samples.parquet'} has {n_samples} rows but the sample store index {d / INDEX} has "
                    f"{n_index}: the ingest output was edited or mixed up; rerun the same `sardata ingest` command"
                )
        self._cache: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()

    def num_rows(self, d: int) -> int:
        return int(self._starts[d][-1])

    def start(self, d: int, g: int) -> int:
        """Row number of the first row of group ``g`` (``g`` = the number of groups: the row count)."""
        return int(self._starts[d][g])

    def groups(self, d: int) -> int:
        return len(self._starts[d]) - 1

    def group(self, d: int, g: int) -> pa.Table:
        """Row group ``g`` of directory ``d`` (samples columns + store location), decoded once while cached."""
        hit = self._cache.get((d, g))
        if hit is not None:
            self._cache.move_to_end((d, g))
            return hit
        samples, index = self._files[d]
        cols = None if self.columns is None else [c for c in self.columns if c in samples.schema_arrow.names]
        table = samples.read_row_group(g, columns=cols)
        start, stop = (int(x) for x in self._starts[d][g : g + 2])
        loc = _index_rows(index, start, stop)
        if not pc.all(pc.equal(loc.column("store_path"), table.column("store_path"))).as_py():
            raise ShardIntegrityError(f"{self.dirs[d]}: {INDEX} does not match samples.parquet; rerun `sardata ingest`")
        for src, dst in STORE_COLUMNS.items():
            table = table.append_column(dst, loc.column(src))
        self._cache[(d, g)] = table
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return table

    def take(self, d: int, rows: np.ndarray) -> pa.Table:
        """The rows ``rows`` (any order) of directory ``d``."""
        rows = np.asarray(rows, dtype=np.int64)
        groups = np.searchsorted(self._starts[d], rows, side="right") - 1
        parts, order = [], []
        for g in np.unique(groups):
            sel = np.nonzero(groups == g)[0]
            local = rows[sel] - self._starts[d][g]
            contiguous = len(local) and local[-1] - local[0] == len(local) - 1 and bool(np.all(np.diff(local) == 1))
            group = self.group(d, int(g))
            parts.append(group.slice(int(local[0]), len(local)) if contiguous else group.take(pa.array(local)))
            order.append(sel)
        if not parts:
            return self.group(d, 0).slice(0, 0) if self.groups(d) else pa.table({})
        table = pa.concat_tables(parts)
        order_all = np.concatenate(order)
        if np.all(order_all[:-1] < order_all[1:]):  # asked in increasing order: no reordering copy
            return table
        return table.take(pa.array(np.argsort(order_all, kind="stable")))


def _starts(f: Any) -> np.ndarray:
    md = f.metadata
    return np.cumsum([0, *(md.row_group(i).num_rows for i in range(md.num_row_groups))])


def _index_file(d: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(d / INDEX)
    except OSError as exc:
        raise ShardIntegrityError(
            f"{d}: no sample store index ({INDEX}): an ingest of an older sardata (one file per input) or an "
            "unfinished one; rerun the same `sardata ingest` command"
        ) from exc


def _index_rows(index: Any, start: int, stop: int) -> pa.Table:
    """Rows ``start:stop`` of a store index (its row groups need not match the samples table's)."""
    starts = _starts(index)
    first, last = np.searchsorted(starts, start, side="right") - 1, np.searchsorted(starts, stop, side="left")
    table = index.read_row_groups(list(range(int(first), int(last))))
    return table.slice(start - int(starts[first]), stop - start)


@functools.lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]) -> type:
    """One named-tuple class per column set (making the class costs ≈ 250 µs)."""
    return namedtuple("Row", names, rename=True)  # noqa: PYI024 - fields are the table's columns


def as_rows(table: pa.Table, **extra: Any) -> list[Any]:
    """The rows of ``table`` as named tuples (attribute access, as :class:`~sardata.shards.sample.OutputSample`
    reads them), each with the constant columns ``extra``."""
    row = _row_type((*table.column_names, *extra))
    cols = [table.column(n).to_pylist() for n in table.column_names]
    consts = [[v] * table.num_rows for v in extra.values()]
    return [row(*values) for values in zip(*cols, *consts, strict=True)]


__all__ = ["STORE_COLUMNS", "RowGroups", "as_rows"]
