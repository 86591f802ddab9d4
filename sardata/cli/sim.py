"""``sardata sim``: simulators that write ingestable datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Simulators writing datasets in real on-disk layouts.", no_args_is_help=True)


@app.command("sar")
def sim_sar(
    out: Annotated[Path, typer.Option("--out", "-O", help="Output directory.")],
    per_class: Annotated[int, typer.Option(min=1, help="Chips per class and split.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    size: Annotated[int, typer.Option(min=32, help="Chip height in pixels.")] = 64,
) -> None:
    """Synthetic speckled target chips as MSTAR raw Phoenix files and an MSTAR-10 JPEG folder."""
    from sardata.sim.sar_targets import write_demo_dataset

    counts = write_demo_dataset(out, per_class=per_class, seed=seed, size=size)
    typer.echo(
        f"wrote {counts['raw']} Phoenix chips under {out / 'raw'} and {counts['jpeg']} JPEGs under {out / 'jpeg'}"
    )
