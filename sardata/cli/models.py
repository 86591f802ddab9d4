"""``sardata models list``: the model registry (``sardata.models``) as recipes name it."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="List the registered models.", no_args_is_help=True)


@app.command("list")
def models_list(
    pattern: Annotated[str, typer.Argument(help="Glob over registry names, e.g. 'radarpos*'.")] = "*",
    tiny: Annotated[bool, typer.Option(help="Include the tiny test_* twins used by the CPU tests.")] = False,
) -> None:
    """Registry names with the first line of their docstring (what `model:` in a recipe accepts)."""
    from sardata.models import describe_model, list_models

    names = [n for n in list_models(pattern) if tiny or not n.startswith("test_")]
    if not names:
        typer.echo(f"no model matches {pattern!r}")
        return
    width = max(len(n) for n in names)
    for name in names:
        typer.echo(f"{name:<{width}}  {describe_model(name)}")
