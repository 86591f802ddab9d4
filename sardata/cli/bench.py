"""``sardata bench``: throughput figures as ratios against a baseline measured in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sardata.cli._options import Workers

app = typer.Typer(help="Benchmarks (ratios against an in-run baseline; see BENCHMARKS.md).", no_args_is_help=True)


@app.command("ingest")
def bench_ingest_cmd(
    source: Annotated[str, typer.Argument(help="Source id.")],
    root: Annotated[Path, typer.Argument(help="Dataset root.")],
    workers: Workers = 2,
    repeat: Annotated[int, typer.Option(min=1, help="Repeat each timing, keep the best.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Ingest files/s vs pure decode of the same files (and a no-op resumed rerun)."""
    from sardata.bench.ingest import bench_ingest

    r = bench_ingest(source, root, workers=workers, repeat=repeat)
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    typer.echo(f"{source}: {r['files']} files, ingest with {workers} workers")
    typer.echo(f"  pure decode (1 process)   {r['decode_files_per_s']:9.1f} files/s   1.00x")
    typer.echo(f"  sardata ingest            {r['ingest_files_per_s']:9.1f} files/s   {r['ingest_vs_decode']:.2f}x")
    typer.echo(f"  resumed rerun (no-op)     {r['resume_files_per_s']:9.1f} files/s   {r['resume_vs_decode']:.2f}x")


@app.command("gr")
def bench_gr_cmd(
    size: Annotated[int, typer.Option(min=18, help="Image side in pixels.")] = 224,
    batch: Annotated[int, typer.Option(min=1, help="Images per timed call (integral path).")] = 64,
    repeat: Annotated[int, typer.Option(min=1, help="Timed repeats; best is kept.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """GR img/s: exact integral-image path vs dense conv2d of the same half-box kernels (CPU 1 / all threads, CUDA)."""
    from sardata.bench.gr import bench_gr

    rows = bench_gr(size=size, batch=batch, repeat=repeat)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"GR, {size}x{size}, 4 scales (radii 5, 9, 13, 17)")
    typer.echo(f"  {'device':<28}{'threads':>8}{'integral img/s':>16}{'dense conv img/s':>18}{'ratio':>9}")
    for r in rows:
        threads = "-" if r["threads"] is None else str(r["threads"])
        typer.echo(f"  {r['device']:<28}{threads:>8}{r['gr_img_s']:>16.1f}{r['dense_img_s']:>18.2f}{r['ratio']:>8.1f}x")


@app.command("build-shards")
def bench_build_shards_cmd(
    ingest_dirs: Annotated[list[Path], typer.Argument(help="Ingest output directories.")],
    workers: Workers = 2,
    repeat: Annotated[int, typer.Option(min=1, help="Repeat each timing, keep the best.")] = 1,
    targets: Annotated[str, typer.Option(help="'' or 'gr' (precompute GR during the build).")] = "",
    shard_size: Annotated[int, typer.Option(help="Max shard bytes (several shards let workers run in parallel).")] = 8
    << 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    engine: Annotated[
        str, typer.Option(help="local | ray: ray also times the Ray Data build of the same data (same run).")
    ] = "local",
) -> None:
    """Build samples/s and MB/s vs a plain sequential tar write of the same payload bytes (and Ray vs local)."""
    from sardata.bench.shards import bench_build_shards
    from sardata.shards.build import BuildConfig

    r = bench_build_shards(ingest_dirs, workers=workers, repeat=repeat, engine=engine,
                           cfg=BuildConfig(targets=tuple(t for t in targets.split(",") if t), max_shard_bytes=shard_size))  # fmt: skip
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    typer.echo(f"{r['samples']} samples, {r['payload_mb']:.1f} MB payload, {r['shards']} shards, {workers} workers")
    typer.echo(
        f"  plain sequential tar write  {r['tar_samples_per_s']:9.1f} samples/s {r['tar_mb_per_s']:7.1f} MB/s  1.00x"
    )
    typer.echo(
        f"  sardata build-shards        {r['build_samples_per_s']:9.1f} samples/s {r['build_mb_per_s']:7.1f} MB/s"
        f"  {r['build_vs_tar']:.2f}x"
    )
    if "ray_samples_per_s" in r:
        typer.echo(
            f"  build-shards --engine ray   {r['ray_samples_per_s']:9.1f} samples/s {r['ray_mb_per_s']:7.1f} MB/s"
            f"  {r['ray_vs_local']:.2f}x local ({r['ray_cpus']} Ray CPUs, start-up {r['ray_startup_s']:.1f} s, "
            f"output {'byte-identical' if r['ray_identical'] else 'DIFFERENT'})"
        )


@app.command("loader")
def bench_loader_cmd(
    per_class: Annotated[int, typer.Option(help="Demo chips per class and split (x8 samples).")] = 64,
    grow: Annotated[int, typer.Option(help="Factor for the RSS-flatness check (0: none).")] = 10,
    workers: Annotated[str, typer.Option(help="Comma list of DataLoader worker counts to time.")] = "0,2",
    source: Annotated[
        str, typer.Option(help="Time a source's real files (with --data) instead of demo chips, e.g. sar-acd.")
    ] = "",
    data: Annotated[
        Path | None, typer.Option(help="The --source dataset root (resized to 128 px at the build).")
    ] = None,
    peers: Annotated[
        bool, typer.Option(help="Shuffled, LitData, MDS and random-access rows, disk footprints (missing peers skip).")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Samples/s and peak RSS: raw files+decode+GR vs stock webdataset vs sardata, with 0 and 2 workers.

    With workers, a ``handover`` row times handing the same batches from workers to the main process with nothing
    read: the ceiling any worker-based loader of these bytes reaches on this machine. With ``--peers`` (default),
    LitData and MosaicML Streaming (MDS) rows on the same samples, sequential and shuffled, random access (reads/s)
    and each format's disk footprint; a peer that cannot be imported is skipped with its reason (the peers install
    into their own environment: ``make bench-peers-env``)."""
    from sardata.bench.stream import bench_loader

    try:
        counts = tuple(int(w) for w in workers.split(","))
    except ValueError:
        raise typer.BadParameter(f"--workers {workers!r}: expected a comma list of integers, e.g. 0,2,4") from None
    if bool(source) != (data is not None):
        raise typer.BadParameter("--source and --data go together (e.g. --source sar-acd --data DIR)")
    r = bench_loader(per_class=per_class, grow=grow, workers=counts, source=source or None, files=data, peers=peers)
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    _print_loader(r, source or "demo chips")


def _print_loader(r: dict, what: str) -> None:
    from sardata.bench.stream import EPOCHS, SIZE

    rows = [row for row in r["rows"] if not row["kind"].endswith("-random")]
    base = {(row["kind"], row["workers"]): row["samples_per_s"] for row in rows}
    typer.echo(f"{rows[0]['samples']} samples timed over {EPOCHS} epochs ({what} {SIZE} px, GR in shards)")
    typer.echo(f"  {'pipeline':<21}{'workers':>8}{'samples/s':>12}{'peak RSS MB':>13}{'vs raw':>9}{'vs wds':>9}")
    for row in rows:
        w, shuffled = row["workers"], row["kind"].endswith("-shuffled")
        wds = base.get(("webdataset-shuffled" if shuffled else "webdataset", w))  # shuffled rows: vs shuffled wds
        typer.echo(
            f"  {row['kind']:<21}{w:>8}{row['samples_per_s']:>12.0f}{row['peak_rss_mb']:>13.0f}"
            f"{row['samples_per_s'] / base[('raw', w)]:>8.1f}x"
            + (f"{row['samples_per_s'] / wds:>8.2f}x" if wds else "")
        )
    for w in sorted({row["workers"] for row in rows}):  # the cost of the default integrity check
        if ("sardata-off", w) in base:
            off = base[("sardata-off", w)]
            cold, warm = base[("sardata", w)] / off, base[("sardata-warm", w)] / off
            typer.echo(f"  verify=shard vs verify=off, {w} workers: cold {cold:.2f}x, warm {warm:.2f}x")
    _print_peers(r)
    g = r["grown"]
    if g is None:
        return
    small = next(row for row in rows if row["kind"] == "sardata" and row["workers"] == g["workers"])
    typer.echo(
        f"  sardata on a {r['grow']}x larger dataset ({g['samples']} samples): peak RSS {g['peak_rss_mb']:.0f} MB "
        f"vs {small['peak_rss_mb']:.0f} MB"
    )


def _print_peers(r: dict) -> None:
    """Random-access reads/s, disk footprints and the skipped peers (``sardata.bench.peers``)."""
    side = r.get("peers")
    if side is None:
        return
    random = {row["kind"].removesuffix("-random"): row for row in r["rows"] if row["kind"].endswith("-random")}
    for kind, row in random.items():
        vs = row["samples_per_s"] / random["sardata"]["samples_per_s"]
        typer.echo(f"  random access, {kind:<9}{row['samples_per_s']:>10.0f} reads/s  {vs:>6.2f}x sardata")
    for kind, mb in side["footprint_mb"].items():
        typer.echo(f"  disk footprint, {kind:<11}{mb:>8.1f} MB")
    for name, reason in side["skipped"].items():
        typer.echo(f"  {name} rows skipped: {reason}")


@app.command("pdw")
def bench_pdw_cmd(
    types: Annotated[int, typer.Option("--types", min=1, help="Emitter types (one HDF5 file each).")] = 8,
    per_type_mode: Annotated[int, typer.Option(min=1, help="Trains per type and mode.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """PDW simulator: sequences/min with 1 and 2 workers vs the 50k/min target (and simulate-only, 1 process)."""
    from sardata.bench.pdw import bench_pdw

    r = bench_pdw(n_types=types, per_type_mode=per_type_mode)
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    typer.echo(f"{r['sequences']} trains ({r['n_types']} types x 3 modes x {r['per_type_mode']}), one whole intercept "
               f"each (<= {r['max_pulses']} detections; median {r['median_pulses']:.0f} pulses)")  # fmt: skip
    typer.echo(f"  {'what':<24}{'workers':>8}{'wall seq/min':>14}{'vs 50k':>8}{'CPU-time seq/min':>18}{'vs 50k':>8}")
    for row in r["rows"]:
        typer.echo(
            f"  {row['what']:<24}{row['workers']:>8}{row['seq_per_min']:>14.0f}{row['vs_target']:>7.2f}x"
            f"{row['cpu_seq_per_min']:>18.0f}{row['cpu_vs_target']:>7.2f}x"
        )
    typer.echo("  CPU-time rate = trains per CPU-minute x workers: the rate on that many idle cores")


@app.command("train")
def bench_train_cmd(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="pretrain recipe (model, image size, batch)")] = Path(
        "pipelines/sar-jepa-pretrain-cpu-small.yaml"
    ),
    steps: Annotated[int, typer.Option(min=1, help="Timed steps per configuration.")] = 10,
    batch: Annotated[int | None, typer.Option(help="Batch size (default: the recipe's global batch).")] = None,
    gpu: Annotated[bool, typer.Option(help="Also measure on CUDA when a GPU is visible.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Pretraining step img/s and peak memory, GR online (in the step) vs precomputed (from shards)."""
    import torch

    from sardata.bench.train import bench_train

    devices = ("cpu", "cuda") if gpu and torch.cuda.is_available() else ("cpu",)
    rows = bench_train(recipe, devices, steps=steps, batch=batch)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{recipe}: {steps} timed steps per configuration")
    typer.echo(f"  {'device':<8}{'GR':<13}{'batch':>6}{'threads':>8}{'img/s':>10}{'peak MB':>10}{'vs online':>11}")
    for r in rows:
        typer.echo(f"  {r['device']:<8}{r['mode']:<13}{r['batch']:>6}{r['threads']:>8}{r['img_per_s']:>10.1f}"
                   f"{r['peak_mb']:>10.0f}{r['vs_online']:>10.2f}x")  # fmt: skip


@app.command("scale")
def bench_scale_cmd(
    sizes: Annotated[
        str, typer.Option(help="Comma list of sample counts, e.g. 10000,100000,1000000.")
    ] = "10000,100000",
    kinds: Annotated[
        str, typer.Option(help="images (one JPEG chip per file) and/or radchar (one HDF5 file).")
    ] = "images,radchar",
    workers: Workers = 1,
    tmp: Annotated[Path | None, typer.Option(help="Scratch folder (needs ≈ 10 KB per sample).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Ingest + build-shards at growing sizes: time per sample and peak RSS (each stage in a fresh process)."""
    from sardata.bench.scale import KINDS, bench_scale

    try:
        counts = tuple(int(x) for x in sizes.split(","))
    except ValueError:
        raise typer.BadParameter(f"--sizes {sizes!r}: expected a comma list of integers") from None
    chosen = tuple(k for k in kinds.split(",") if k)
    if set(chosen) - set(KINDS):
        raise typer.BadParameter(f"--kinds {kinds!r}: choose from {', '.join(KINDS)}")
    r = bench_scale(counts, chosen, workers=workers, tmp=str(tmp) if tmp else None)
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    typer.echo(f"ingest + build-shards, {workers} worker(s), each stage in a fresh process (peak RSS = VmHWM)")
    typer.echo(f"  {'kind':<8}{'samples':>10}{'ingest s':>10}{'build s':>9}{'µs/sample':>11}{'RSS ingest':>12}"
               f"{'RSS build':>11}{'store files':>13}{'store/arrays':>14}")  # fmt: skip
    for row in r["rows"]:
        typer.echo(f"  {row['kind']:<8}{row['samples']:>10,}{row['ingest_s']:>10.1f}{row['build_s']:>9.1f}"
                   f"{row['us_per_sample']:>11.1f}{row['ingest_rss_mb']:>9.0f} MB{row['build_rss_mb']:>8.0f} MB"
                   f"{row['store_files']:>13,}{row['store_mb'] / row['arrays_mb']:>13.3f}x")  # fmt: skip
    for kind, ratio in r["time_ratio"].items():
        typer.echo(f"  {kind}: time per sample, largest / smallest size: {ratio:.2f}x")
