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


@app.command("verify")
def verify_cmd(
    root: Dir,
    samples: Annotated[bool, typer.Option("--samples", help="Also hash every sample's members.")] = False,
) -> None:
    """Check every table and shard sha256 (and per-sample hashes); exit 1 with a precise report on mismatch."""
    from sardata.manifest.verify import verify

    report = verify(root, samples=samples)
    if not report.ok:
        for line in report.problems:
            typer.secho(f"FAIL {line}", err=True, fg="red")
        typer.secho(f"{root}: {len(report.problems)} problems", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(
        f"{root}: ok ({report.shards_ok} shards" + (f", {report.samples_checked} samples" if samples else "") + ")"
    )


@app.command("diff")
def diff_cmd(a: Dir, b: Dir, limit: Annotated[int, typer.Option(help="Keys listed per category.")] = 10) -> None:
    """Samples added / removed / changed between two manifests, and configuration differences."""
    from sardata.manifest.verify import diff

    d = diff(a, b)
    for kind in ("added", "removed", "changed"):
        keys = d[kind]
        typer.echo(
            f"{kind}: {len(keys)}"
            + (f"  ({', '.join(keys[:limit])}{' …' if len(keys) > limit else ''})" if keys else "")
        )
    typer.echo(f"unchanged: {d['unchanged']}")
    typer.echo("config: " + ("identical" if not d["config"] else ""))
    for line in d["config"]:
        typer.echo(f"  {line}")
