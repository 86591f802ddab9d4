"""``sardata build-shards``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sardata.cli._options import Workers, progress_bar

#: command options that are not BuildConfig fields (they say how to run, not what to build)
RUN_OPTIONS = ("ingest_dirs", "out", "workers", "overwrite", "engine")
#: command option → BuildConfig field, where the names differ
RENAMED = {"shard_size": "max_shard_bytes", "max_count": "max_shard_samples"}


def build_config(options: dict[str, Any]) -> Any:
    """The command's BuildConfig options (``10,20,40``, ``0-9`` text as typed) → ``BuildConfig``, converted by
    :func:`sardata.config.from_mapping` like a recipe's ``build-shards`` step. Unset options keep the dataclass
    defaults; ``--shots`` without ``--seeds`` means seed 0."""
    from sardata.config import from_mapping
    from sardata.shards.build import BuildConfig

    mapping = {RENAMED.get(k, k): v for k, v in options.items() if v is not None and k not in RUN_OPTIONS}
    if mapping.get("shots") and not mapping.get("seeds"):
        mapping["seeds"] = "0"
    return from_mapping(BuildConfig, mapping, where="build-shards", noun="option")


def build_shards_cmd(
    ctx: typer.Context,
    ingest_dirs: Annotated[list[Path], typer.Argument(help="Ingest output directories.")],
    out: Annotated[Path, typer.Option("--out", "-O", help="Dataset directory to write.")],
    where: Annotated[
        str | None, typer.Option(help="Row filter on manifest columns, e.g. \"label_name != 'A320321'\".")
    ] = None,
    size_policy: Annotated[str, typer.Option(help="keep | resize | center-crop | resize-crop")] = "keep",
    size: Annotated[int | None, typer.Option(help="Target side for non-keep size policies.")] = None,
    targets: Annotated[str, typer.Option(help="Precomputed targets: '' or 'gr'.")] = "",
    gr_codec: Annotated[str, typer.Option(help="gr.npy storage: float32 | float16 | uint16.")] = "float32",
    gr_radii: Annotated[
        str | None,
        typer.Option(help="GR radii, e.g. 1,3,4,5 (default: the paper's 5,9,13,17 scaled by --size/224)."),
    ] = None,
    test_ratio: Annotated[float, typer.Option(help="Share of each class's pool samples sent to test.")] = 0.0,
    val_ratio: Annotated[float, typer.Option(help="Share of each class's pool samples sent to val.")] = 0.0,
    split_seed: Annotated[int, typer.Option(help="Seed of the pool split.")] = 0,
    shots: Annotated[str | None, typer.Option(help="Few-shot views, e.g. 10,20,40.")] = None,
    seeds: Annotated[str | None, typer.Option(help="Few-shot seeds, e.g. 0-9.")] = None,
    long_tail: Annotated[str | None, typer.Option(help="Per-class train counts, e.g. 100:50:25:15:10:5:1.")] = None,
    holdout: Annotated[str | None, typer.Option(help="Group-held-out view COLUMN=VALUE, e.g. sensor=GF-3.")] = None,
    shard_size: Annotated[int, typer.Option(help="Max shard bytes.")] = 256 << 20,
    max_count: Annotated[int | None, typer.Option(help="Max samples per shard.")] = None,
    normalise: Annotated[
        str | None, typer.Option(help="unit-magnitude: float32 magnitude in [0, 1] (allows mixing).")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(help="One channel per sample: an index or a pol name (VV, VH...).")
    ] = None,
    radarpos20k: Annotated[
        bool, typer.Option(help="Add split_radarpos20k: 4,000 train samples per class, seeded (RadChar).")
    ] = False,
    radarpos_seed: Annotated[int, typer.Option(help="Seed of split_radarpos20k.")] = 0,
    workers: Workers = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset built with another configuration.")] = False,
    engine: Annotated[
        str, typer.Option(help="local (process pool) | ray (Ray Data; RAY_ADDRESS or a local instance).")
    ] = "local",
) -> None:
    """Write byte-reproducible WebDataset shards + Parquet index (+ splits and views) from ingest outputs."""
    from sardata.shards.build import build_shards

    cfg = build_config(ctx.params)
    progress, bar = progress_bar("build-shards", unit="shard")
    try:
        r = build_shards(ingest_dirs, out, cfg, workers=workers, overwrite=overwrite, progress=progress, engine=engine)
    finally:
        bar.close()
    splits = ", ".join(f"{k} {v}" for k, v in r.splits.items())
    reused = f", {r.reused_shards} reused" if r.reused_shards else ""
    typer.echo(f"{out}: {r.samples} samples in {r.shards} shards, {r.bytes / 1e6:.1f} MB ({splits}{reused})")
