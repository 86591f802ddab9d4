"""``sardata build-shards``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sardata.cli._options import SourceOpts, Workers, parse_kv, progress_bar

#: command options that are not BuildConfig fields (they say how to run, not what to build)
RUN_OPTIONS = ("ingest_dirs", "out", "workers", "overwrite", "engine", "from_source", "option", "max_errors")
#: command option → BuildConfig field, where the names differ
RENAMED = {"shard_size": "max_shard_bytes", "max_count": "max_shard_samples"}


FromSource = Annotated[
    str | None,
    typer.Option(
        "--from-source",
        help="Read this source's files (the argument is its root folder) straight into shards, without an ingest "
        "store: same bytes as ingest + build-shards, each input decoded twice.",
    ),
]
MaxErrors = Annotated[int | None, typer.Option(help="With --from-source: stop once this many files are rejected.")]


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
    ingest_dirs: Annotated[
        list[Path], typer.Argument(help="Ingest output directories (with --from-source: the source's root folder).")
    ],
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
    from_source: FromSource = None,
    option: SourceOpts = None,
    max_errors: MaxErrors = None,
) -> None:
    """Write byte-reproducible WebDataset shards + Parquet index (+ splits and views) from ingest outputs."""
    r = _run(ingest_dirs, out, build_config(ctx.params), workers, overwrite, engine, from_source, option, max_errors)
    splits = ", ".join(f"{k} {v}" for k, v in r.splits.items())
    reused = f", {r.reused_shards} reused" if r.reused_shards else ""
    typer.echo(f"{out}: {r.samples} samples in {r.shards} shards, {r.bytes / 1e6:.1f} MB ({splits}{reused})")


def _run(paths: list[Path], out: Path, cfg: Any, workers: int, overwrite: bool, engine: str, from_source: str | None,
         option: list[str] | None, max_errors: int | None) -> Any:  # fmt: skip
    """Build from ingest outputs, or with ``--from-source`` from a source's files."""
    progress, bar = progress_bar("build-shards", unit="input" if from_source else "shard")
    try:
        if from_source is not None:
            return _from_source(from_source, paths, out, cfg, option, workers, overwrite, progress, engine, max_errors)
        if option or max_errors is not None:
            raise typer.BadParameter("-o/--option and --max-errors apply to --from-source (a source's files)")
        from sardata.shards.build import build_shards

        return build_shards(paths, out, cfg, workers=workers, overwrite=overwrite, progress=progress, engine=engine)
    finally:
        bar.close()


def _from_source(source: str, roots: list[Path], out: Path, cfg: Any, option: list[str] | None, workers: int,
                 overwrite: bool, progress: Any, engine: str, max_errors: int | None) -> Any:  # fmt: skip
    """``--from-source``: the one-pass build; rejected inputs are reported as ``sardata ingest`` reports them."""
    from sardata.ingest.onepass import build_from_source

    if len(roots) != 1:
        raise typer.BadParameter(f"--from-source {source} takes one root folder, got {len(roots)} paths")
    r, first = build_from_source(source, roots[0], out, cfg, parse_kv(option), workers=workers, overwrite=overwrite,
                                 progress=progress, engine=engine, max_errors=max_errors)  # fmt: skip
    for path, reason, detail in first.rejected[:5]:
        typer.secho(f"  rejected {path}: {reason} {detail}", err=True, fg="yellow")
    if first.rejected:
        typer.secho(f"{len(first.rejected)} inputs rejected; see {out / 'sources.parquet'}", err=True, fg="yellow")
    return r
