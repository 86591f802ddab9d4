"""Human-readable views of a manifest directory and its integrity check."""

from __future__ import annotations

import os
from pathlib import Path

from sardata.atomic import sha256_file
from sardata.errors import ChecksumError, ManifestSchemaError
from sardata.manifest.io import read_card, read_table
from sardata.safepath import resolve_inside


def summary_table(root: str | os.PathLike[str]) -> str:
    """Card header plus a split × class count table (plain text)."""
    root = Path(root)
    card = read_card(root)
    from sardata.stream.verify import open_verified_table  # the table's bytes checked against the card first

    samples = open_verified_table(root, "samples", card).select(["split", "label_name"]).to_pandas()
    samples["label_name"] = samples["label_name"].fillna("(none)")
    pivot = samples.pivot_table(index="label_name", columns="split", aggfunc="size", fill_value=0)
    pivot.loc["total"] = pivot.sum()
    pivot["total"] = pivot.sum(axis=1)
    files = card.get("counts", {}).get("files", {})
    head = [
        f"{root}  ({card.get('kind', 'dataset')}, schema {card['schema_version']}, "
        f"sardata {card.get('sardata_version', '?')})",
        "sources: " + ", ".join(f"{s.get('id')} v{s.get('version')}" for s in card.get("sources", [])),
        f"config_sha256: {card.get('config_sha256', '?')[:16]}…",
    ]
    if files:
        head.append("files: " + ", ".join(f"{k} {v}" for k, v in files.items()))
    if card.get("splits"):
        head.append(
            "shards: "
            + ", ".join(
                f"{k} {v.get('shards', 0)} ({v.get('bytes', 0) / 1e6:.1f} MB)" for k, v in card["splits"].items()
            )
        )
    if card.get("views"):
        head.append(
            f"views: {len(card['views'])} ({', '.join(card['views'][:4])}{' …' if len(card['views']) > 4 else ''})"
        )
    return "\n".join(head) + "\n\n" + pivot.to_string()


def validate_dir(root: str | os.PathLike[str]) -> list[str]:
    """Validate every table's schema and its sha256 against the card; return report lines.

    Raises:
        ManifestSchemaError: a table does not match its schema.
        ChecksumError: a table's bytes differ from the card.
    """
    root = Path(root)
    card = read_card(root)
    lines = []
    for name, info in sorted(card.get("tables", {}).items()):
        path = resolve_inside(root, f"{name}.parquet", "table name", "dataset.json")
        if not path.is_file():
            raise ManifestSchemaError(f"{path}: listed in dataset.json but missing; restore it or rebuild the manifest")
        actual = sha256_file(path)
        if actual != info["sha256"]:
            raise ChecksumError(f"{path}: sha256 {actual} != card {info['sha256']}; the table was modified")
        table = read_table(path, name)
        if table.num_rows != info["rows"]:
            raise ChecksumError(f"{path}: {table.num_rows} rows != card {info['rows']}")
        lines.append(f"ok  {name}.parquet  {table.num_rows} rows  sha256 {actual[:16]}…")
    return lines
