"""``sardata run``: execute a pipeline recipe, each step through this CLI in-process.

Why here: a pipeline step is an argv of this CLI, so the code that runs steps belongs to the CLI package;
:mod:`sardata.recipes` only loads and validates recipes and never imports the CLI (that import made a circle:
recipes → cli → bench → recipes).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from sardata.errors import ConfigError
from sardata.recipes import PipelineRecipe, load_yaml


def run_pipeline(path: str | os.PathLike[str], cli: Callable[..., Any]) -> list[str]:
    """Run each step of a pipeline recipe through ``cli`` (``sardata.cli.app``, in-process; passed in so this
    module never imports the package that registers it); return the step names run."""
    recipe = load_yaml(path)
    if not isinstance(recipe, PipelineRecipe):
        raise ConfigError(f"{path}: kind {recipe.kind!r} is not a pipeline")
    done = []
    for step in recipe.steps:
        try:
            cli([str(a) for a in step.args], standalone_mode=False)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise ConfigError(f"{path}: step {step.name!r} exited with {exc.code}") from exc
        done.append(step.name)
    return done


def run_cmd(ctx: typer.Context, recipe: Annotated[Path, typer.Argument(help="pipelines/<name>.yaml")]) -> None:
    """Run every step of a pipeline recipe in order."""
    for name in run_pipeline(recipe, ctx.find_root().command.main):  # the running CLI itself
        typer.echo(f"step {name}: done")
