"""The rows a build starts from: the ingest outputs read and validated, the selection (``where``) and the
split/view columns — all computed from the manifests alone, before any array is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from sardata.errors import ConfigError
from sardata.manifest import splits as splitlib
from sardata.manifest.io import read_card, read_table
from sardata.manifest.schema import SAMPLES
from sardata.shards.config import BuildConfig


@dataclass(frozen=True)
class Inputs:
    """The ingest outputs of one build, concatenated (``samples`` carries each row's ``ingest_root``)."""

    samples: pd.DataFrame
    sources: pa.Table
    identities: list[dict]  # per source: id, version, ingest config and samples-table hashes (into config_sha256)
    class_maps: dict[str, list[str]]


def load_inputs(ingest_dirs: list[Path]) -> Inputs:
    """Read and validate the ingest outputs; refuse disagreeing class maps and keys present in two inputs."""
    frames, sources, identities, class_maps = [], [], [], {}
    for d in ingest_dirs:
        card = read_card(d)
        samples = read_table(d / "samples.parquet", "samples").to_pandas()
        samples["ingest_root"] = str(d)
        frames.append(samples)
        sources.append(read_table(d / "sources.parquet", "sources"))
        identities += [{**src, "ingest_config_sha256": card["config_sha256"],
                        "samples_sha256": card["tables"]["samples"]["sha256"]} for src in card["sources"]]  # fmt: skip
        for src, names in card.get("class_maps", {}).items():
            if class_maps.setdefault(src, names) != names:
                raise ConfigError(f"{d}: class map of {src} differs from another input; ingest with the same options")
    df = pd.concat(frames, ignore_index=True)
    dup = df["key"][df["key"].duplicated()]
    if len(dup):
        raise ConfigError(f"key {dup.iloc[0]!r} occurs in more than one input; build each source once")
    return Inputs(df, pa.concat_tables(sources), identities, class_maps)


def select(df: pd.DataFrame, cfg: BuildConfig, dirs: list[Path]) -> pd.DataFrame:
    """The rows ``cfg.where`` selects, sorted by key; refuse an empty selection and (unless normalised) mixed
    radiometry/scale."""
    if cfg.where:
        try:
            from sardata.manifest.where import filter_frame

            df = filter_frame(df, cfg.where)  # no code runs: sardata.manifest.where, not DataFrame.query
        except Exception as exc:  # pandas raises many types for a bad expression
            raise ConfigError(f"--where {cfg.where!r}: {exc} (columns: {', '.join(SAMPLES.names)})") from exc
    if df.empty:
        inputs = ", ".join(str(d / "samples.parquet") for d in dirs)
        raise ConfigError(f"the selection is empty ({inputs}); check --where and that the inputs hold ok samples")
    scales = sorted({f"{r}/{s}" for r, s in zip(df["radiometry"], df["scale"], strict=True)})
    if len(scales) > 1 and cfg.normalise is None:
        raise ConfigError(
            f"the selection mixes radiometry/scale {scales}; select one with --where (e.g. \"scale == 'uint8'\") "
            "or convert them with --normalise unit-magnitude"
        )
    return df.sort_values("key").reset_index(drop=True)


def add_splits(df: pd.DataFrame, cfg: BuildConfig) -> pd.DataFrame:
    """``split`` and the view columns (``split_fewshot_*``, ``split_longtail``, ``split_radarpos20k``, holdout)."""
    df = df.copy()
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


__all__ = ["Inputs", "add_splits", "load_inputs", "select"]
