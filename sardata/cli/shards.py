"""``sardata build-shards``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def build_shards_cmd(
    ingest_dirs: Annotated[list[Path], typer.Argument(help="Ingest output directories.")],
    out: Annotated[Path, typer.Option("--out", "-O", help="Dataset directory to write.")],
) -> None:
    """Write WebDataset shards + Parquet index from ingest outputs (issue #5: not built yet)."""
    from sardata.errors import SardataError

    raise SardataError("build-shards is not implemented in this version yet (tracked in issue #5)")
