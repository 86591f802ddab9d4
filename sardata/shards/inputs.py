"""The rows a build starts from: the ingest outputs read and validated, the selection (``where``), each selected
sample's size in the tar, and the split/view columns — all computed from the manifests alone, before any array is
read.

Only the *index columns* of the selected rows stay in memory (:data:`INDEX_COLUMNS` plus the ``holdout`` column,
the views and ``payload``, the bytes the sample's members take in a tar): the scan reads the ingest tables a row
group at a time (:mod:`sardata.shards.rows`), evaluates ``where`` and the sizes per group and keeps where each
selected row lives (``dir``, ``row``), so the rest of a row is read again only by the worker that writes it and by
the index writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sardata.errors import ConfigError
from sardata.manifest import splits as splitlib
from sardata.manifest.io import read_card, read_table
from sardata.manifest.schema import OPTIONAL_COLUMNS, SAMPLES
from sardata.shards.config import BuildConfig
from sardata.shards.rows import RowGroups, as_rows
from sardata.shards.sample import ROW_COLUMNS, OutputSample
from sardata.shards.writer import member_bytes

#: the columns of the selected rows kept in memory (splits, views, the card)
INDEX_COLUMNS = ["key", "split", "source", "label", "label_name"]


@dataclass(frozen=True)
class Inputs:
    """The ingest outputs of one build (their ``samples`` tables stay on disk)."""

    dirs: list[Path]
    sources: pa.Table
    identities: list[dict]  # per source: id, version, ingest config and samples-table hashes (into config_sha256)
    class_maps: dict[str, list[str]]


def load_inputs(ingest_dirs: list[Path]) -> Inputs:
    """Read and validate the ingest outputs' cards and ``sources`` tables; refuse disagreeing class maps."""
    sources, identities, class_maps = [], [], {}
    for d in ingest_dirs:
        card = read_card(d)
        _check_schema(d / "samples.parquet")
        sources.append(read_table(d / "sources.parquet", "sources"))
        identities += [{**src, "ingest_config_sha256": card["config_sha256"],
                        "samples_sha256": card["tables"]["samples"]["sha256"]} for src in card["sources"]]  # fmt: skip
        for src, names in card.get("class_maps", {}).items():
            if class_maps.setdefault(src, names) != names:
                raise ConfigError(f"{d}: class map of {src} differs from another input; ingest with the same options")
    return Inputs([Path(d) for d in ingest_dirs], pa.concat_tables(sources), identities, class_maps)


def _check_schema(path: Path) -> None:
    """The samples table's schema, checked without reading its rows (keys are checked by :func:`scan`)."""
    import pyarrow.parquet as pq

    from sardata.manifest.io import validate_schema

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError):
        read_table(path, "samples")  # its error names the missing or unreadable table
        raise
    validate_schema(schema, "samples", path)


@dataclass
class Selection:
    """The selected rows' index columns sorted by key (``dir``, ``row``: where each lives; ``payload``: its tar
    bytes) and the optional columns some selected row sets (written to the index, see ``OPTIONAL_COLUMNS``)."""

    frame: pd.DataFrame
    optional: set[str]


def scan(inputs: Inputs, cfg: BuildConfig, extra: tuple[str, ...] = ()) -> Selection:
    """Select rows (``cfg.where``) and size them, a row group at a time; refuse duplicate keys across inputs, an
    empty selection and (unless normalised) mixed radiometry/scale. ``extra``: more columns to keep."""
    rows = RowGroups(inputs.dirs, None if cfg.where else _scan_columns(cfg, extra), cache=1)
    holdout = [cfg.holdout.partition("=")[0]] if cfg.holdout and "=" in cfg.holdout else []
    keep = [c for c in dict.fromkeys([*INDEX_COLUMNS, *holdout, *extra]) if c in SAMPLES.names]
    frames, keys, scales, optional = [], [], set(), set()
    for d, root in enumerate(inputs.dirs):
        for g in range(rows.groups(d)):
            table = rows.group(d, g)
            keys.append(table.column("key"))
            mask = _where(table, cfg, root, inputs.dirs)
            table = table.filter(pa.array(mask)) if mask is not None else table
            if not table.num_rows:
                continue
            idx = np.arange(rows.start(d, g), rows.start(d, g + 1))
            idx = idx[mask] if mask is not None else idx
            optional.update(c for c in OPTIONAL_COLUMNS.get("samples", {}) if c in table.column_names
                            and table.column(c).null_count < table.num_rows)  # fmt: skip
            scales.update(zip(table.column("radiometry").to_pylist(), table.column("scale").to_pylist(), strict=True))
            frame = table.select(keep).to_pandas()
            frame["dir"], frame["row"] = d, idx
            frame["payload"] = _payloads(table, cfg, root)
            frames.append(frame)
    _check_keys(keys)
    if not frames:
        listed = ", ".join(str(d / "samples.parquet") for d in inputs.dirs)
        raise ConfigError(f"the selection is empty ({listed}); check --where and that the inputs hold ok samples")
    mixed = sorted({f"{r}/{s}" for r, s in scales})
    if len(mixed) > 1 and cfg.normalise is None:
        raise ConfigError(
            f"the selection mixes radiometry/scale {mixed}; select one with --where (e.g. \"scale == 'uint8'\") "
            "or convert them with --normalise unit-magnitude"
        )
    frame = pd.concat(frames, ignore_index=True)
    del frames
    pa.default_memory_pool().release_unused()
    return Selection(frame.sort_values("key", ignore_index=True), optional)


def _scan_columns(cfg: BuildConfig, extra: tuple[str, ...]) -> list[str]:
    """The columns the scan reads when there is no ``where`` (which may name any column)."""
    holdout = [cfg.holdout.partition("=")[0]] if cfg.holdout and "=" in cfg.holdout else []
    cols = [*INDEX_COLUMNS, *holdout, *extra, *ROW_COLUMNS, *OPTIONAL_COLUMNS.get("samples", {})]
    return [c for c in dict.fromkeys(cols) if c in SAMPLES.names]


def _where(table: pa.Table, cfg: BuildConfig, root: Path, dirs: list[Path]) -> np.ndarray | None:
    """``cfg.where`` evaluated on one row group (no code runs: :mod:`sardata.manifest.where`)."""
    if not cfg.where:
        return None
    from sardata.manifest.where import where_mask

    frame = table.drop_columns([c for c in table.column_names if c.startswith("store_")]).to_pandas()
    frame["ingest_root"] = str(root)
    try:
        return np.asarray(where_mask(frame, cfg.where), dtype=bool)
    except Exception as exc:  # pandas raises many types for a bad expression
        raise ConfigError(f"--where {cfg.where!r}: {exc} (columns: {', '.join(SAMPLES.names)})") from exc


def _payloads(table: pa.Table, cfg: BuildConfig, root: Path) -> np.ndarray:
    """Bytes each row's members take in a tar (headers and padding included)."""
    cols = [c for c in ROW_COLUMNS if c in table.column_names] + ["store_sizes"]
    out = np.zeros(table.num_rows, dtype=np.int64)
    for lo in range(0, table.num_rows, 4096):  # a few thousand row objects alive at a time
        rows = as_rows(table.select(cols).slice(lo, 4096), ingest_root=str(root))
        out[lo : lo + len(rows)] = [sum(member_bytes(n) for n in OutputSample(r, cfg).sizes().values()) for r in rows]
    return out


def _check_keys(keys: list[pa.ChunkedArray]) -> None:
    every = pa.chunked_array([c for k in keys for c in k.chunks], pa.string())
    if pc.count_distinct(every).as_py() != len(every):
        counts = pc.value_counts(every)
        dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))[0].as_py()
        raise ConfigError(f"key {dup!r} occurs in more than one input; build each source once")


def add_splits(df: pd.DataFrame, cfg: BuildConfig) -> pd.DataFrame:
    """``split`` and the view columns (``split_fewshot_*``, ``split_longtail``, ``split_radarpos20k``, holdout),
    set on ``df`` itself (the scan's frame, used by no one else: a copy would double the index columns)."""
    df["split"] = splitlib.assign_splits(df, cfg.test_ratio, cfg.val_ratio, cfg.split_seed)
    for name, col in splitlib.fewshot_columns(df, list(cfg.shots), list(cfg.seeds)).items():
        df[name] = col
    if cfg.long_tail:
        df["split_longtail"] = splitlib.long_tail_column(df, list(cfg.long_tail), cfg.long_tail_seed)
    if cfg.radarpos20k:
        df["split_radarpos20k"] = splitlib.radarpos_column(df, seed=cfg.radarpos_seed)
    if cfg.holdout:
        name, col = splitlib.holdout_column(df, cfg.holdout)
        df[name] = col
    return df


__all__ = ["INDEX_COLUMNS", "Inputs", "Selection", "add_splits", "load_inputs", "scan"]
