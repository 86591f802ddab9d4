"""``sardata demo``: the embedded end-to-end run on synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sardata.cli._options import Workers


def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-O", help="Output directory.")] = Path("demo-out"),
    per_class: Annotated[int, typer.Option(min=2, help="Chips per class and split.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    workers: Workers = 2,
) -> None:
    """Synthetic SAR chips (MSTAR raw + JPEG layouts) → ingest → shards with GR targets and few-shot views → verify."""
    from sardata.cli._options import progress_bar
    from sardata.demo import run_demo
    from sardata.manifest.inspect import summary_table

    bars = []

    def progress(desc: str):
        cb, bar = progress_bar(desc)
        bars.append(bar)
        return cb

    try:
        result = run_demo(out, per_class=per_class, seed=seed, workers=workers, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    typer.echo(
        f"generated {result.generated['raw']} raw Phoenix chips and {result.generated['jpeg']} JPEGs in {out / 'data'}"
    )
    for layout, r in result.ingests.items():
        typer.echo(f"\n== ingest mstar ({layout}) ==")
        typer.echo(summary_table(r.out))
    b = result.build
    typer.echo(f"\n== build-shards (GR targets, 5-shot views x 3 seeds) ==\n{summary_table(b.out)}")
    v = result.verified
    typer.echo(f"\nverify: {'ok' if v.ok else 'FAILED'} ({v.shards_ok} shards, {v.samples_checked} samples hashed)")
    typer.echo(f"look at the data: sardata preview gr {b.out.parent / 'ingest' / 'mstar-jpeg'} --out gr.png")
