"""The end of an ingest: the committed unit files merged into ``samples.parquet`` / ``sources.parquet`` and
``dataset.json`` (written last: the commit point), and :func:`load_ingest` to read them back.

Units are merged in input-file order whatever order the engine finished them in, so the tables are byte-identical
for any number of workers and either engine.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pyarrow as pa

from sardata.errors import ConfigError
from sardata.manifest.card import card_header, table_entries
from sardata.manifest.io import read_table, write_card, write_table
from sardata.manifest.keys import hashed_key
from sardata.manifest.schema import SAMPLES, SOURCES
from sardata.sources import Source
from sardata.store import read_unit, unit_file, unit_id


def merge_units(
    out: Path, rels: list[str], source: Source, config: dict, cfg_sha: str, root: str
) -> tuple[pa.Table, pa.Table]:
    """Build the final tables from the unit files of ``rels`` and write ``dataset.json`` last; return the
    ``samples`` and ``sources`` tables (as merged, before ``samples`` is sorted on writing)."""
    tables, source_rows = [], []
    for rel in rels:
        uid = unit_id(rel)
        unit = read_unit(out, uid, SAMPLES)
        if unit is None:
            (out / unit_file(uid)).unlink(missing_ok=True)  # so that the rerun redoes it instead of trusting it
            raise ConfigError(f"{out / unit_file(uid)}: unit missing or damaged; rerun the same ingest command")
        part, rows = unit
        tables.append(rows)
        source_rows.append(part["source_row"])
        source_rows.extend(part.get("member_rows", []))
    samples = pa.concat_tables(tables) if tables else SAMPLES.empty_table()
    samples = _resolve_key_collisions(samples, source.id)  # sorted by key while written, a row group at a time
    sources = pa.Table.from_pylist(
        sorted(source_rows, key=lambda r: (r["src_path"], r["src_member"] or "")), schema=SOURCES
    )
    write_table(samples, out / "samples.parquet", "samples", cfg_sha, sort_by="key")
    write_table(sources, out / "sources.parquet", "sources", cfg_sha)
    write_card(out, _card(out, samples, sources, source, config, cfg_sha, root))
    return samples, sources


def _resolve_key_collisions(samples: pa.Table, source_id: str) -> pa.Table:
    """Give every key that occurs more than once its hash-suffixed form (``data-contract.md`` §1.3)."""
    import pyarrow.compute as pc

    if pc.count_distinct(samples.column("key")).as_py() == samples.num_rows:
        return samples  # the usual case, checked without a Python string per row
    keys = samples.column("key").to_pylist()
    counts = Counter(keys)
    rels = samples.column("src_path").to_pylist()
    subs = samples.column("sub_index").to_pylist()
    fixed = [hashed_key(k, source_id, r, s) if counts[k] > 1 else k for k, r, s in zip(keys, rels, subs, strict=True)]
    dup = [k for k, c in Counter(fixed).items() if c > 1]
    if dup:
        raise ValueError(f"key collision cannot be resolved for {dup[:3]}")
    return samples.set_column(samples.schema.get_field_index("key"), "key", pa.array(fixed, pa.string()))


def _card(
    out: Path, samples: pa.Table, sources: pa.Table, source: Source, config: dict, cfg_sha: str, root: str
) -> dict:
    df = samples.select(["split", "label_name"]).to_pandas()
    status = Counter(sources.column("status").to_pylist())
    return {
        **card_header("ingest", config, cfg_sha, input_root=root),
        "sources": [{"id": source.id, "version": source.version}],
        "class_maps": {source.id: source.class_names()},
        "counts": {
            "files": {s: status.get(s, 0) for s in ("ok", "rejected", "skipped")},
            "samples": int(samples.num_rows),
            "per_split": {k: int(v) for k, v in sorted(df["split"].value_counts().items())},
            "per_class": {str(k): int(v) for k, v in sorted(df["label_name"].dropna().value_counts().items())},
        },
        "tables": table_entries(out, {"samples": samples.num_rows, "sources": sources.num_rows}),
    }


def load_ingest(out: str | os.PathLike[str]) -> tuple[pa.Table, pa.Table]:
    """Read and validate an ingest output's ``samples`` and ``sources`` tables."""
    out = Path(out)
    return read_table(out / "samples.parquet", "samples"), read_table(out / "sources.parquet", "sources")


__all__ = ["load_ingest", "merge_units"]
