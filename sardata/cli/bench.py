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
