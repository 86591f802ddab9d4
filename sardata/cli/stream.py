"""``sardata stream``: audit what each rank and worker reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Inspect the streaming order of a built dataset.", no_args_is_help=True)


@app.command("order")
def order_cmd(
    root: Annotated[Path, typer.Argument(help="Dataset directory (holds dataset.json).")],
    seed: Annotated[int, typer.Option(help="Loader seed.")] = 0,
    epoch: Annotated[int, typer.Option(help="Epoch.")] = 0,
    world_size: Annotated[int, typer.Option(help="Number of ranks.")] = 1,
    workers: Annotated[int, typer.Option(help="Loader workers per rank.")] = 0,
    batch_size: Annotated[int | None, typer.Option(help="Global batch (default: world size).")] = None,
    split: Annotated[str, typer.Option(help="Split to stream.")] = "train",
    view: Annotated[str | None, typer.Option(help="View column, e.g. split_fewshot_k10_s0.")] = None,
    pad: Annotated[str, typer.Option(help="wrap | mask | drop")] = "wrap",
) -> None:
    """One line per sample in consumption order: global_index, rank, worker, key (padding marked). No decoding."""
    from sardata.stream.dataset import order_lines

    for line in order_lines(root, batch_size or world_size, world_size, workers, seed, epoch, split, view, pad):
        typer.echo(line)
