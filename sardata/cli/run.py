"""``sardata run``: execute a pipeline recipe (:func:`sardata.recipes.run_pipeline`) with progress bars.

Steps are data that call library functions, so running a recipe needs no CLI. Only a deprecated ``args:`` step (an
argv of this CLI) does: this module hands it the running CLI, so :mod:`sardata.recipes` never imports the CLI (that
import made a circle: recipes → cli → bench → recipes).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from sardata.cli._options import progress_bar
from sardata.recipes import run_pipeline as run_recipe


def run_pipeline(path: str | os.PathLike[str], cli: Callable[..., Any]) -> list[str]:
    """Run a pipeline recipe with ``cli`` (``sardata.cli.app``) at hand for deprecated ``args:`` steps; return the
    step names run."""
    return run_recipe(path, cli=cli)


def run_cmd(ctx: typer.Context, recipe: Annotated[Path, typer.Argument(help="pipelines/<name>.yaml")]) -> None:
    """Run every step of a pipeline recipe in order."""
    bars: list[Any] = []

    def progress(name: str) -> Callable[..., None]:
        """A bar made at the step's first report (steps that report nothing show none)."""
        state: dict[str, Any] = {}

        def update(done: int, total: int, info: Any = None) -> None:
            if "update" not in state:
                state["update"], bar = progress_bar(name, unit="item")
                bars.append(bar)
            state["update"](done, total)

        return update

    def echo(line: str) -> None:
        while bars:
            bars.pop().close()
        typer.echo(line)

    try:
        run_recipe(recipe, cli=ctx.find_root().command.main, progress=progress, echo=echo)  # the running CLI
    finally:
        while bars:
            bars.pop().close()
