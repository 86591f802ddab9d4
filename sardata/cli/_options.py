"""Shared ``Annotated`` option aliases for the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OutDir = Annotated[Path, typer.Option("--out", "-O", help="Output directory.")]
Workers = Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes.")]
SourceOpts = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Source option KEY=VALUE (repeatable); see `sardata sources list`."),
]


def parse_kv(items: list[str] | None) -> dict[str, str]:
    """Parse ``KEY=VALUE`` strings; a malformed one is a usage error (exit 2)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def progress_bar(desc: str, unit: str = "file"):
    """A tqdm-backed ``progress(done, total)`` callback and the bar (close it when done)."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, dynamic_ncols=True, disable=None)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh() if done == total else bar.update(0)

    return update, bar
