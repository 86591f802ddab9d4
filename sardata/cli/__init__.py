"""The ``sardata`` command: a thin Typer layer over the library.

Exit codes: 0 success; 1 a :class:`~sardata.errors.SardataError` (one line naming the file and the fix);
2 usage error; 3 finished with some inputs rejected. ``SARDATA_DEBUG=1`` shows tracebacks.
Command modules import heavy libraries (torch, pyarrow...) inside command bodies so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from sardata.cli import bench, demo, ingest, manifest, models, preview, run, shards, sim, stream, train

app = typer.Typer(
    name="sardata",
    help="SAR and radar data pipelines: ingest raw sources, build WebDataset shards, stream and train.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("ingest")(ingest.ingest_cmd)
app.add_typer(ingest.sources_app, name="sources")
app.command("build-shards")(shards.build_shards_cmd)
app.add_typer(manifest.app, name="manifest")
app.add_typer(train.app, name="train")
app.add_typer(models.app, name="models")
app.add_typer(bench.app, name="bench")
app.add_typer(preview.app, name="preview")
app.add_typer(sim.app, name="sim")
app.add_typer(stream.app, name="stream")
app.command("demo")(demo.demo_cmd)
app.command("run")(run.run_cmd)


def _print_version(value: bool) -> None:
    """Eager, so ``sardata --version`` answers before Typer asks for a command."""
    if value:
        from sardata import __version__

        typer.echo(f"sardata {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """Global options only; every command is a subcommand."""


def main() -> None:
    """Console-script entry point: map domain errors to one line and exit code 1."""
    from sardata.errors import SardataError

    try:
        app()
    except SardataError as exc:
        if os.environ.get("SARDATA_DEBUG") == "1":
            raise
        line = " ".join(str(exc).split())  # one line even if a message (or a quoted value) holds newlines
        typer.secho(f"error: {line}", err=True, fg="red")
        sys.exit(1)
