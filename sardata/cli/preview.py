"""``sardata preview``: PNG contact sheets so a person can look at the data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Render PNG contact sheets of samples.", no_args_is_help=True)


@app.command("samples")
def preview_samples(
    root: Annotated[Path, typer.Argument(help="Ingest output directory.")],
    out: Annotated[Path, typer.Option("--out", "-O", help="PNG file to write.")] = Path("samples.png"),
    per_class: Annotated[int, typer.Option(min=1, help="Samples per class.")] = 6,
) -> None:
    """A grid of samples, one row per class (images shown in dB for linear sources)."""
    from sardata.preview import sample_sheet

    sample_sheet(root, out, per_class=per_class)
    typer.echo(f"wrote {out}")


@app.command("gr")
def preview_gr(
    sources: Annotated[list[Path], typer.Argument(help="Ingest output directories and/or image files.")],
    out: Annotated[Path, typer.Option("--out", "-O", help="PNG file to write.")] = Path("gr.png"),
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="Images to show.")] = 4,
) -> None:
    """Images with their four GR target maps, so a person can see what the model regresses."""
    from sardata.preview import gr_sheet

    gr_sheet(sources, out, n=n)
    typer.echo(f"wrote {out}")
