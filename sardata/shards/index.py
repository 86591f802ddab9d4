"""The index of a built dataset: ``samples`` / ``shards`` / ``sources`` tables and ``dataset.json``.

Written on the driver from the per-shard results, in plan order (never completion order), so the index is
byte-identical for any number of workers and either engine; ``dataset.json`` is written last (the commit point).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

import sardata
from sardata.manifest.card import card_header, per_split_class, split_summary, table_entries
from sardata.manifest.io import write_card, write_table
from sardata.manifest.schema import SHARDS, SOURCES
from sardata.shards.codecs import FIELDS
from sardata.shards.config import BuildConfig
from sardata.shards.inputs import Inputs
from sardata.shards.plan import ShardPlan

#: the input range GR targets are computed on when images are not normalised
GR_INPUT = "uint8/255; radiometric/max"


def write_index(
    out: Path,
    df: pd.DataFrame,
    inputs: Inputs,
    plans: list[ShardPlan],
    results: list[dict[str, Any]],
    cfg: BuildConfig,
    config: dict[str, Any],
    cfg_sha: str,
) -> dict[str, Any]:
    """Write the three tables and then ``dataset.json`` for the selected rows ``df``; return the card."""
    by_name = {r["name"]: r for r in results}
    df = _located(df, plans, by_name, cfg)
    write_table(pa.Table.from_pandas(df, preserve_index=False), out / "samples.parquet", "samples", cfg_sha)
    shard_rows = [{"shard": p.name, "path": f"shards/{p.name}", "split": p.split, "shard_index": p.index,
                   "n_samples": len(p.keys), "bytes": by_name[p.name]["nbytes"], "sha256": by_name[p.name]["sha256"],
                   "xxh3_128": by_name[p.name]["xxh3_128"], "first_key": p.keys[0], "last_key": p.keys[-1]} for p in plans]  # fmt: skip
    write_table(pa.Table.from_pylist(shard_rows, schema=SHARDS), out / "shards.parquet", "shards", cfg_sha)
    write_table(inputs.sources.cast(SOURCES), out / "sources.parquet", "sources", cfg_sha)
    card = _card(out, df, inputs, plans, by_name, cfg, config, cfg_sha)
    write_card(out, card)
    return card


def _located(df: pd.DataFrame, plans: list[ShardPlan], by_name: dict[str, dict], cfg: BuildConfig) -> pd.DataFrame:
    """The ``samples`` rows as built: where each sample sits in its shard, its fields, and the columns the build
    changed (size, channel, normalisation, GR version); the store path no longer applies."""
    from sardata.features.grcodec import GR_VERSION

    loc: dict[str, dict] = {}
    for plan in plans:
        for pos, s in enumerate(by_name[plan.name]["samples"]):
            loc[s["key"]] = {"shard": plan.name, "shard_pos": pos, "sample_offset": s["offset"],
                             "sample_bytes": s["nbytes"], "members": s["members"], "sample_sha256": s["sha256"]}  # fmt: skip
    df = df.copy()
    for col in ("shard", "shard_pos", "sample_offset", "sample_bytes", "members", "sample_sha256"):
        df[col] = df["key"].map(lambda k, c=col: loc[k][c])
    df["fields"] = df["members"].map(lambda ms: sorted(m["field"].split(".")[0] for m in ms))
    if cfg.size_policy != "keep":
        df["height"] = df["width"] = int(cfg.size)
    if cfg.channel is not None:
        df["x_channel"] = cfg.channel
        df["channels"] = 1
    if cfg.normalise:
        extras = {k: e for r in by_name.values() for k, e in r["extras"].items()}
        for col in ("x_norm_scale", "x_src_radiometry", "x_src_scale"):
            df[col] = df["key"].map(lambda k, c=col: extras[k][c])
        df["radiometry"], df["scale"], df["dtype"] = "magnitude", "unit", "float32"
    df["gr_version"] = GR_VERSION if "gr" in cfg.targets else None
    df["store_path"] = None
    return df.drop(columns=["ingest_root"])


def _card(
    out: Path,
    df: pd.DataFrame,
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
            for name in sorted({m["field"] for ms in df["members"] for m in ms})
        },  # fmt: skip
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
