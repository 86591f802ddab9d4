"""``sardata ingest`` and ``sardata sources``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sardata.cli._options import OutDir, SourceOpts, Workers, parse_kv, progress_bar

sources_app = typer.Typer(help="List the source adapters and their options.", no_args_is_help=True)


def ingest_cmd(
    source: Annotated[str, typer.Argument(help="Source id (see `sardata sources list`).")],
    root: Annotated[Path, typer.Argument(help="Dataset root folder (or a single file) in its original layout.")],
    out: OutDir,
    workers: Workers = 1,
    option: SourceOpts = None,
    max_errors: Annotated[int | None, typer.Option(help="Stop once this many files are rejected.")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Discard an earlier ingest with another configuration in --out.")
    ] = False,
    tile: Annotated[int | None, typer.Option(help="Chip size for scene sources (same as -o tile=N).")] = None,
    stride: Annotated[int | None, typer.Option(help="Chip stride for scene sources (same as -o stride=N).")] = None,
    engine: Annotated[
        str, typer.Option(help="local (process pool) | ray (Ray Data; RAY_ADDRESS or a local instance).")
    ] = "local",
    retry_rejected: Annotated[
        bool, typer.Option(help="Re-attempt files an earlier run of this --out committed as rejected.")
    ] = False,
) -> None:
    """Read a source in its original on-disk layout into a sample store + Parquet manifest (resumable).

    One run at a time per --out (a second one fails naming the first). --overwrite starts from an empty --out."""
    from sardata.ingest import ingest

    option = [*(option or []), *([f"tile={tile}"] if tile else []), *([f"stride={stride}"] if stride else [])]
    progress, bar = progress_bar(f"ingest {source}")
    try:
        result = ingest(
            source,
            root,
            out,
            parse_kv(option),
            workers=workers,
            max_errors=max_errors,
            overwrite=overwrite,
            progress=progress,
            engine=engine,
            retry_rejected=retry_rejected,
        )
    finally:
        bar.close()
    files = result.files
    typer.echo(
        f"{out}: {result.samples} samples from {sum(files.values())} files "
        f"(ok {files.get('ok', 0)}, rejected {files.get('rejected', 0)}, skipped {files.get('skipped', 0)}"
        + (f", {result.resumed_units} resumed" if result.resumed_units else "")
        + ")"
    )
    if result.rejected:
        for path, reason, detail in result.rejected[:5]:
            typer.secho(f"  rejected {path}: {reason} {detail}", err=True, fg="yellow")
        typer.secho(f"{len(result.rejected)} inputs rejected; see {out / 'sources.parquet'}", err=True, fg="yellow")
        raise typer.Exit(3)


@sources_app.command("list")
def sources_list() -> None:
    """Source ids, versions, classes and options."""
    import dataclasses

    from sardata.sources import list_sources

    for cls in list_sources():
        opts = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Options)) or "-"
        typer.echo(f"{cls.id:<12} v{cls.version:<7} {cls.modality:<10} {cls.description}")
        typer.echo(f"{'':<12} classes: {', '.join(cls.classes) or '-'}")
        typer.echo(f"{'':<12} options: {opts}")
