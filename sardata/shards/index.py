"""The index of a built dataset: ``samples`` / ``shards`` / ``sources`` tables and ``dataset.json``.

Written on the driver from the per-shard results, in plan order (never completion order), so the index is
byte-identical for any number of workers and either engine; ``dataset.json`` is written last (the commit point).

``samples.parquet`` is written a row group (65,536 rows) at a time: the ingest columns of each group are read
again from the ingest outputs (:mod:`sardata.shards.rows`), the rest comes from the index columns the driver
holds (splits, views) and the shard results (where each sample landed). The columns the build adds beyond the
schema (``split_*`` views, ``x_*``) are converted from pandas for the whole selection at once, exactly as the
earlier whole-table writer did, so their types (and the file's bytes) do not depend on how the rows are grouped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import sardata
from sardata.atomic import atomic_path
from sardata.manifest.card import card_header, per_split_class, split_summary, table_entries
from sardata.manifest.io import SORTED_ROW_GROUP, write_card, write_table
from sardata.manifest.schema import OPTIONAL_COLUMNS, SAMPLES, SHARDS, SOURCES, with_metadata
from sardata.shards.codecs import FIELDS
from sardata.shards.config import BuildConfig
from sardata.shards.inputs import Inputs
from sardata.shards.plan import ShardPlan
from sardata.shards.rows import RowGroups
from sardata.store import complete

#: the input range GR targets are computed on when images are not normalised
GR_INPUT = "uint8/255; radiometric/max"
LOCATED = ["shard", "shard_pos", "sample_offset", "sample_bytes", "members", "sample_sha256"]


def write_index(
    out: Path,
    df: pd.DataFrame,
    order: np.ndarray,
    optional: set[str],
    inputs: Inputs,
    plans: list[ShardPlan],
    results: list[dict[str, Any]],
    cfg: BuildConfig,
    config: dict[str, Any],
    cfg_sha: str,
) -> dict[str, Any]:
    """Write the three tables and then ``dataset.json`` for the selected rows ``df`` (index columns, sorted by
    key; ``order``: the ``df`` row of each planned sample, plan order; ``optional``: optional columns some row
    sets); return the card."""
    by_name = {r["name"]: r for r in results}
    located = _located(plans, by_name)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    extras = _extras(df, by_name, cfg)
    _write_samples(out, df, optional, inputs, plans, (located, inverse), extras, cfg, cfg_sha)
    shard_rows = [{"shard": p.name, "path": f"shards/{p.name}", "split": p.split, "shard_index": p.index,
                   "n_samples": len(p.keys), "bytes": by_name[p.name]["nbytes"], "sha256": by_name[p.name]["sha256"],
                   "xxh3_128": by_name[p.name]["xxh3_128"], "first_key": p.keys[0], "last_key": p.keys[-1]} for p in plans]  # fmt: skip
    write_table(pa.Table.from_pylist(shard_rows, schema=SHARDS), out / "shards.parquet", "shards", cfg_sha)
    write_table(inputs.sources.cast(SOURCES), out / "sources.parquet", "sources", cfg_sha)
    members = pa.concat_arrays([c.flatten() for c in located.column("members").chunks]) if len(located) else None
    fields = sorted(set(pc.unique(members.field("field")).to_pylist())) if members is not None else []
    card = _card(out, df, fields, inputs, plans, by_name, cfg, config, cfg_sha)
    write_card(out, card)
    return card


def _located(plans: list[ShardPlan], by_name: dict[str, dict]) -> pa.Table:
    """Where each planned sample landed, in plan order: plan number, position, offsets, members, sha256 (raw 32
    bytes; shard names and hex digests are made per row group when written). The shard results' tables are
    taken over, not copied: they are the only per-sample record of the shards the driver holds."""
    parts = []
    for i, plan in enumerate(plans):
        t = by_name[plan.name].pop("table")
        parts.append(pa.table({"plan": pa.array(np.full(t.num_rows, i, dtype=np.int32)),
                               "shard_pos": pa.array(np.arange(t.num_rows, dtype=np.int32)),
                               "sample_offset": t.column("offset"), "sample_bytes": t.column("nbytes"),
                               "members": t.column("members").cast(SAMPLES.field("members").type),
                               "sample_sha256": t.column("sha256")}))  # fmt: skip
    return pa.concat_tables(parts)


def _extras(df: pd.DataFrame, by_name: dict[str, dict], cfg: BuildConfig) -> pa.Table:
    """The columns beyond the schema (views, ``x_*``), built in pandas and converted once, as before."""
    frame = df[[c for c in df.columns if c.startswith("split_")]].copy()
    if cfg.channel is not None:
        frame["x_channel"] = cfg.channel
    if cfg.normalise:
        extras = {k: e for r in by_name.values() for k, e in r["extras"].items()}
        for col in ("x_norm_scale", "x_src_radiometry", "x_src_scale"):
            frame[col] = df["key"].map(lambda k, c=col: extras[k][c])
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def _schema(df: pd.DataFrame, optional: set[str], extras: pa.Table, cfg_sha: str) -> pa.Schema:
    """The written schema: the declared one (less unused optional columns) plus the extra columns."""
    schema = SAMPLES
    for col in OPTIONAL_COLUMNS.get("samples", {}):
        if col not in optional:
            schema = schema.remove(schema.get_field_index(col))
    for f in extras.schema:
        schema = schema.append(f)
    return with_metadata(schema, "samples", cfg_sha)


def _write_samples(out: Path, df: pd.DataFrame, optional: set[str], inputs: Inputs, plans: list[ShardPlan],
                   located: tuple[pa.Table, np.ndarray], extras: pa.Table, cfg: BuildConfig, cfg_sha: str) -> None:  # fmt: skip
    """``samples.parquet``, one row group at a time (the bytes of the earlier whole-table write)."""
    import pyarrow.parquet as pq

    schema = _schema(df, optional, extras, cfg_sha)
    names = [p.name for p in plans]
    rows = RowGroups(inputs.dirs, None, cache=1)  # read in order: one decoded group at a time
    full = pa.unify_schemas([SAMPLES, *(pa.schema([f]) for f in extras.schema)])
    with (
        atomic_path(out / "samples.parquet", fsync=True) as tmp,
        pq.ParquetWriter(tmp, schema, compression="zstd") as w,
    ):
        for lo in range(0, max(1, len(df)), SORTED_ROW_GROUP):
            part = df.iloc[lo : lo + SORTED_ROW_GROUP]
            table = _ingest_rows(rows, part["dir"].to_numpy(), part["row"].to_numpy())
            here = located[0].take(pa.array(located[1][lo : lo + len(part)]))  # this row group, in key order
            table = _built_columns(table, part, here, names, cfg)
            for f in extras.schema:
                table = table.append_column(f, extras.column(f.name).slice(lo, len(part)))
            w.write_table(complete(table, full, schema.names).cast(schema).combine_chunks())
            pa.default_memory_pool().release_unused()  # give the row group's buffers back before the next one


def _ingest_rows(rows: RowGroups, dirs: np.ndarray, positions: np.ndarray) -> pa.Table:
    """The ingest rows at (``dirs``, ``positions``), in that order, as the full samples schema."""
    if len(np.unique(dirs)) == 1:
        return complete(rows.take(int(dirs[0]), positions), SAMPLES)
    parts, order = [], []
    for d in np.unique(dirs):
        sel = np.nonzero(dirs == d)[0]
        parts.append(complete(rows.take(int(d), positions[sel]), SAMPLES))
        order.append(sel)
    table = pa.concat_tables(parts)
    return table.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))


def _built_columns(
    table: pa.Table, part: pd.DataFrame, located: pa.Table, names: list[str], cfg: BuildConfig
) -> pa.Table:
    """The columns the build sets: split, where each sample sits in its shard, its fields, and the columns the
    build changed (size, channel, normalisation, GR version); the store path no longer applies."""
    from sardata.features.grcodec import GR_VERSION

    n = table.num_rows
    values: dict[str, Any] = {"split": part["split"].to_numpy(dtype=object).tolist()}
    values |= {c: located.column(c) for c in LOCATED if c not in ("shard", "sample_sha256")}
    values["shard"] = [names[i] for i in located.column("plan").to_pylist()]
    values["sample_sha256"] = [d.hex() for d in located.column("sample_sha256").to_pylist()]
    values["fields"] = [sorted(m["field"].split(".")[0] for m in ms) for ms in located.column("members").to_pylist()]
    if cfg.size_policy != "keep":
        values["height"] = values["width"] = [int(cfg.size)] * n
    if cfg.channel is not None:
        values["channels"] = [1] * n
    if cfg.normalise:
        values |= {"radiometry": ["magnitude"] * n, "scale": ["unit"] * n, "dtype": ["float32"] * n}
    values["gr_version"] = [GR_VERSION if "gr" in cfg.targets else None] * n
    values["store_path"] = [None] * n
    for col, v in values.items():
        arr = v if isinstance(v, pa.ChunkedArray) else pa.array(v, SAMPLES.field(col).type)
        table = table.set_column(table.schema.get_field_index(col), col, arr)
    return table


def _card(
    out: Path,
    df: pd.DataFrame,
    fields: list[str],
    inputs: Inputs,
    plans: list[ShardPlan],
    by_name: dict[str, dict],
    cfg: BuildConfig,
    config: dict[str, Any],
    cfg_sha: str,
) -> dict[str, Any]:
    """``dataset.json``: provenance, configuration, per-split counts, fields, features, views, table hashes."""
    return {
        **card_header("dataset", config, cfg_sha, git_sha=_git_sha()),
        "sources": inputs.identities,
        "splits": split_summary(df["split"], [p.split for p in plans], [by_name[p.name]["nbytes"] for p in plans]),
        "fields": {
            name: {"encoding": FIELDS[name.split(".")[0]].encoding, "meaning": FIELDS[name.split(".")[0]].meaning}
            for name in fields
        },
        "features": _features_card(cfg),
        "class_maps": inputs.class_maps,
        "normalisation": _normalisation_card(cfg),
        "views": sorted(c for c in df.columns if c.startswith("split_")),
        "view_warnings": _short_views(df),
        "counts": {"per_split_class": per_split_class(df)},
        "tables": table_entries(out, {"samples": len(df), "shards": len(plans), "sources": inputs.sources.num_rows}),
    }


def _features_card(cfg: BuildConfig) -> dict[str, Any]:
    """Parameters of the precomputed targets (``gr``), which a loader or merge must agree with."""
    if "gr" not in cfg.targets:
        return {}
    from sardata.features.grcodec import GR_EPS, GR_VERSION

    return {
        "gr": {
            "version": GR_VERSION,
            "radii": list(cfg.resolved_gr_radii),
            "eps": GR_EPS,
            "padding": "reflect",
            "dtype": cfg.gr_codec,
            "mode": "precomputed",
            "normalisation": GR_INPUT,
        }
    }


def _normalisation_card(cfg: BuildConfig) -> dict[str, Any]:
    """How stored images relate to the source values, and how to invert a normalisation."""
    if not cfg.normalise:
        return {"policy": None, "gr_input": GR_INPUT}
    from sardata.radiometry import POLICY

    return {"policy": POLICY, "per_sample_reference": "x_norm_scale", "source_columns": ["x_src_radiometry", "x_src_scale"],
            "inverse": "sardata.radiometry.from_unit_magnitude(img, x_norm_scale, x_src_radiometry, x_src_scale)"}  # fmt: skip


def _short_views(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Few-shot views where a class has fewer than K training shots (the protocol then takes all it has)."""
    out = {}
    for col in (c for c in df.columns if c.startswith("split_fewshot_k")):
        k = int(col.split("_k")[1].split("_")[0])
        counts = df.loc[df[col] == "train"].groupby("label_name").size()
        short = {str(c): int(n) for c, n in counts.items() if n < k}
        if short:
            out[col] = short
    return out


def _git_sha() -> str | None:
    """The checkout's commit, for provenance (``None`` outside a git checkout)."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(sardata.__file__).parent, capture_output=True,
                             text=True, timeout=5)  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


__all__ = ["write_index"]
