"""``sardata manifest``: inspect and validate manifest directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Show, validate, verify and diff manifests.", no_args_is_help=True)
Dir = Annotated[Path, typer.Argument(help="Manifest directory (holds dataset.json).")]


@app.command("show")
def show(root: Dir) -> None:
    """Card summary and a per-split × class table."""
    from sardata.manifest.inspect import summary_table

    typer.echo(summary_table(root))


@app.command("validate")
def validate(root: Dir) -> None:
    """Check every table against its declared schema and the card's table hashes."""
    from sardata.manifest.inspect import validate_dir

    for line in validate_dir(root):
        typer.echo(line)
