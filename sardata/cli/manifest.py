"""``sardata manifest``: inspect, validate, verify, diff, relocate, merge and export manifest directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Show, validate, verify, diff, relocate, merge and export manifests.", no_args_is_help=True)
Dir = Annotated[Path, typer.Argument(help="Manifest directory (holds dataset.json).")]
Location = Annotated[str, typer.Argument(help="Dataset directory, or its URL (http(s)://, s3://).")]


@app.command("show")
def show(root: Dir) -> None:
    """Card summary and a per-split × class table."""
    from sardata.dataset.inspect import summary_table

    typer.echo(summary_table(root))


@app.command("validate")
def validate(root: Dir) -> None:
    """Check every table against its declared schema and the card's table hashes."""
    from sardata.dataset.inspect import validate_dir

    for line in validate_dir(root):
        typer.echo(line)


@app.command("verify")
def verify_cmd(
    root: Location,
    samples: Annotated[bool, typer.Option("--samples", help="Also hash every sample's members.")] = False,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Read the shards from here instead of the card's location.")
    ] = None,
) -> None:
    """Check every table and shard sha256 (and per-sample hashes); exit 1 with a precise report on mismatch."""
    from sardata.dataset.verify import verify

    report = verify(root, samples=samples, base_url=base_url)
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
    from sardata.dataset.verify import diff

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


@app.command("relocate")
def relocate_cmd(
    root: Dir,
    base: Annotated[
        str, typer.Option("--base", help="New shard base: s3://bucket/prefix, https://host/path, a path, or '.'.")
    ],
) -> None:
    """Point a dataset at shards stored elsewhere: rewrites only base_url in dataset.json (tables unchanged)."""
    from sardata.dataset.relocate import relocate

    card = relocate(root, base)
    typer.echo(f"{root}: shards at {card.get('base_url') or 'shards/ next to dataset.json'}")


@app.command("merge")
def merge_cmd(
    inputs: Annotated[
        list[str], typer.Argument(help="Built datasets to merge (directories or URLs), in priority order.")
    ],
    out: Annotated[Path, typer.Option("--out", "-O", help="Dataset directory to write.")],
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset already in --out.")] = False,
) -> None:
    """Union of datasets: same key + same content = one row; same key + different content = error naming both."""
    from sardata.dataset.merge import merge

    r = merge(inputs, out, overwrite=overwrite)
    typer.echo(
        f"{out}: {r.samples} samples in {r.shards} shards ({r.duplicates} duplicate rows dropped, "
        f"{r.linked} shards linked, {r.rewritten} rewritten)"
    )


@app.command("export")
def export_cmd(
    root: Dir,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="croissant (JSON-LD) | hf (README.md dataset card for datasets).")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-O", help="Write here (DS/croissant.json, DS/README.md) instead of stdout."),
    ] = None,
    source_cards: Annotated[
        Path | None,
        typer.Option(
            "--source-cards",
            help="Folder of source cards <id>.yaml (licence, citation); default: the checkout's manifests/sources.",
        ),
    ] = None,
) -> None:
    """Describe a built dataset: Croissant JSON-LD (sha256 per shard, records reaching the .npy tar members) or a
    Hugging Face dataset card with which datasets.load_dataset(DS) reads the shards as typed arrays."""
    from sardata.atomic import atomic_path
    from sardata.dataset.export import export

    text = export(root, fmt, source_cards)
    if out is None:
        typer.echo(text, nl=False)
        return
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")
