"""Random access into a built dataset: one seek per sample (or per field), decoded through the field registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from sardata.errors import ShardIntegrityError
from sardata.shards.codecs import FIELDS, decode_npy
from sardata.shards.writer import read_member


def decode_field(name: str, data: bytes, where: str = "") -> Any:
    """Decode one member (``img.npy``, ``meta.json``, ``cls``...) without ever unpickling."""
    base = name.split(".")[0]
    spec = FIELDS.get(base)
    if spec is None:
        raise ValueError(f"{where}: field {name!r} is not in the registry")
    if spec.encoding == "npy":
        arr = decode_npy(data, where)
        check_dtype(name, arr.dtype, where)
        return arr
    if spec.encoding == "json":
        return json.loads(data)
    return int(data.decode("ascii"))


def check_dtype(name: str, dtype: np.dtype, where: str = "") -> None:
    """Refuse a decoded dtype the registry does not allow for ``name``: an edited header (``|u1`` -> ``|i1``)
    must raise, never hand the user a batch of another dtype."""
    spec = FIELDS.get(name.split(".")[0])
    if spec is None or spec.encoding != "npy":
        return
    kind = "structured" if dtype.names else dtype.newbyteorder("<").name if dtype.byteorder == ">" else dtype.name
    if kind not in spec.dtypes:
        raise ShardIntegrityError(
            f"{where}: {name} decodes as {dtype}, which {name} never has (allowed: {', '.join(spec.dtypes)}); "
            "the member header is damaged — re-fetch or rebuild the shard"
        )


def read_sample(root: str | os.PathLike[str], row: dict[str, Any]) -> dict[str, Any]:
    """All fields of one sample from its index row (``shard`` + ``members``): one open, one read per field."""
    path = Path(root) / "shards" / row["shard"]
    return {m["field"]: decode_field(m["field"], read_member(path, m["offset"], m["size"]), f"{path}:{row['key']}")
            for m in row["members"]}  # fmt: skip
