"""``sardata run``: execute a pipeline recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def run_cmd(recipe: Annotated[Path, typer.Argument(help="pipelines/<name>.yaml")]) -> None:
    """Run every step of a pipeline recipe in order."""
    from sardata.recipes import run_pipeline

    for name in run_pipeline(recipe):
        typer.echo(f"step {name}: done")
