"""Move a built dataset's shards without rewriting a table (``data-contract.md``, intro).

Only ``dataset.json`` changes: :func:`relocate` sets or clears ``base_url``, so every table keeps its sha256
(``manifest verify`` still passes, and a loader state saved before the move still resumes). How the loaders read
``base_url`` back is :mod:`sardata.stream.locate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sardata.errors import ConfigError
from sardata.location import check_location, is_url
from sardata.manifest.io import read_card, read_table, write_card
from sardata.stream.locate import BASE_KEY


def relocate(root: str | os.PathLike[str], base: str | None) -> dict[str, Any]:
    """Point a local dataset at shards stored under ``base`` (or back next to the card with ``None``/``"."``).

    Only ``dataset.json`` is rewritten (atomically): tables, their hashes and shard names stay as they are.
    ``base`` must hold the same relative layout (``<base>/shards/<name>.tar``).

    Raises:
        ManifestSchemaError: ``root`` is not a finished dataset.
        ConfigError: ``base`` is not an allowed location, or ``shards.parquet`` names absolute locations (those
            cannot move with a base).
    """
    root = Path(root)
    card = read_card(root)
    if card.get("kind", "dataset") != "dataset":
        raise ConfigError(f"{root}: only built datasets (build-shards output) have shards to relocate")
    absolute = [s["path"] for s in read_table(root / "shards.parquet", "shards").to_pylist() if is_url(s["path"])]
    if absolute:
        raise ConfigError(
            f"{root / 'shards.parquet'}: shard paths such as {absolute[0]!r} are absolute URLs; only paths relative "
            "to the card can be relocated (rebuild, or merge into a new dataset)"
        )
    if base in (None, "", "."):
        card.pop(BASE_KEY, None)
    else:
        check_location(base)
        card[BASE_KEY] = base.rstrip("/") if is_url(base) else base
    write_card(root, card)
    return card


__all__ = ["relocate"]
