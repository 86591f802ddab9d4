"""The end of an ingest: the committed packs merged into ``samples.parquet`` / ``sources.parquet``, the store
index ``units/index.parquet`` and ``dataset.json`` (written last: the commit point), and :func:`load_ingest` to
read them back.

The tables are fully sorted (samples by key, sources by path and member), so they are byte-identical whichever
packs hold the inputs: any number of workers, either engine, a resumed run. Memory stays bounded by the key
column: pass 1 reads only ``key``/``src_path``/``sub_index`` of every pack to resolve key collisions and to see
whether rows already arrive in key order; pass 2 streams each pack's rows through :mod:`sardata.ingest.sort`
into the writers one row group at a time. The ``sources`` table (one row per input file, ≈ 0.2 KB) is sorted in
memory as Arrow columns.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from sardata.atomic import atomic_path
from sardata.errors import ConfigError
from sardata.ingest.sort import RUN_ROWS, sorted_by_key
from sardata.manifest.card import card_header, table_entries
from sardata.manifest.io import SORTED_ROW_GROUP, read_table, write_card, write_table
from sardata.manifest.keys import hashed_key
from sardata.manifest.schema import OPTIONAL_COLUMNS, SAMPLES, SOURCES, with_metadata
from sardata.sources import Source
from sardata.store import INDEX, INDEX_SCHEMA, iter_pack_rows, pack_path, read_pack_sources

CACHE_ROWS = RUN_ROWS  # rows of pass 1 kept in memory for pass 2


@dataclass
class Merged:
    """What the merge wrote: the sample count and the ``sources`` table (one row per input file and member)."""

    samples: int
    sources: pa.Table


def merge_units(out: Path, live: dict[str, list[str]], source: Source, config: dict, cfg_sha: str, root: str) -> Merged:
    """Build the final tables from the packs in ``live`` (pack id → the inputs it holds for this run, packs in
    listing order; a pack may also hold stale inputs, redone elsewhere) and write ``dataset.json`` last."""
    packs = _Packs(out, live)
    sources = _sources(out, list(live), live)
    keys, presorted, schema = _keys(packs, source.id)
    counts: dict[str, Counter] = {"split": Counter(), "label_name": Counter()}
    n = _write_samples(out, _rows(packs, keys), presorted, with_metadata(schema, "samples", cfg_sha), counts)
    write_table(sources, out / "sources.parquet", "sources", cfg_sha)
    status = Counter(sources.filter(pc.is_null(sources.column("src_member"))).column("status").to_pylist())
    write_card(
        out,
        {
            **card_header("ingest", config, cfg_sha, input_root=root),
            "sources": [{"id": source.id, "version": source.version}],
            "class_maps": {source.id: source.class_names()},
            "counts": {
                "files": {s: status.get(s, 0) for s in ("ok", "rejected", "skipped")},
                "samples": n,
                "per_split": {str(k): v for k, v in sorted(counts["split"].items())},
                "per_class": {str(k): v for k, v in sorted(counts["label_name"].items())},
            },
            "tables": table_entries(out, {"samples": n, "sources": sources.num_rows}),
        },
    )
    return Merged(n, sources)


def _damaged(out: Path, pack: str, exc: Exception) -> ConfigError:
    """Remove a pack that cannot be read (so that the rerun redoes its inputs instead of trusting it)."""
    path = pack_path(out, pack)
    path.unlink(missing_ok=True)
    return ConfigError(f"{path}: pack missing or damaged ({exc}); rerun the same ingest command")


def _live(table: pa.Table, rels: list[str]) -> pa.Table:
    """The rows of ``table`` that belong to inputs this run assigned to the pack."""
    return table.filter(pc.is_in(table.column("src_path"), pa.array(rels, pa.string())))


def _sources(out: Path, packs: list[str], live: dict[str, list[str]]) -> pa.Table:
    parts = []
    for pack in packs:
        got = read_pack_sources(out, pack, SOURCES)
        if got is None:
            raise _damaged(out, pack, ValueError("unreadable sources table"))
        parts.append(_live(got[1], live[pack]))
    table = pa.concat_tables(parts) if parts else SOURCES.empty_table()
    member = pc.if_else(pc.is_null(table.column("src_member")), "", table.column("src_member"))
    order = pc.sort_indices(
        pa.table({"p": table.column("src_path"), "m": member}), [("p", "ascending"), ("m", "ascending")]
    )
    # = sorted by (src_path, src_member or ""), stable: a file's own row first, then its members
    return table.take(order).combine_chunks()


class _Packs:
    """The live rows of the packs, read for both passes; whole tables of the first packs (up to
    :data:`CACHE_ROWS` rows) are kept from pass 1 to pass 2, so a small ingest reads each pack once."""

    def __init__(self, out: Path, live: dict[str, list[str]]) -> None:
        self.out, self.live, self.ids = out, live, list(live)
        self._cache: dict[str, pa.Table] = {}
        self._cached = 0

    def read(self, pack: str, columns: list[str] | None = None) -> pa.Table:
        hit = self._cache.pop(pack, None) if columns is None else self._cache.get(pack)
        if hit is not None:
            return hit if columns is None else hit.select(columns)
        room = CACHE_ROWS - self._cached if columns is not None else 0
        try:  # a pack that fits what is left of the cache is read whole
            table = _live(pa.concat_tables(iter_pack_rows(self.out, pack, SAMPLES, columns, room)), self.live[pack])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:  # Parquet's errors derive from these
            raise _damaged(self.out, pack, exc) from exc
        if columns is not None and table.num_columns > len(columns):
            self._cache[pack] = table
            self._cached += table.num_rows
            return table.select(columns)
        return table

    def stream(self, pack: str) -> Iterator[pa.Table]:
        """The pack's live rows, all columns: the cached table, else a row group at a time."""
        hit = self._cache.pop(pack, None)
        if hit is not None:
            yield hit
            return
        try:
            for table in iter_pack_rows(self.out, pack, SAMPLES):
                yield _live(table, self.live[pack])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise _damaged(self.out, pack, exc) from exc


def _keys(packs: _Packs, source_id: str) -> tuple[dict, bool, pa.Schema]:
    """Each pack's final keys (colliding keys get their hashed form, ``data-contract.md`` §1.3), whether the
    rows, pack after pack, are already in key order, and the written schema (as ``write_table`` writes it: an
    optional column without a value in any row is left out)."""
    raw: dict[str, pa.Table] = {}
    optional = sorted(OPTIONAL_COLUMNS.get("samples", {}))
    used: set[str] = set()
    for pack in packs.ids:
        table = packs.read(pack, ["key", "src_path", "sub_index", *optional])
        used.update(c for c in optional if table.column(c).null_count < table.num_rows)
        raw[pack] = table.select(["key", "src_path", "sub_index"])
    every = pa.chunked_array([t.column("key") for t in raw.values()], pa.string())
    counts = pc.value_counts(every)
    dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    keys = {pack: _fixed(t, dup, source_id) for pack, t in raw.items()}
    every = pa.chunked_array(list(keys.values()), pa.string())
    if len(dup) and pc.count_distinct(every).as_py() != len(every):
        repeated = pc.value_counts(every)
        raise ValueError(
            f"key collision cannot be resolved for {repeated.field('values').filter(pc.greater(repeated.field('counts'), 1))[:3]}"
        )
    flat = every.combine_chunks()
    presorted = len(flat) < 2 or pc.all(pc.less(flat[:-1], flat[1:])).as_py()
    schema = SAMPLES
    for col in optional:
        if col not in used:
            schema = schema.remove(schema.get_field_index(col))
    return keys, bool(presorted), schema


def _fixed(table: pa.Table, dup: pa.Array, source_id: str) -> pa.Array:
    keys = table.column("key").combine_chunks()
    if not len(dup):
        return keys
    hit = pc.is_in(keys, dup).to_pylist()
    if not any(hit):
        return keys
    rels, subs, raw = table.column("src_path").to_pylist(), table.column("sub_index").to_pylist(), keys.to_pylist()
    fixed = [hashed_key(k, source_id, r, s) if h else k for k, r, s, h in zip(raw, rels, subs, hit, strict=True)]
    return pa.array(fixed, pa.string())


def _rows(packs: _Packs, keys: dict[str, pa.Array]) -> Iterator[pa.Table]:
    """Every pack's live rows with their final keys and their pack id (pass 2), a row group at a time."""
    for pack in packs.ids:
        at = 0
        for table in packs.stream(pack):
            table = table.set_column(table.schema.get_field_index("key"), "key", keys[pack].slice(at, table.num_rows))
            at += table.num_rows
            yield table.append_column("store_pack", pa.array([pack] * table.num_rows, pa.string()))


def _write_samples(
    out: Path, rows: Iterator[pa.Table], presorted: bool, schema: pa.Schema, counts: dict[str, Counter]
) -> int:
    """Write ``samples.parquet`` (as ``write_table(..., sort_by="key")`` would: the same row groups and bytes)
    and the store index beside it, one row group at a time; count splits and classes for the card."""
    import pyarrow.parquet as pq

    n = 0
    with atomic_path(out / "samples.parquet", fsync=True) as tmp, atomic_path(out / INDEX) as tmp_index:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer, \
                pq.ParquetWriter(tmp_index, INDEX_SCHEMA, compression="zstd") as index:  # fmt: skip
            for group in sorted_by_key(rows, presorted, out, SORTED_ROW_GROUP):
                writer.write_table(group.select(schema.names).cast(schema))
                cols = ["store_path", "store_pack", "store_offset", "fields", "store_sizes", "store_xxh3"]
                index.write_table(pa.Table.from_arrays([group.column(c) for c in cols], schema=INDEX_SCHEMA))
                for col, counter in counts.items():
                    vc = pc.value_counts(group.column(col).drop_null())
                    counter.update(
                        dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))
                    )
                n += group.num_rows
            if n == 0:
                writer.write_table(schema.empty_table())
    return n


def load_ingest(out: str | os.PathLike[str]) -> tuple[pa.Table, pa.Table]:
    """Read and validate an ingest output's ``samples`` and ``sources`` tables."""
    out = Path(out)
    return read_table(out / "samples.parquet", "samples"), read_table(out / "sources.parquet", "sources")


__all__ = ["Merged", "load_ingest", "merge_units"]
