"""``sardata demo``: the embedded end-to-end run on synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sardata.cli._options import Workers, step_progress
from sardata.demo import PER_CLASS, WORKERS


def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-O", help="Output directory.")] = Path("demo-out"),
    per_class: Annotated[int, typer.Option(min=2, help="Chips per class and split.")] = PER_CLASS,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    workers: Workers = WORKERS,
    train: Annotated[
        bool, typer.Option(help="Pretrain SAR-JEPA and run the 10-shot protocol after the data steps.")
    ] = True,
    pretrain_epochs: Annotated[int, typer.Option(min=1, help="Pretraining epochs over the demo train split.")] = 8,
) -> None:
    """Synthetic SAR chips (MSTAR raw + JPEG) → ingest → shards with GR and few-shot views → verify → small SAR-JEPA
    pretraining → 10-shot fine-tuning (pretrained vs scratch) → table."""
    from sardata.cli._options import progress_bar
    from sardata.demo import run_demo

    bars = []

    def progress(desc: str):
        cb, bar = progress_bar(desc)
        bars.append(bar)
        return cb

    try:
        result = run_demo(out, per_class=per_class, seed=seed, workers=workers, progress=progress, train=train,
                          pretrain_epochs=pretrain_epochs, train_progress=step_progress)  # fmt: skip
    finally:
        for bar in bars:
            bar.close()
    echo_data_stages(result)
    if result.pretrain is not None:
        echo_training(result)


def echo_data_stages(result: Any) -> None:
    """What the data stages wrote: generated files, both ingests, the shard build, the verify report."""
    from sardata.dataset.inspect import summary_table

    out = result.out
    typer.echo(
        f"generated {result.generated['raw']} raw Phoenix chips and {result.generated['jpeg']} JPEGs in {out / 'data'}"
    )
    for layout, r in result.ingests.items():
        typer.echo(f"\n== ingest mstar ({layout}) ==")
        typer.echo(summary_table(r.out))
    b = result.build
    typer.echo(f"\n== build-shards (GR targets, 5- and 10-shot views x 3 seeds) ==\n{summary_table(b.out)}")
    v = result.verified
    typer.echo(f"\nverify: {'ok' if v.ok else 'FAILED'} ({v.shards_ok} shards, {v.samples_checked} samples hashed)")
    typer.echo(f"look at the data: sardata preview gr {b.out.parent / 'ingest' / 'mstar-jpeg'} --out gr.png")


def echo_training(result: Any) -> None:
    """The pretraining line and the 10-shot table: one row per init, then the reference rows once."""
    from sardata.train.fewshot_reference import REFERENCE_PROTOCOLS

    p = result.pretrain
    typer.echo(f"\n== pretrain SAR-JEPA (small, CPU) ==\n{p.steps} steps, last loss {p.last_loss:.4f}, "
               f"{p.images_per_s:.0f} img/s → {p.out}")  # fmt: skip
    typer.echo("\n== 10-shot fine-tuning, demo test split (3 seeds) ==")
    typer.echo("| init | accuracy % (mean ± std) | macro-F1 |\n| --- | --- | --- |")
    refs: list[dict] = []
    for name, res in result.fewshot.items():
        for row in res.summary:
            if row["protocol"] in REFERENCE_PROTOCOLS:
                refs = refs or [r for r in res.summary if r["protocol"] in REFERENCE_PROTOCOLS]
                continue
            typer.echo(
                f"| {name} | {row['accuracy_mean']:.1f} ± {row['accuracy_std']:.1f} | {row['macro_f1_mean']:.3f} |"
            )
    for row in refs:  # the same splits for every init: one set of reference rows
        typer.echo(
            f"| {row['protocol']} (reference) | {row['accuracy_mean']:.1f} ± {row['accuracy_std']:.1f} | "
            f"{row['macro_f1_mean']:.3f} |"
        )
