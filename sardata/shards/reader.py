"""Random access into a built dataset: one seek per sample (or per field), decoded through the field registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sardata.shards.codecs import FIELDS, decode_npy
from sardata.shards.writer import read_member


def decode_field(name: str, data: bytes, where: str = "") -> Any:
    """Decode one member (``img.npy``, ``meta.json``, ``cls``...) without ever unpickling."""
    base = name.split(".")[0]
    spec = FIELDS.get(base)
    if spec is None:
        raise ValueError(f"{where}: field {name!r} is not in the registry")
    if spec.encoding == "npy":
        return decode_npy(data, where)
    if spec.encoding == "json":
        return json.loads(data)
    return int(data.decode("ascii"))


def read_sample(root: str | os.PathLike[str], row: dict[str, Any]) -> dict[str, Any]:
    """All fields of one sample from its index row (``shard`` + ``members``): one open, one read per field."""
    path = Path(root) / "shards" / row["shard"]
    return {m["field"]: decode_field(m["field"], read_member(path, m["offset"], m["size"]), f"{path}:{row['key']}")
            for m in row["members"]}  # fmt: skip
